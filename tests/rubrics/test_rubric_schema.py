"""The rubric file is a contract: everything bundled loads, and every malformed file says where and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from rubrics import RubricError, bundled_rubrics, load_rubric, parse_rubric

MINIMAL = {
    "id": "checking-for-understanding",
    "version": 1,
    "title": "Checking for Understanding",
    "evidence": ["reflection"],
    "criteria": [
        {
            "id": "questioning",
            "title": "Uses questions to elicit student thinking",
            "levels": [
                {"score": 0, "label": "Not yet", "descriptor": "..."},
                {"score": 1, "label": "Developing", "descriptor": "..."},
                {"score": 2, "label": "Proficient", "descriptor": "..."},
            ],
        }
    ],
}


def _with(**changes):
    import copy

    d = copy.deepcopy(MINIMAL)
    d.update(changes)
    return d


def test_the_issue_example_shape_loads():
    r = parse_rubric(MINIMAL)
    assert r.key == "checking-for-understanding@1"
    assert r.criterion("questioning").scores == [0, 1, 2]


def test_every_bundled_rubric_loads_with_several_criteria_or_a_scale():
    found = bundled_rubrics()
    micro = [k for k in found if not k.startswith("asap")]
    assert len(micro) >= 3
    assert {f"asap-set{i}" for i in range(1, 9)} <= set(found)
    for name, path in found.items():
        r = load_rubric(path)
        if not name.startswith("asap"):
            assert len(r.criteria) >= 2, name
    assert [c.id for c in load_rubric(found["asap-set7"]).criteria][1:] == ["ideas", "organization", "style", "conventions"]
    assert len(load_rubric(found["asap-set8"]).criteria) == 7


def test_levels_are_sorted_and_scale_shorthand_expands():
    d = _with(criteria=[{"id": "a", "title": "A", "levels": [{"score": 2}, {"score": 0}, {"score": 1}]},
                        {"id": "b", "title": "B", "scale": {"min": 10, "max": 60}}])
    r = parse_rubric(d)
    assert r.criterion("a").scores == [0, 1, 2]
    assert r.criterion("b").scores == list(range(10, 61))
    assert r.criterion("b").levels[0].label == "10"


@pytest.mark.parametrize(
    ("data", "field", "problem"),
    [
        (_with(version=0), "version", "greater than or equal to 1"),
        (_with(criteria=[]), "criteria", "at least 1"),
        ({k: v for k, v in MINIMAL.items() if k != "title"}, "title", "required field is missing"),
        (_with(colour="red"), "colour", "unknown field"),
        (_with(criteria=[{"id": "q", "title": "Q", "levels": [{"score": 0}]}]), "criteria[q].levels", "at least 2 levels"),
        (_with(criteria=[{"id": "q", "title": "Q", "levels": [{"score": 0}, {"score": 0}]}]), "criteria[q].levels", "repeated [0]"),
        (_with(criteria=[{"id": "q", "title": "Q", "levels": [{"score": "high"}, {"score": 1}]}]), "criteria[q].levels[0].score", "expected a whole number, found the text 'high'"),
        (_with(criteria=[{"id": "q", "title": "Q", "scale": {"min": 3, "max": 0}}]), "criteria[q]",
         "scale: scale.max (0) must be greater than scale.min (3)"),
        (_with(criteria=[{"id": "q", "title": "Q", "evidence": ["video"], "levels": [{"score": 0}, {"score": 1}]}]), "", "reads evidence 'video'"),
        (_with(criteria=[{"id": "q", "title": "Q", "scale": {"min": True, "max": 4}}]), "criteria[q]", "scale.min: expected a whole number, found True"),
        (_with(version=True), "version", "a YAML boolean"),
        (_with(criteria=[{"id": "nächster_schritt", "title": "Nächster Schritt", "levels": [{"score": 0}, {"score": 1}]}]),
         "criteria[nächster_schritt].id", "plain ASCII letters (a-z, A-Z), digits, '_', '-' or '.', starting with a "
         "letter or digit; found 'ä' (titles and labels may use any characters)"),
        (_with(evidence=["transcript"], criteria=[{"id": "q", "title": "Q", "evidence": ["transcript:coach"],
                                                   "levels": [{"score": 0}, {"score": 1}]}]), "",
         "criterion 'q' reads evidence 'transcript:coach': a transcript field narrows to the turns of one role, "
         "teacher / student / other; found 'coach'"),
    ],
)
def test_malformed_rubrics_name_the_field_and_the_problem(data, field, problem):
    with pytest.raises(RubricError) as exc:
        parse_rubric(data, "r.yaml")
    assert exc.value.source == "r.yaml"
    assert exc.value.field == field
    assert problem in str(exc.value)
    assert "Tuple" not in str(exc.value) and "should have" not in str(exc.value)  # pydantic's words, not ours


def test_an_empty_rubric_file_is_called_empty(tmp_path: Path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(RubricError, match="found nothing \\(the file or field is empty\\)") as exc:
        load_rubric(empty)
    assert "NoneType" not in str(exc.value)


def test_file_errors_name_the_file_and_line(tmp_path: Path):
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("id: x\nversion: 1\ncriteria: [\n")
    with pytest.raises(RubricError, match=r"bad.yaml: line \d+, column \d+: invalid YAML"):
        load_rubric(bad_yaml)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("title: Caf\xe9".encode("latin-1"))
    with pytest.raises(RubricError, match="not UTF-8"):
        load_rubric(latin)
    with pytest.raises(RubricError, match="file not found"):
        load_rubric(tmp_path / "missing.yaml")


def test_fingerprint_changes_with_content_not_with_key_order():
    a = parse_rubric(MINIMAL)
    b = parse_rubric(dict(reversed(list(MINIMAL.items()))))
    assert a.fingerprint() == b.fingerprint()
    changed = _with(title="Another title")
    assert parse_rubric(changed).fingerprint() != a.fingerprint()


def test_every_problem_of_a_rubric_is_listed_not_just_counted():
    d = _with(colour="red", title=None)
    with pytest.raises(RubricError) as exc:
        parse_rubric(d, "r.yaml")
    text = str(exc.value)
    assert "colour" in text and "title" in text and "more problem" not in text


def test_a_repeated_criterion_does_not_hide_an_award_naming_a_missing_one():
    crit = MINIMAL["criteria"][0]
    d = _with(criteria=[crit, crit], award={"min_level": {"questioning": 1, "evidence_use": 1}})
    with pytest.raises(RubricError) as exc:
        parse_rubric(d, "r.yaml")
    text = str(exc.value)
    assert "found repeated ['questioning']" in text and "award.min_level names criterion 'evidence_use'" in text


def test_rubric_check_reports_every_file_and_fails_if_any_is_bad(tmp_path: Path):
    from typer.testing import CliRunner

    from scoring.cli import app

    good = Path(__file__).parents[2] / "rubrics" / "bundled" / "checking-for-understanding.yaml"
    bad1, bad2 = tmp_path / "a.yaml", tmp_path / "b.yaml"
    bad1.write_text("id: a\nversion: 1\n")
    bad2.write_text("id: [\n")
    res = CliRunner().invoke(app, ["rubric", "check", str(bad1), str(good), str(bad2)])
    out = " ".join(res.output.split())
    assert res.exit_code == 2 and "a.yaml" in out and "b.yaml" in out and "ok" in out and "checking-for-understanding" in out


def test_a_field_given_twice_is_refused_with_both_lines_not_silently_overwritten(tmp_path: Path):
    """A second `criteria:` pasted below the first would otherwise drop every criterion of the first."""
    import yaml

    body = yaml.safe_dump(MINIMAL, sort_keys=False)
    twice = tmp_path / "twice.yaml"
    twice.write_text(body + "criteria:\n  - {id: other, title: Other, scale: {min: 0, max: 3}}\n")
    first = body.splitlines().index("criteria:") + 1
    last = len(body.splitlines()) + 1
    with pytest.raises(RubricError) as exc:
        load_rubric(twice)
    assert f"twice.yaml: line {last}, column 1: invalid YAML: field 'criteria' is given twice in one mapping " \
           f"(first on line {first}); keep one" in str(exc.value)


def test_a_windows_1252_file_is_refused_at_its_line_and_column(tmp_path: Path):
    cp = tmp_path / "cp.yaml"
    cp.write_bytes("id: x\nversion: 1\ntitle: \u201cWait time\u201d\n".encode("cp1252"))
    with pytest.raises(RubricError) as exc:
        load_rubric(cp)
    assert "cp.yaml: line 3, column 8: not UTF-8 text (byte 0x93)" in str(exc.value)
    assert "Windows-1252" in str(exc.value)


def test_rubric_check_names_the_level_left_without_a_descriptor_and_a_gap_in_the_scale(tmp_path: Path):
    """An author who forgot one level's descriptor (or left it blank) is told which level, and why it matters on
    day one; a scale that skips a score is shown as it is, not as a range."""
    import yaml
    from typer.testing import CliRunner

    from scoring.cli import app

    d = _with(criteria=[{"id": "q", "title": "Q", "levels": [{"score": 1, "descriptor": "none"},
                                                               {"score": 2, "label": "Emerging", "descriptor": "  "},
                                                               {"score": 3, "descriptor": "some"},
                                                               {"score": 5, "descriptor": "all"}]}])
    f = tmp_path / "r.yaml"
    f.write_text(yaml.safe_dump(d))
    assert not parse_rubric(d).criterion("q").has_descriptors  # a blank descriptor describes nothing
    res = CliRunner().invoke(app, ["rubric", "check", str(f)])
    out = " ".join(res.output.split())
    assert res.exit_code == 0, out
    assert "q: levels 1, 2, 3, 5 (4; none at 4)" in out
    assert "no descriptor for level(s) 2 (Emerging): the zero-shot/cold-start scorer needs one on every level" in out
