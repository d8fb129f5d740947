"""The audit log's canonical JSON form, fixed per store (``store_settings``).

A store whose log already has entries keeps hashing with ``python-json`` (the form those entries and
every checkpoint over them were made with); a store with an empty log starts on RFC 8785 (``rfc8785``).

Revision ID: 0006_canonical_form
Revises: 0005_audit_tiles
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_canonical_form"
down_revision = "0005_audit_tiles"
branch_labels = None
depends_on = None


def upgrade() -> None:
    settings = op.create_table(
        "store_settings",
        sa.Column("key", sa.String(80), primary_key=True),
        sa.Column("value", sa.String(200), nullable=False),
    )
    has_entries = op.get_bind().execute(sa.text("SELECT 1 FROM audit_log LIMIT 1")).first() is not None
    op.bulk_insert(settings, [{"key": "canonical_form", "value": "python-json" if has_entries else "rfc8785"}])


def downgrade() -> None:
    op.drop_table("store_settings")
