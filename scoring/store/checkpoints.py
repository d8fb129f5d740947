"""Signed checkpoints of the audit log, kept outside the database (C2SP ``tlog-checkpoint`` notes).

Why: a hash chain alone protects nothing against someone who can write to the database, because they
can edit an entry and recompute every later hash. A checkpoint fixes the log's size and Merkle root at a
moment, signed with an Ed25519 key that never enters the database, in a file the operator copies
elsewhere (another machine, a researcher, a ticket). Later, ``scoring audit verify --checkpoints DIR``
recomputes the root of the first ``size`` entries for every checkpoint: a rewritten, renumbered or
truncated log cannot reproduce a root it did not have when it was signed.

The file is a C2SP signed note (https://c2sp.org/signed-note, https://c2sp.org/tlog-checkpoint), the
format of Go's checksum database and Sigstore's transparency logs, so existing note verifiers read it::

    rubric-scoring/audit            <- origin (also the signing key's name)
    1048576                         <- tree size (entries 1..size)
    3q2+7w...=                      <- base64 Merkle root (RFC 6962)
    chain-head 9f86d0...            <- extension lines: the hash chain's head at that size,
    time 2026-11-29T21:00:00Z       <- when it was signed,
    canonical-form rfc8785          <- and the canonical JSON form the entries are hashed with
                                    <- blank line
    — rubric-scoring/audit BASE64(key hash[4] || Ed25519 signature[64])
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from scoring.errors import ScoringError
from scoring.keyfiles import write_ed25519_pair
from scoring.store.canonical import PYTHON_JSON, RFC8785

DEFAULT_ORIGIN = "rubric-scoring/audit"
_NAME_RE = re.compile(r"^checkpoint-(\d{12})-(\d{8}T\d{6}Z)\.txt$")
_SIG_PREFIX = "\u2014 "  # an em dash and a space start every signature line


class CheckpointError(ScoringError):
    """A checkpoint file or key that cannot be used: unreadable, unsigned, or signed by another key."""

    code = "invalid_checkpoint"


@dataclass(frozen=True)
class Checkpoint:
    """One verified checkpoint: the log had ``size`` entries whose Merkle root was ``root``."""

    origin: str
    size: int
    root: bytes
    chain_head: str
    time: str
    name: str  # the file name (or "<inline>")
    text: str
    # the canonical JSON form of the log's entry hashes; a checkpoint without the line was signed before
    # stores recorded a form, when every log used python-json
    canonical_form: str = PYTHON_JSON

    @property
    def root_hex(self) -> str:
        return self.root.hex()


# ------------------------------------------------------------------------------------------------ keys

def keygen(directory: str | Path) -> tuple[Path, Path]:
    """Write ``audit-ed25519.pem`` (private, mode 0600) and ``audit-ed25519.pub.pem`` into ``directory``."""
    return write_ed25519_pair(directory, "audit-ed25519", lambda priv: CheckpointError(
        f"{priv} already exists; move it away first (checkpoints it signed stay verifiable only with its public key)"))


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    data = _read_key_file(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise CheckpointError(f"{path} is not an unencrypted Ed25519 private key in PEM form "
                              "(make one with `scoring audit keygen`)") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(f"{path} holds a {type(key).__name__.removeprefix('_')} key; an Ed25519 key is needed")
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """The public key in ``path``; a private key file is accepted too (its public half is used)."""
    data = _read_key_file(path)
    if b"PRIVATE KEY" in data:
        return load_private_key(path).public_key()
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise CheckpointError(f"{path} is not an Ed25519 public key in PEM form") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointError(f"{path} holds a {type(key).__name__.removeprefix('_')} key; an Ed25519 key is needed")
    return key


def _read_key_file(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"key file {path} not found") from None
    except OSError as exc:
        raise CheckpointError(f"key file {path} cannot be read ({exc.strerror})") from None


def _raw(pub: Ed25519PublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_hash(name: str, pub: Ed25519PublicKey) -> bytes:
    """The 4-byte key id of a signed note: SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n\x01" + _raw(pub)).digest()[:4]


def verifier_key(name: str, pub: Ed25519PublicKey) -> str:
    """The key as note verifiers (Go's ``golang.org/x/mod/sumdb/note``) spell it: ``name+hash+base64``."""
    blob = base64.b64encode(b"\x01" + _raw(pub)).decode()
    return f"{name}+{key_hash(name, pub).hex()}+{blob}"


# ------------------------------------------------------------------------------------------ the note

def checkpoint_body(origin: str, size: int, root: bytes, chain_head: str, when: datetime,
                    canonical_form: str = RFC8785) -> str:
    """The signed text. ``canonical_form`` is signed too: a checkpoint pins how its entries are hashed,
    so switching the store's recorded form fails against every checkpoint."""
    return (f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"
            f"chain-head {chain_head}\ntime {when.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}\n"
            f"canonical-form {canonical_form}\n")


