"""The store's one clock: naive UTC at millisecond precision, identical on SQLite and PostgreSQL.

Why one function: every timestamp the store writes (scores, audit entries, queue leases, jobs) must be
comparable across tables and databases; a second clock with other precision breaks "since/until" windows.
"""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """The current time as the store writes it."""
    ts = datetime.now(UTC)
    return ts.replace(tzinfo=None, microsecond=(ts.microsecond // 1000) * 1000)


def to_db_time(ts: datetime | None) -> datetime:
    """A caller's time (aware or naive UTC) as the store writes it; None means now."""
    if ts is None:
        return now()
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return ts.replace(microsecond=(ts.microsecond // 1000) * 1000)


def aware(ts: datetime | None) -> datetime | None:
    """A stored (naive UTC) time as an aware one for callers."""
    if ts is None:
        return None
    if isinstance(ts, str):  # pragma: no cover - defensive, SQLAlchemy converts
        ts = datetime.fromisoformat(ts)
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def iso(ts: datetime) -> str:
    """How a time is written into audit payloads."""
    return ts.replace(tzinfo=UTC).isoformat(timespec="milliseconds")
