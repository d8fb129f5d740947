"""The application layer: the only way anything is scored or recorded.

``intake`` (submit-score-route-record, one transaction), ``backlog`` (the batch engine behind
``scoring score`` and the API's jobs), ``batch_jobs`` (resumable API jobs), ``assessment`` (what assessors
and adjudicators do), ``decisions`` (the final credential decision), ``credentials`` (Open Badges and
feedback), ``registry`` (which model serves, promotion) and ``history`` (importing past scores). The CLI
commands and the API routers call these; they hold no scoring logic themselves.
"""