def sign_checkpoint(body: str, key: Ed25519PrivateKey, origin: str) -> str:
    sig = key.sign(body.encode())
    return f"{body}\n{_SIG_PREFIX}{origin} {base64.b64encode(key_hash(origin, key.public_key()) + sig).decode()}\n"


def parse_checkpoint(text: str, pub: Ed25519PublicKey | None, name: str = "<inline>",
                     origin: str = DEFAULT_ORIGIN) -> Checkpoint:
    """Check the signature of ``text`` with ``pub`` and read it; :class:`CheckpointError` says what is wrong.

    ``pub=None`` reads without checking the signature: only for a server that hands a checkpoint on to
    someone who checks it with the public key (``scoring audit check-proof``)."""
    body, sep, sigs = text.partition("\n\n")
    if not sep or not body:
        raise CheckpointError(f"{name}: expected a signed note (body, blank line, signature lines), found no "
                              "blank line before a signature")
    body += "\n"
    if pub is None:
        return _read_body(body, text, name, origin)
    want = key_hash(origin, pub)
    verified = False
    for line in sigs.splitlines():
        if not line.startswith(_SIG_PREFIX):
            continue
        signer, _, b64 = line[len(_SIG_PREFIX):].rpartition(" ")
        try:
            blob = base64.b64decode(b64, validate=True)
        except ValueError:
            continue
        if signer != origin or blob[:4] != want or len(blob) != 68:
            continue
        try:
            pub.verify(blob[4:], body.encode())
        except InvalidSignature:
            raise CheckpointError(f"{name}: the signature does not match the text: the checkpoint was edited "
                                  "after signing") from None
        verified = True
    if not verified:
        raise CheckpointError(f"{name}: not signed by the audit key (expected a signature line by {origin!r} "
                              f"with key id {want.hex()})")
    return _read_body(body, text, name, origin)


def _read_body(body: str, text: str, name: str, origin: str) -> Checkpoint:
    lines = body.splitlines()
    if len(lines) < 3 or lines[0] != origin or not lines[1].isdigit():
        raise CheckpointError(f"{name}: expected origin {origin!r}, a tree size and a root hash on its first "
                              "three lines")
    try:
        root = base64.b64decode(lines[2], validate=True)
    except ValueError:
        root = b""
    if len(root) != 32:
        raise CheckpointError(f"{name}: line 3 must be a base64 SHA-256 root hash, found {lines[2][:60]!r}")
    ext = dict(line.split(" ", 1) for line in lines[3:] if " " in line)
    return Checkpoint(origin, int(lines[1]), root, ext.get("chain-head", ""), ext.get("time", ""), name, text,
                      ext.get("canonical-form", PYTHON_JSON))


# ----------------------------------------------------------------------------------------- the folder

def write_checkpoint(directory: str | Path, text: str, size: int, when: datetime) -> Path:
    """Write one checkpoint file (never overwriting one); the name sorts by size, then time."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"checkpoint-{size:012d}-{when.astimezone(UTC):%Y%m%dT%H%M%SZ}.txt"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    if path.exists():
        tmp.unlink()
        raise CheckpointError(f"{path} already exists (one checkpoint per second at most)")
    os.replace(tmp, path)
    return path


def checkpoint_files(directory: str | Path) -> list[Path]:
    """The checkpoint files of a folder, by size then time; :class:`CheckpointError` if there is no folder."""
    d = Path(directory)
    if not d.is_dir():
        raise CheckpointError(f"checkpoint folder {d} does not exist")
    return sorted(p for p in d.iterdir() if _NAME_RE.match(p.name))


@dataclass(frozen=True)
class BadCheckpoint:
    name: str
    problem: str


def load_checkpoints(directory: str | Path, pub: Ed25519PublicKey | None,
                     origin: str = DEFAULT_ORIGIN) -> tuple[list[Checkpoint], list[BadCheckpoint]]:
    """Every checkpoint of the folder, verified (unless ``pub`` is None): the good ones by size, and the
    files that failed."""
    good: list[Checkpoint] = []
    bad: list[BadCheckpoint] = []
    for p in checkpoint_files(directory):
        try:
            good.append(parse_checkpoint(p.read_text(encoding="utf-8"), pub, p.name, origin))
        except (CheckpointError, UnicodeDecodeError) as exc:
            bad.append(BadCheckpoint(p.name, str(exc).removeprefix(f"{p.name}: ")))
    good.sort(key=lambda c: (c.size, c.name))
    return good, bad


def is_checkpoint_name(name: str) -> bool:
    return _NAME_RE.match(name) is not None
