"""Ed25519 key pairs on disk, written the same way for every signer (audit checkpoints, credentials).

Why one place: a private key file must be created with mode 0600 atomically (never world-readable, even
for a moment) and never overwrite an existing key, whoever signs with it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def write_ed25519_pair(directory: str | Path, name: str,
                       exists: Callable[[Path], Exception]) -> tuple[Path, Path]:
    """Write ``<name>.pem`` (PKCS#8, mode 0600) and ``<name>.pub.pem`` (SubjectPublicKeyInfo) into ``directory``.

    Raises ``exists(path)`` when the private key file is already there.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    priv, pub = d / f"{name}.pem", d / f"{name}.pub.pem"
    if priv.exists():
        raise exists(priv)
    key = Ed25519PrivateKey.generate()
    fd = os.open(priv, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    return priv, pub
