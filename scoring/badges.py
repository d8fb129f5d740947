"""Open Badges 3.0 credentials for earned micro-credentials, signed as VC-JWT with Ed25519.

Why VC-JWT (1EdTech OB 3.0 section 8.2, W3C VC-JOSE-COSE) and not a Data Integrity proof: the compact
JWS needs no JSON-LD canonicalisation to verify (the signed bytes are the bytes received), every JOSE
library verifies it, and independent OB 3.0 implementations (``openbadgeslib``, tested against here)
accept it. The header says ``alg: EdDSA`` (RFC 8037), the identifier OB 3.0 verifiers expect for Ed25519;
RFC 9864 names it ``Ed25519`` too, and joserfc warns that ``EdDSA`` is deprecated there, which is
silenced here on purpose for interoperability.

What a credential carries: the issuer's profile, the achievement (the rubric: title, description, the
award rule as its criteria narrative, and every criterion as a ``ResultDescription`` of
``RubricCriterionLevel`` s), and per criterion the level achieved (``Result.achievedLevel``). The
educator is named by a salted SHA-256 identity hash (``IdentityObject``), never in clear, and no
evidence text ever goes into a credential.

Keys: ``scoring credentials keygen DIR`` writes the issuer's Ed25519 private key as PEM (mode 0600, the
operator keeps it outside the database like the API keys' secrets) and its public key beside it; the
``kid`` is the JWK thumbprint (RFC 7638).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rubrics.schema import Rubric
from scoring.errors import Conflict
from scoring.keyfiles import write_ed25519_pair

VC2_CONTEXT = "https://www.w3.org/ns/credentials/v2"
OB3_CONTEXT = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
ALG = "EdDSA"


class CredentialError(Conflict):
    """A credential that cannot be issued or does not verify; the message says which check failed."""

    code = "invalid_credential"


@dataclass(frozen=True)
class Issuer:
    id: str  # a URL or DID that identifies the issuing organisation
    name: str
    url: str | None = None


# ---------------------------------------------------------------------------------------------- keys


def keygen(directory: str | Path) -> tuple[Path, Path]:
    """Write a new issuer key pair: ``issuer-ed25519.pem`` (private, 0600) and ``issuer-ed25519.pub.pem``."""
    return write_ed25519_pair(directory, "issuer-ed25519", lambda priv: CredentialError(
        f"{priv} already exists; move it away first (a new key invalidates nothing issued, but verifiers must "
        "be given the new public key)"))


def load_key(path: str | Path, *, private: bool) -> Any:
    from joserfc.jwk import OKPKey

    p = Path(path)
    try:
        key = OKPKey.import_key(p.read_bytes())
    except FileNotFoundError:
        raise CredentialError(f"key file {p} not found") from None
    except Exception as exc:  # noqa: BLE001 - any parse failure: the file is not an Ed25519 PEM key
        raise CredentialError(f"{p} is not an Ed25519 key in PEM form ({type(exc).__name__})") from None
    if key.curve_name != "Ed25519":
        raise CredentialError(f"{p} holds a {key.curve_name} key; an Ed25519 key is needed")
    if private and not key.is_private:
        raise CredentialError(f"{p} holds a public key; signing needs the private key")
    return key


# -------------------------------------------------------------------------------------------- build


def identity_hash(recipient: str, salt: str) -> str:
    """OB 3.0 hashed identity: ``sha256$`` + hex(SHA-256(identity + salt))."""
    return "sha256$" + hashlib.sha256((recipient + salt).encode("utf-8")).hexdigest()


def achievement_id(issuer: Issuer, rubric: Rubric) -> str:
    return f"{issuer.id.rstrip('/')}/achievements/{rubric.id}/v{rubric.version}"


def build_credential(rubric: Rubric, levels: dict[str, int], recipient: str, issuer: Issuer, *,
                     issued: datetime | None = None, valid_years: int | None = None,
                     credential_id: str | None = None, status: dict[str, Any] | None = None) -> dict[str, Any]:
    """The OpenBadgeCredential body (no proof) for an earned decision at ``levels``; ``status`` is its
    ``credentialStatus`` (``scoring.status_list.entry``), what lets a verifier see a revocation."""
    if rubric.award is None:
        raise CredentialError(f"rubric {rubric.key} has no award rule: it issues no credential")
    if not rubric.award.earned(rubric, levels):
        raise CredentialError(f"levels {levels} do not earn {rubric.key}: {rubric.award.describe(rubric)}")
    now = (issued or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    ach = achievement_id(issuer, rubric)
    rds, results = [], []
    for c in rubric.criteria:
        rd_id = f"{ach}/criteria/{c.id}"
        rds.append({
            "id": rd_id, "type": ["ResultDescription"], "name": c.title, "resultType": "RubricCriterionLevel",
            "rubricCriterionLevel": [{
                "id": f"{rd_id}/levels/{lv.score}", "type": ["RubricCriterionLevel"], "name": lv.label,
                **({"description": lv.descriptor} if lv.descriptor else {}), "level": str(lv.score)}
                for lv in c.levels],
        })
        results.append({"type": ["Result"], "resultDescription": rd_id,
                        "achievedLevel": f"{rd_id}/levels/{int(levels[c.id])}"})
    salt = secrets.token_hex(8)
    body: dict[str, Any] = {
        "@context": [VC2_CONTEXT, OB3_CONTEXT],
        "id": credential_id or f"urn:uuid:{uuid.uuid4()}",
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "issuer": {"id": issuer.id, "type": ["Profile"], "name": issuer.name, **({"url": issuer.url} if issuer.url else {})},
        "validFrom": now.isoformat().replace("+00:00", "Z"),
        "name": rubric.title,
        "credentialSubject": {
            "type": ["AchievementSubject"],
            "identifier": [{"type": "IdentityObject", "identityHash": identity_hash(recipient, salt),
                            "identityType": "identifier", "hashed": True, "salt": salt}],
            "achievement": {
                "id": ach, "type": ["Achievement"], "achievementType": "MicroCredential", "name": rubric.title,
                "description": rubric.description.strip() or rubric.title,
                "criteria": {"narrative": rubric.award.describe(rubric)},
                "resultDescription": rds,
            },
            "result": results,
        },
    }
    if status is not None:
        body["credentialStatus"] = status
    if valid_years:
        body["validUntil"] = (now + timedelta(days=365 * valid_years)).isoformat().replace("+00:00", "Z")
    return body


# ------------------------------------------------------------------------------------- sign / verify


def sign(credential: dict[str, Any], private_key: Any) -> str:
    """The compact VC-JWT: the payload IS the credential plus the registered claims iss, nbf, jti (and exp)."""
    from joserfc import jws

    issued = _parse_time(credential["validFrom"], "validFrom")
    payload = {**credential, "iss": credential["issuer"]["id"], "nbf": int(issued.timestamp()),
               "jti": credential["id"], "iat": int(issued.timestamp())}
    if "validUntil" in credential:
        payload["exp"] = int(_parse_time(credential["validUntil"], "validUntil").timestamp())
    header = {"alg": ALG, "typ": "vc+jwt", "kid": private_key.thumbprint()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # RFC 9864 deprecates the name EdDSA; OB 3.0 verifiers expect it
        return jws.serialize_compact(header, json.dumps(payload, ensure_ascii=False).encode(), private_key,
                                     algorithms=[ALG])


def verify(token: str, public_key: Any, *, now: datetime | None = None) -> dict[str, Any]:
    """Check the signature, the dates and the structure; returns the credential. Raises
    :class:`CredentialError` naming the first check that failed."""
    vc = verify_jws(token, public_key)
    _check_structure(vc)
    t = (now or datetime.now(UTC)).astimezone(UTC)
    if _parse_time(vc["validFrom"], "validFrom") > t + timedelta(minutes=5):
        raise CredentialError(f"not valid yet: validFrom {vc['validFrom']}")
    if "validUntil" in vc and _parse_time(vc["validUntil"], "validUntil") < t:
        raise CredentialError(f"expired: validUntil {vc['validUntil']}")
    if vc.get("iss") != vc["issuer"]["id"] or vc.get("jti") != vc["id"] or "nbf" not in vc:
        raise CredentialError("JWT claims iss/jti/nbf must be present and match issuer.id and id")
    return vc


def verify_jws(token: str, public_key: Any) -> Any:
    """The JSON payload of a compact JWS signed with ``public_key`` (EdDSA only); any credential's first check."""
    from joserfc import jws
    from joserfc.errors import JoseError

    token = token.strip()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = jws.deserialize_compact(token, public_key, algorithms=[ALG])
    except JoseError as exc:
        why = exc.description or exc.error
        if exc.error == "bad_signature":  # joserfc's code: say what it means to the person checking
            why = ("the signature does not match: the credential was changed after it was signed, or it was "
                   "signed with another key than this public key (bad_signature)")
        raise CredentialError(f"signature check failed: {why}") from None
    except ValueError as exc:
        raise CredentialError(f"not a compact JWS: {exc}") from None
    try:
        return json.loads(obj.payload)
    except ValueError:
        raise CredentialError("the signed payload is not JSON") from None


