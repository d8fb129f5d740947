"""W3C Bitstring Status List v1.0 for revocation: the entry a credential carries, the list credential the
issuer publishes, and the check a verifier makes.

Why a bitstring status list: a verifier learns whether one credential was revoked by fetching one published,
signed file that covers every credential of the list, so the issuer never learns which credential was
checked. The list is at least 16KB (131,072 entries) whatever the number issued, and indexes are drawn at
random (``scoring.store.credential_status``), so the list says nothing about how many were issued or in
which order (the specification's herd privacy).

Encoding (spec section 3.1 and 3.2): bit ``i`` is bit ``7 - i % 8`` of byte ``i // 8`` (index 0 is the
left-most bit); the bitstring is GZIP-compressed, base64url-encoded without padding, and prefixed with the
multibase ``u``. The list credential is a ``BitstringStatusListCredential`` signed as a VC-JWT with the
issuer's key, the same way as the credentials it covers.
"""

from __future__ import annotations

import base64
import gzip
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scoring.badges import VC2_CONTEXT, CredentialError, _parse_time, sign, verify_jws

LIST_BITS = 16 * 1024 * 8  # the specification's minimum: 16KB of bits
PURPOSE = "revocation"
MAX_DECODED = 16 * 1024 * 1024  # refuse a list that inflates beyond 16MB (a GZIP bomb is not a status list)


def issuer_key(issuer_id: str) -> str:
    """The one spelling of an issuer id: without trailing slashes, so ``https://x/`` and ``https://x`` are one
    issuer, with one pool of indexes and one published list (its URL is built from this)."""
    return issuer_id.strip().rstrip("/")


def list_url(issuer_id: str, number: int) -> str:
    """Where the issuer publishes list ``number``: ``{issuer-id}/status/{number}``."""
    return f"{issuer_key(issuer_id)}/status/{number}"


def entry(url: str, index: int) -> dict[str, Any]:
    """The ``credentialStatus`` of a credential at ``index`` of the list published at ``url``."""
    return {"id": f"{url}#{index}", "type": "BitstringStatusListEntry", "statusPurpose": PURPOSE,
            "statusListIndex": str(index), "statusListCredential": url}


# ------------------------------------------------------------------------------------------ bitstring


