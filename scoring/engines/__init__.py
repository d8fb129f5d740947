"""Batch engines other than the in-process one (``scoring.batch``): the same job, run elsewhere.

``scoring score --engine ray`` runs :class:`scoring.engines.ray_engine.RayEngine`; the local engine stays
``scoring.batch.run_batch``'s own loop. Both write the same files for the same input, model and policy.
"""