def _check_structure(vc: dict[str, Any]) -> None:
    def need(cond: bool, what: str) -> None:
        if not cond:
            raise CredentialError(f"structure: {what}")

    need(isinstance(vc, dict), "the credential is not a JSON object")
    ctx = vc.get("@context")
    need(isinstance(ctx, list) and ctx[:1] == [VC2_CONTEXT] and len(ctx) > 1 and "ob/v3p0" in str(ctx[1]),
         "@context must start with the VC 2.0 and OB 3.0 contexts")
    need({"VerifiableCredential", "OpenBadgeCredential"} <= set(vc.get("type", [])),
         "type must include VerifiableCredential and OpenBadgeCredential")
    need(isinstance(vc.get("issuer"), dict) and bool(vc["issuer"].get("id")), "issuer.id is required")
    need(bool(vc.get("id")) and bool(vc.get("validFrom")), "id and validFrom are required")
    subj: dict[str, Any] = vc.get("credentialSubject") or {}
    need(isinstance(subj, dict) and bool(subj), "credentialSubject must be an object")
    ach: dict[str, Any] = subj.get("achievement") or {}
    need(isinstance(ach, dict) and all(ach.get(k) for k in ("id", "name", "criteria")),
         "credentialSubject.achievement needs id, name and criteria")
    need(bool(subj.get("id") or subj.get("identifier")), "credentialSubject needs an id or an identifier")
    levels = {lv["id"] for rd in ach.get("resultDescription", []) for lv in rd.get("rubricCriterionLevel", [])}
    rds = {rd["id"] for rd in ach.get("resultDescription", [])}
    for r in subj.get("result", []):
        need(r.get("resultDescription") in rds, f"result names an unknown resultDescription {r.get('resultDescription')!r}")
        need(r.get("achievedLevel") in levels, f"result names an unknown achievedLevel {r.get('achievedLevel')!r}")


def _parse_time(s: str, what: str) -> datetime:
    try:
        t = datetime.fromisoformat(str(s).replace("Z", "+00:00"))
    except ValueError:
        raise CredentialError(f"{what} {s!r} is not an ISO 8601 time") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)
