"""``bench coldstart --talkmoves --dev`` never reads a test lesson of either reported split."""

from __future__ import annotations

from eval.bench_talkmoves import Lesson, split_lessons
from eval.coldstart_talkmoves import dev_lessons


def test_dev_lessons_leave_out_the_test_lessons_of_both_splits() -> None:
    lessons = [Lesson(file=f"l{i:03d}.txt", text=f"lesson {i}") for i in range(260)]
    test_200 = {x.file for x in split_lessons(lessons[:200], 13, 0.2)[1]}
    test_all = {x.file for x in split_lessons(lessons, 13, 0.2)[1]}
    assert test_all - test_200  # the two splits' test lessons differ
    for max_lessons in (None, 200, 120):
        train, test = dev_lessons(lessons, max_lessons, 13)
        used = {x.file for x in train + test}
        assert used and test and not used & (test_200 | test_all)
        assert used <= {x.file for x in lessons[:max_lessons]}
