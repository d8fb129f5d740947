"""`scoring bench coldstart` end to end on a small ASAP-shaped folder the test writes (the real data never ships)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from eval.bench_coldstart import rubric_descriptors
from scoring.cli import app

pytestmark = pytest.mark.slow
DETAILS = ["The road was hot and the cyclist had no water left.", "The hills were steep so he lost energy.",
           "The town was abandoned, which made him feel hopeless.", "The old pump gave brackish water.",
           "The snake on the road showed how dangerous the setting was.", "The old men's directions were outdated."]
RUBRIC_TEXT = """Essay Set #3
Rubric Guidelines
Score 3: The response demonstrates an understanding of the complexities of the text.
Uses expressed and implied information from the text
Score 2: The response demonstrates a partial or literal understanding of the text.
Score 1: The response shows evidence of a minimal understanding of the text.
Score 0: The response is completely irrelevant or incorrect, or there is no response.
Adjudication Rules
If Reader-1 Score and Reader-2 Score are exact or adjacent, adjudication by a third reader is not required.
"""


def _write(folder: Path, n: int = 140, n_test: int = 40) -> None:
    """Set 3 (0-3): the score counts the story details used; off-topic answers score 0."""
    rng = np.random.default_rng(4)
    rows = []
    for i in range(n):
        k = int(rng.integers(0, 4))
        text = (" ".join(rng.choice(DETAILS, size=k + 1, replace=False)) if k else "I like pizza and my dog.")
        rows.append({"essay_id": 2000 + i, "essay_set": 3, "essay": text, "rater1_domain1": k, "rater2_domain1": k,
                     "domain1_score": k})
    with (folder / "training_set_rel3.tsv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter="\t", quoting=csv.QUOTE_NONE)
        w.writeheader()
        w.writerows(rows)
    (folder / "fold_0").mkdir()
    (folder / "fold_0" / "test_ids.txt").write_text("\n".join(str(r["essay_id"]) for r in rows[-n_test:]) + "\n")
    (folder / "essay_set_descriptions").mkdir()
    (folder / "essay_set_descriptions" / "Essay Set #3--ReadMeFirst.txt").write_text(RUBRIC_TEXT, encoding="utf-8")


def test_the_rubric_text_becomes_one_descriptor_per_level(tmp_path: Path) -> None:
    _write(tmp_path)
    d = rubric_descriptors(tmp_path / "essay_set_descriptions", 3)
    assert sorted(d) == [0, 1, 2, 3]
    assert d[3].endswith("Uses expressed and implied information from the text")
    assert "Adjudication" not in d[0]


def test_final_line_carries_every_key_and_the_curves_stop_at_the_pool(tmp_path: Path) -> None:
    (tmp_path / "asap").mkdir()
    _write(tmp_path / "asap")
    res = CliRunner().invoke(app, ["bench", "coldstart", "--data-dir", str(tmp_path / "asap"), "--sets", "3",
                                   "--cache-dir", str(tmp_path / "cache"), "--ns", "10,20,50,500"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output.strip().splitlines()[-1])
    for key in ("zeroshot_qwk_mean", "peer_qwk_mean", "zeroshot_minus_peer_ci", "active_qwk_at", "random_qwk_at",
                "scores_to_match_random_200"):
        assert key in summary, key
    assert list(summary["active_qwk_at"]) == ["10", "20", "50"] and summary["random_reference_n"] == 50
    low, high = summary["zeroshot_minus_peer_ci"]
    assert low <= high
    assert summary["zeroshot_qwk_mean"] > 0.3, "the details are countable without scores: a broken scorer sits near 0"
    assert "learning curves stop at n=50" in res.output


def test_no_data_is_a_clear_error(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["bench", "coldstart"])
    assert res.exit_code == 2 and "--data-dir" in res.output
    res = CliRunner().invoke(app, ["bench", "coldstart", "--data-dir", str(tmp_path / "nowhere"), "--sets", "3",
                                   "--cache-dir", str(tmp_path / "cache")])
    assert res.exit_code == 2 and "not found" in res.output


def test_dev_splits_average_the_curves_and_say_how_much_they_move_between_splits(tmp_path: Path) -> None:
    (tmp_path / "asap").mkdir()
    _write(tmp_path / "asap")
    args = ["bench", "coldstart", "--data-dir", str(tmp_path / "asap"), "--sets", "3", "--cache-dir",
            str(tmp_path / "cache"), "--ns", "10,20", "--dev"]
    one = CliRunner().invoke(app, [*args, "--dev-splits", "1", "--design-n", "5"])
    two = CliRunner().invoke(app, [*args, "--dev-splits", "2", "--design-n", "5"])
    assert one.exit_code == 0 and two.exit_code == 0, one.output + two.output
    first = json.loads(one.output.strip().splitlines()[-1])
    both = json.loads(two.output.strip().splitlines()[-1])
    assert "# dev split 2 of 2 (seed 1)" in two.output and "--dev-splits 2 --design-n 5" in two.output
    assert both["dev_splits"] == 2 and both["design_n"] == 5 and first["design_n"] == 5
    assert len(both["scores_to_match_per_split"]) == 2 and set(both["active_qwk_split_sd"]) == {"10", "20"}
    assert "splits" not in both, "each split in full goes to --out, not to the printed line"
    # split 0 of the two-split run is the one-split run: the mean moves by half the second split's difference
    second = 2 * both["random_qwk_at"]["20"] - first["random_qwk_at"]["20"]
    assert abs(both["random_qwk_split_sd"]["20"] - abs(second - first["random_qwk_at"]["20"]) / 2) < 2e-4


def test_dev_splits_need_the_dev_protocol(tmp_path: Path) -> None:
    (tmp_path / "asap").mkdir()
    _write(tmp_path / "asap")
    res = CliRunner().invoke(app, ["bench", "coldstart", "--data-dir", str(tmp_path / "asap"), "--sets", "3",
                                   "--cache-dir", str(tmp_path / "cache"), "--dev-splits", "3"])
    text = " ".join(res.output.replace("│", " ").split())  # typer draws errors in a box
    assert res.exit_code == 2 and "--dev-splits needs --dev" in text
