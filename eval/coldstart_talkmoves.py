"""A lesson-level TalkMoves criterion for the cold-start benchmark, derived from the human codes.

Criterion: ``pressing_reasoning`` of the bundled ``accountable-talk`` rubric (levels 1-4, with its own
descriptors), read from the teacher's turns of the lesson transcript (``transcript:teacher``, through
``scoring.evidence.criterion_text`` as the product reads it). Its human level comes from the annotators'
codes: the share of the lesson's coded teacher utterances that carry move 9 (pressing for reasoning).
Level 1 when no utterance does; otherwise 2, 3 or 4 by the terciles of that share over the *training*
lessons that have any (cut-points rounded to 0.1 percentage points and printed), so the test lessons
never shape the scale. Lessons are split as ``scoring bench talkmoves`` splits them (seed 13, 20% test).

The criterion's ``description`` ("Asks students to explain why, justify a claim or show how they know.")
travels with it: teacher turns are many lines, so the cold-start scorer uses its ``frequency`` signal
(the share of turns matching that sentence; ``models.coldstart``), as ``scoring train`` does for any
rubric whose criterion reads a transcript. Its settings were chosen on the TalkMoves lessons outside both
test splits (the first-200 split and the all-lessons split, seed 13), never on test lessons.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eval.bench_coldstart import Criterion
from eval.bench_talkmoves import Lesson, load_lessons, split_lessons
from rubrics import BUNDLED_DIR, load_rubric
from scoring.evidence import criterion_text

MOVE = 9
REPORTED_SPLITS = (200, None)  # figures are reported on the test lessons of the first 200 lessons and of all lessons


def dev_lessons(all_lessons: list[Lesson], max_lessons: int | None, seed: int) -> tuple[list[Lesson], list[Lesson]]:
    """``--dev``: the first ``max_lessons`` lessons less the test lessons of every reported split (the
    first-200 split, the all-lessons split, and this run's own), a fifth of them playing the test lessons."""
    held = {x.file for m in {*REPORTED_SPLITS, max_lessons} for x in split_lessons(all_lessons[:m], seed, 0.2)[1]}
    return split_lessons([x for x in all_lessons[:max_lessons] if x.file not in held], seed + 1, 0.2)


def talkmoves_criterion(data_dir: Path, dev: bool = False, seed: int = 13, max_lessons: int | None = None) -> Criterion:
    """The criterion over all lessons, or the first ``max_lessons`` in file order (encoding every lesson's
    teacher turns takes long on a small CPU)."""
    rubric = load_rubric(BUNDLED_DIR / "accountable-talk.yaml")
    crit = rubric.criterion("pressing_reasoning")
    all_lessons = load_lessons(data_dir)
    lessons = all_lessons[:max_lessons]
    train, test = dev_lessons(all_lessons, max_lessons, seed) if dev else split_lessons(lessons, seed, 0.2)

    def share(lesson) -> float:  # type: ignore[no-untyped-def]
        coded = [c for c, t in zip(lesson.codes, lesson.teacher_coded, strict=True) if t]
        return sum(MOVE in c for c in coded) / max(len(coded), 1)

    pos = np.array([share(x) for x in train if share(x) > 0])
    cuts = np.round(np.quantile(pos, [1 / 3, 2 / 3]), 3)
    texts, y, is_test = [], [], []
    for group, flag in ((train, False), (test, True)):
        for lesson in group:
            text = criterion_text(rubric, crit, {"transcript": lesson.text, "reflection": ""})
            if not text.strip():
                continue
            s = share(lesson)
            texts.append(text)
            y.append(1 if s == 0 else 2 + int(np.searchsorted(cuts, s, side="right")))
            is_test.append(flag)
    name = (f"talkmoves-pressing_reasoning ({len(lessons)} lessons; move-9 share cuts "
            f"{cuts[0]:.3f}/{cuts[1]:.3f})")
    return Criterion(name, texts, np.asarray(y), np.asarray(is_test), list(crit.scores),
                     [lv.descriptor for lv in crit.levels], crit.description)