def encode(set_bits: set[int], size: int = LIST_BITS) -> str:
    """The ``encodedList`` of a bitstring of ``size`` bits with ``set_bits`` set (multibase base64url GZIP)."""
    if size < LIST_BITS or size % 8:
        raise ValueError(f"a status list holds at least {LIST_BITS} bits, in whole bytes")
    raw = bytearray(size // 8)
    for i in set_bits:
        if not 0 <= i < size:
            raise ValueError(f"status index {i} is outside a list of {size} entries")
        raw[i // 8] |= 0x80 >> (i % 8)
    packed = gzip.compress(bytes(raw), mtime=0)
    return "u" + base64.urlsafe_b64encode(packed).decode("ascii").rstrip("=")


def decode(encoded: str) -> bytes:
    """The bitstring of an ``encodedList``; :class:`CredentialError` when it is not one."""
    if not isinstance(encoded, str) or not encoded.startswith("u"):
        raise CredentialError("the status list's encodedList is not multibase base64url (it must start with 'u')")
    body = encoded[1:]
    try:
        packed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        with gzip.GzipFile(fileobj=io.BytesIO(packed)) as fh:
            raw = fh.read(MAX_DECODED + 1)
    except (ValueError, OSError, EOFError) as exc:
        raise CredentialError(f"the status list's encodedList is not GZIP-compressed base64url ({exc})") from None
    if len(raw) > MAX_DECODED:
        raise CredentialError("the status list inflates beyond 16MB: refused")
    if len(raw) * 8 < LIST_BITS:
        raise CredentialError(f"the status list holds {len(raw) * 8} entries, fewer than the {LIST_BITS} the "
                              "specification requires")
    return raw


def is_set(bits: bytes, index: int) -> bool:
    if not 0 <= index < len(bits) * 8:
        raise CredentialError(f"status index {index} is outside the list's {len(bits) * 8} entries")
    return bool(bits[index // 8] & (0x80 >> (index % 8)))


# ---------------------------------------------------------------------------------- list credential


def build_list(url: str, issuer_id: str, revoked: set[int]) -> dict[str, Any]:
    """The ``BitstringStatusListCredential`` (no proof) of the list at ``url`` with ``revoked`` set, valid from now."""
    now = datetime.now(UTC).replace(microsecond=0)
    return {
        "@context": [VC2_CONTEXT],
        "id": url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": {"id": issuer_id},
        "validFrom": now.isoformat().replace("+00:00", "Z"),
        "credentialSubject": {"id": f"{url}#list", "type": "BitstringStatusList", "statusPurpose": PURPOSE,
                              "encodedList": encode(revoked)},
    }


def sign_list(url: str, issuer_id: str, revoked: set[int], key: Any) -> str:
    """The signed list credential (VC-JWT, Ed25519), ready to publish at ``url``."""
    return sign(build_list(url, issuer_id, revoked), key)


@dataclass(frozen=True)
class PublishedList:
    url: str
    issuer_id: str
    purpose: str
    bits: bytes
    valid_from: str


def read_list(token: str, public_key: Any) -> PublishedList:
    """Check a published list's signature and shape; :class:`CredentialError` in words when it fails."""
    try:
        vc = verify_jws(token, public_key)
    except CredentialError as exc:
        raise CredentialError(f"the status list does not verify with this issuer key ({exc}): it was signed by "
                              "another key or changed after signing") from None
    subj = vc.get("credentialSubject") if isinstance(vc, dict) else None
    if (not isinstance(subj, dict) or "BitstringStatusListCredential" not in vc.get("type", [])
            or subj.get("type") != "BitstringStatusList"):
        raise CredentialError("not a BitstringStatusListCredential (its type or credentialSubject.type differ)")
    issuer = vc.get("issuer")
    issuer_id = issuer.get("id") if isinstance(issuer, dict) else issuer
    _parse_time(vc.get("validFrom", ""), "the status list's validFrom")
    return PublishedList(str(vc.get("id")), str(issuer_id), str(subj.get("statusPurpose")),
                         decode(subj.get("encodedList", "")), str(vc.get("validFrom")))


# ------------------------------------------------------------------------------------------- checking


@dataclass(frozen=True)
class StatusCheck:
    state: str  # valid | revoked | unchecked | no_entry | unknown
    text: str


def check(vc: dict[str, Any], lists: list[PublishedList]) -> StatusCheck:
    """The revocation status of a verified credential against the published lists a verifier holds."""
    statuses = vc.get("credentialStatus")
    if statuses is None:
        return StatusCheck("no_entry", "issued without a status entry (before revocation existed): its "
                                       "revocation cannot be checked")
    mine = [s for s in (statuses if isinstance(statuses, list) else [statuses])
            if isinstance(s, dict) and s.get("type") == "BitstringStatusListEntry" and s.get("statusPurpose") == PURPOSE]
    if not mine:
        return StatusCheck("unknown", "its credentialStatus has no BitstringStatusListEntry for revocation")
    s = mine[0]
    url, raw = str(s.get("statusListCredential")), str(s.get("statusListIndex"))
    if not (raw.isascii() and raw.isdecimal()):  # isdigit() passes '²', which int() refuses
        return StatusCheck("unknown", f"its statusListIndex {raw!r} is not a whole number (digits 0-9)")
    index = int(raw)
    if not lists:
        return StatusCheck("unchecked", f"status not checked (no --status-list given; it is at index {index} of "
                                        f"{url})")
    got = next((pl for pl in lists if pl.url == url), None)
    if got is None:
        return StatusCheck("unknown", f"status unknown: its status list is {url}, which is none of the "
                                      f"--status-list files ({sorted(pl.url for pl in lists)})")
    if issuer_key(got.issuer_id) != issuer_key(str(vc["issuer"]["id"])):
        return StatusCheck("unknown", f"status unknown: the status list {url} was issued by {got.issuer_id}, "
                                      f"not by the credential's issuer {vc['issuer']['id']}")
    if got.purpose != PURPOSE:
        return StatusCheck("unknown", f"status unknown: the status list {url} is for {got.purpose!r}, not revocation")
    try:
        revoked = is_set(got.bits, index)
    except CredentialError as exc:
        return StatusCheck("unknown", f"status unknown: {exc}")
    where = f"index {index} of {url} (list of {got.valid_from})"
    if revoked:
        return StatusCheck("revoked", f"revoked by its issuer: {where} is set")
    return StatusCheck("valid", f"not revoked: {where}")
