"""API keys: created once, shown once, stored only as a salted SHA-256 hash.

A key reads ``rsk_<key_id>_<secret>``. ``key_id`` (public, 12 hex) finds the row without scanning; the
secret (32 random bytes, urlsafe) is checked against ``sha256(salt || secret)`` with
:func:`hmac.compare_digest`, so the comparison takes the same time whether the first byte or the last one
differs. An unknown ``key_id`` still pays for one hash and one compare, so response time does not say
whether a key id exists. The name of a key is the identity the service records (assessor, owner).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from scoring.errors import Conflict, InvalidRequest, LastAdminKey, NotFound, Unauthorized
from scoring.store.clock import iso
from scoring.store.service_tables import api_keys, queue_items
from scoring.store.store import Store

ROLES = ("assessor", "issuer", "researcher", "admin")
_KEY_RE = re.compile(r"^rsk_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,200}$")
_DUMMY_SALT = "0" * 32


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _hash(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


def _rec(r: sa.Row) -> ApiKey:  # type: ignore[type-arg]
    return ApiKey(r.key_id, r.name, r.role, r.created_at.replace(tzinfo=UTC),
                  r.revoked_at.replace(tzinfo=UTC) if r.revoked_at else None)


def create_key(store: Store, name: str, role: str, *, by: str = "cli") -> tuple[ApiKey, str]:
    """Create a key; returns its record and the full key string (the only time it exists in clear).

    Logged in the audit chain (``key_created``: name, role, id, who): a key is what lets automation and
    people act, so who could act when must be provable later."""
    if role not in ROLES:
        raise InvalidRequest(f"role must be one of {list(ROLES)}, found {role!r}")
    if not _NAME_RE.match(name):
        raise InvalidRequest(f"key name must be 1-200 letters, digits, '_', '.', '@' or '-', found {name!r}")
    key_id, secret, salt = secrets.token_hex(6), secrets.token_urlsafe(32), secrets.token_hex(16)
    with store.write() as tx:
        conn = tx.conn
        if conn.execute(sa.select(api_keys.c.id).where(api_keys.c.name == name)).first() is not None:
            raise Conflict(f"a key named {name!r} already exists; names identify assessors, pick another")
        now = _now()
        conn.execute(api_keys.insert().values(key_id=key_id, name=name, role=role, salt=salt,
                                              secret_hash=_hash(salt, secret), created_at=now))
        tx.append("key_created", {"name": name, "role": role, "key_id": key_id, "by": by, "at": iso(now)})
        row = conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).one()
    return _rec(row), f"rsk_{key_id}_{secret}"


def authenticate(store: Store, presented: str) -> ApiKey:
    """The active key matching ``presented``; :class:`Unauthorized` otherwise (one message for all causes)."""
    m = _KEY_RE.match(presented.strip())
    key_id, secret = (m.group(1), m.group(2)) if m else ("", presented)
    row = None
    if m:
        with store.engine.connect() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).first()
    expected = row.secret_hash if row is not None else _hash(_DUMMY_SALT, "x")
    ok = hmac.compare_digest(_hash(row.salt if row is not None else _DUMMY_SALT, secret), expected)
    if row is None or not ok or row.revoked_at is not None:
        raise Unauthorized("the API key is unknown, malformed or revoked; expected 'rsk_<id>_<secret>' "
                           "as created by `scoring keys create`")
    return _rec(row)


def list_keys(store: Store) -> list[ApiKey]:
    with store.engine.connect() as conn:
        return [_rec(r) for r in conn.execute(sa.select(api_keys).order_by(api_keys.c.id))]


def revoke_key(store: Store, name: str, *, by: str = "cli") -> ApiKey:
    """Revoke by name (idempotent); the key stops working on its next request. Logged (``key_revoked``).
    An assessor's held queue items return to the queue in the same transaction (``released_items``), so
    nobody waits for the leases of someone who left to run out.

    The last active admin key cannot be revoked (:class:`LastAdminKey`): without one nobody can create
    keys over the API any more, and recovery would need a shell on the server."""
    with store.write() as tx:
        conn = tx.conn
        row = conn.execute(sa.select(api_keys).where(api_keys.c.name == name)).first()
        if row is None:
            raise NotFound(f"no API key named {name!r}")
        if row.revoked_at is None:
            if row.role == "admin":
                c = api_keys.c
                admins = conn.execute(sa.select(sa.func.count()).where(c.role == "admin", c.revoked_at.is_(None),
                                                                       c.id != row.id)).scalar_one()
                if admins == 0:
                    raise LastAdminKey(f"{name!r} is the last active admin key; create another admin key first "
                                       "(`POST /keys` with role admin, or `scoring keys create --role admin`), "
                                       "then revoke this one")
            now = _now()
            conn.execute(api_keys.update().where(api_keys.c.id == row.id).values(revoked_at=now))
            payload = {"name": name, "role": row.role, "key_id": row.key_id, "by": by, "at": iso(now)}
            if row.role == "assessor":  # what they held goes back to the queue now, not when its lease runs out
                q = queue_items.c
                held = [int(i) for i in conn.execute(sa.select(q.id).where(
                    q.holder == name, q.status == "claimed").order_by(q.id)).scalars()]
                if held:
                    conn.execute(queue_items.update().where(q.id.in_(held)).values(
                        status="open", holder=None, lease_token=None, lease_expires=None))
                    payload["released_items"] = held
            tx.append("key_revoked", payload)
        row = conn.execute(sa.select(api_keys).where(api_keys.c.id == row.id)).one()
    return _rec(row)
