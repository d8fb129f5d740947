"""A gate policy file that is missing or malformed ends `scoring report` and `scoring drift` with one
`error:` line naming the file and exit 2, before any store is read; never a Python traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from eval.gates import load_policy
from scoring.cli import app


@pytest.mark.parametrize("args", [
    ["report", "--out", "{tmp}/r"],
    ["drift", "check", "--rubric", "any"],
    ["drift", "simulate", "--seeds", "1"],
])
def test_a_missing_policy_file_is_one_error_line(tmp_path: Path, args: list[str]) -> None:
    cmd = [a.format(tmp=tmp_path) for a in args] + ["--policy", str(tmp_path / "nope.yaml")]
    r = CliRunner().invoke(app, cmd)
    assert r.exit_code == 2, r.output
    assert f"error: gate policy {tmp_path / 'nope.yaml'} cannot be read" in r.output
    assert "Traceback" not in r.output


@pytest.mark.parametrize(("text", "says"), [
    ("id: x\n", "missing required key 'thresholds'"),
    ("id: x\nversion: 1\nthresholds: [1, 2]\n", "a value of the wrong kind"),
    ("id: x\nversion: 1\nthresholds: {min_qwk: high, max_qwk_degradation: 0.1, max_abs_smd: 0.15,"
     " max_abs_dsm: 0.1, min_n: 50}\n", "a value of the wrong kind"),
    ("- just\n- a list\n", "a gate policy is a mapping"),
    ("id: [unclosed\n", "is not valid YAML"),
])
def test_a_malformed_policy_names_what_is_wrong(tmp_path: Path, text: str, says: str) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=says):
        load_policy(f)
