"""The migrations and the table definitions the queries use must describe the same schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from scoring.store import Store
from scoring.store.tables import metadata


def test_migrated_schema_matches_table_definitions(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    # alembic_version lives in the DB but not in our metadata: that is the only expected difference
    diff = [d for d in diff if not (d[0] == "remove_table" and d[1].name == "alembic_version")]
    assert diff == []
