"""The bundled demo: synthetic scored reflections for the Checking for Understanding rubric.

Why synthetic: real teacher evidence is personal data; the demo must run on a fresh machine with no
download. The generator composes reflections from sentence banks written for this project
(``demo_data/banks.yaml``), so each criterion's quality is planted in the text, and simulated "human"
scores follow the planted level with some rater noise. It is a smoke test of the whole pipeline, not a
measure of accuracy: use ``scoring bench`` on real scored data for that.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import yaml

from rubrics import BUNDLED_DIR

BANKS = Path(__file__).parent / "demo_data" / "banks.yaml"
DEMO_RUBRIC = BUNDLED_DIR / "checking-for-understanding.yaml"
SECOND_SUFFIX = "_rater2"
THIRD_SUFFIX = "_rater3"  # a third person's scores: the backlog's only, never written to a file
N_BACKLOG = 60


def make_reflections(n: int, seed: int = 7, noise: float = 0.12) -> list[dict[str, str]]:
    """``n`` rows with id, reflection, one human score column per criterion, a second, independent rater's
    (``<criterion>_rater2``: two different people, so the policy can measure human-human agreement) and a
    third's (``<criterion>_rater3``: the demo's third assessor, for slots the other two may not take)."""
    banks = yaml.safe_load(BANKS.read_text(encoding="utf-8"))
    rng = random.Random(seed)
    rng2 = random.Random(seed + 1)  # the second rater's own noise; the first rater's draws stay as they were
    rng3 = random.Random(seed + 2)  # the third's, likewise apart
    criteria = [k for k in banks if k != "context"]
    rows = []
    for i in range(n):
        skill = rng.random()  # a teacher's overall skill correlates the criteria, as in real portfolios
        sentences = rng.sample(banks["context"], 2)
        row: dict[str, str] = {"id": f"demo-{i + 1:04d}"}
        for c in criteria:
            top = max(banks[c])
            level = min(top, max(0, round(skill * top + rng.gauss(0, 0.6))))
            sentences += rng.sample(banks[c][level], k=min(2, len(banks[c][level])) if rng.random() < 0.4 else 1)
            human = level
            if rng.random() < noise:
                human = min(top, max(0, level + rng.choice([-1, 1])))
            row[c] = str(human)
            second = level if rng2.random() >= noise else min(top, max(0, level + rng2.choice([-1, 1])))
            row[f"{c}{SECOND_SUFFIX}"] = str(second)
            third = level if rng3.random() >= noise else min(top, max(0, level + rng3.choice([-1, 1])))
            row[f"{c}{THIRD_SUFFIX}"] = str(third)
        rng.shuffle(sentences)
        row["reflection"] = " ".join(sentences)
        rows.append(row)
    return rows


def split_demo_rows(n_train: int, n_backlog: int = N_BACKLOG) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The training rows and the backlog rows (with their hidden human scores) of a demo of this size."""
    rows = make_reflections(n_train + n_backlog)
    return rows[:n_train], rows[n_train:]


def write_demo(out_dir: Path, n_train: int = 160, n_backlog: int = N_BACKLOG) -> tuple[Path, Path]:
    """Write ``train.csv`` (human-scored) and ``backlog.csv`` (unscored, with a few broken rows)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    train, backlog = split_demo_rows(n_train, n_backlog)
    crit = [k for k in train[0] if k not in {"id", "reflection"} and not k.endswith(THIRD_SUFFIX)]
    train_path, backlog_path = out_dir / "train.csv", out_dir / "backlog.csv"
    with train_path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["id", "reflection", *crit], extrasaction="ignore")
        w.writeheader()
        w.writerows(train)
    with backlog_path.open("wb") as fh:
        fh.write(b"id,reflection\r\n")
        buf = []
        for r in backlog:
            buf.append([r["id"], r["reflection"]])
        buf.insert(5, ["demo-empty", ""])  # empty evidence -> reject
        buf.insert(9, [backlog[0]["id"], backlog[0]["reflection"]])  # duplicate id -> reject
        import io

        s = io.StringIO()
        csv.writer(s).writerows(buf)
        fh.write(s.getvalue().encode("utf-8"))
        fh.write(b'demo-latin1,"Caf\xe9 talk: I asked students what they noticed."\r\n')  # not UTF-8 -> reject
    return train_path, backlog_path
