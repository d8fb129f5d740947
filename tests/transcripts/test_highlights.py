"""Evidence highlights: sentence spans, the strength math, unit windows, and the door-level API."""

from __future__ import annotations

import string
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from models.encoder import Chunk
from models.highlights import HighlightError, Unit, margins, rank_highlights
from models.sentences import encode_pooled, pack_units, split_sentences
from rubrics.schema import parse_rubric
from scoring.highlights import criterion_units, explain, highlights_for

# -- sentences ------------------------------------------------------------------------------------


def test_sentence_splitter_keeps_abbreviations_decimals_and_initials() -> None:
    text = "I asked Ms. Rivera why.  She said 3.5 is fine! Then J. Smith left, e.g. early.\n\nNew paragraph"
    got = [text[a:b] for a, b in split_sentences(text)]
    assert got == [
        "I asked Ms. Rivera why.",
        "She said 3.5 is fine!",
        "Then J. Smith left, e.g. early.",
        "New paragraph",
    ]


def test_a_quoted_question_the_sentence_goes_on_after_does_not_end_it() -> None:
    """Feedback quotes the educator's own sentences: a cut after ?' left "and used cold calling..." alone."""
    text = "I asked 'why do you think so?' and used cold calling so many students answered. \"Why?\" She paused."
    got = [text[a:b] for a, b in split_sentences(text)]
    assert got == ["I asked 'why do you think so?' and used cold calling so many students answered.",
                   "\"Why?\"", "She paused."]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=string.ascii_letters + " .!?\n\"'", max_size=300))
def test_sentence_spans_slice_the_text_and_lose_nothing(text: str) -> None:
    spans = split_sentences(text)
    prev_end = 0
    for a, b in spans:
        piece = text[a:b]
        assert piece and piece == piece.strip()
        assert a >= prev_end
        prev_end = b
    # Every non-space character is inside exactly one sentence.
    assert "".join(text[a:b] for a, b in spans).replace(" ", "").replace("\n", "") == text.replace(
        " ", ""
    ).replace("\n", "")


# -- strength math --------------------------------------------------------------------------------


def test_margins_are_target_minus_strongest_rival() -> None:
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.3, 0.4, 0.3]])
    np.testing.assert_allclose(margins(p, 0), [0.5, -0.5, -0.1])
    np.testing.assert_allclose(margins(p, 2), [p[0, 2] - 0.7, 0.3, -0.1])
    with pytest.raises(HighlightError, match="outside the 3 levels"):
        margins(p, 3)


def test_rank_highlights_orders_support_and_counter() -> None:
    units = [Unit(i * 10, i * 10 + 5, f"u{i}") for i in range(5)]
    p1 = np.array([0.9, 0.2, 0.6, 0.5, 0.05])
    proba = np.column_stack([1 - p1, p1])
    hl = rank_highlights(units, proba, target=1, k=2)
    assert [(h.text, h.kind) for h in hl] == [
        ("u0", "support"),
        ("u2", "support"),
        ("u4", "counter"),
        ("u1", "counter"),
    ]
    assert hl[0].strength == pytest.approx(0.8) and hl[-1].strength == pytest.approx(-0.6)
    # u3 (p=0.5) pulls neither way and is never shown.
    assert all(h.text != "u3" for h in rank_highlights(units, proba, target=1, k=5))
    with pytest.raises(HighlightError, match="5 units but 4"):
        rank_highlights(units, proba[:4], target=1)


# -- windows that never split a unit --------------------------------------------------------------


class _WordEncoder:
    """A stand-in encoder: one token per word, a vector per window counting 4 marker words."""

    window = 10
    dim = 4
    _vocab = ("why", "agree", "exactly", "everyone")

    def __init__(self) -> None:
        self.seen: list[str] = []

    def tokenizer(self, texts: list[str], add_special_tokens: bool = False, verbose: bool = False) -> dict:
        return {"input_ids": [t.split() for t in texts]}

    def chunk(self, text: str) -> list[Chunk]:
        words = [(m.start(), m.end()) for m in __import__("re").finditer(r"\S+", text)]
        out = []
        for i in range(0, len(words), self.window):
            part = words[i : i + self.window]
            out.append(Chunk(part[0][0], part[-1][1], len(part)))
        return out

    def encode_windows(self, windows: list[str], show_progress: bool = False) -> np.ndarray:
        self.seen.extend(windows)
        v = np.array(
            [[w.lower().split().count(k) + 0.01 for k in self._vocab] for w in windows], dtype=np.float32
        )
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_pack_units_keeps_whole_units_and_splits_only_oversized_ones() -> None:
    enc = _WordEncoder()
    units = [
        "a b c",
        "d e f g",
        "h i j k l",
        "one two three four five six seven eight nine ten eleven twelve",
        "m",
    ]
    windows = pack_units(enc, units)
    texts = [w for w, _ in windows]
    assert texts == [
        "a b c\nd e f g",
        "h i j k l",
        units[3][: units[3].index(" eleven")],
        "eleven twelve",
        "m",
    ]
    assert all(n <= enc.window for _, n in windows)
    # Every small unit appears whole in exactly one window.
    for u in (units[0], units[1], units[2], units[4]):
        assert sum(u in w.split("\n") for w in texts) == 1


def test_encode_pooled_reads_every_unit_once() -> None:
    enc = _WordEncoder()
    vec = encode_pooled(enc, [["why now", "do you agree", "why"], []])
    assert vec.shape == (2, 4)
    assert np.linalg.norm(vec[0]) == pytest.approx(1.0) and not vec[1].any()
    assert "\n".join(enc.seen).split() == "why now do you agree why".split()


# -- door-level API with a small trained scorer ------------------------------------------------------

RUBRIC = parse_rubric(
    {
        "id": "talk",
        "version": 1,
        "title": "Talk",
        "evidence": ["transcript", "reflection"],
        "criteria": [
            {
                "id": "press",
                "title": "Presses for reasoning",
                "evidence": ["transcript:teacher"],
                "levels": [{"score": 0}, {"score": 1}],
            },
            {
                "id": "reflect",
                "title": "Reflects",
                "evidence": ["reflection"],
                "levels": [{"score": 0}, {"score": 1}],
            },
        ],
    }
)
PRESS = [
    "why do you think that",
    "how do you know it works",
    "can you explain your reasoning",
    "why is that true",
    "explain how you got that",
    "how do you know that is right",
]
OTHER = [
    "open your books to page ten",
    "sit down please",
    "take out a pencil",
    "line up for lunch",
    "turn the page",
    "put your books away",
]


@pytest.fixture(scope="module")
def model() -> SimpleNamespace:
    clf = make_pipeline(TfidfVectorizer(), LogisticRegression(C=10.0)).fit(PRESS + OTHER, [1] * 6 + [0] * 6)
    return SimpleNamespace(rubric=RUBRIC, scorers={"press": clf, "reflect": clf})


def test_obviously_supporting_turn_ranks_first_with_exact_offsets(model: SimpleNamespace) -> None:
    transcript = (
        "[00:00:01] T: Good morning, take out a pencil.\n"
        "[00:00:05] S1: Why do we need a pencil?\n"
        "[00:00:09] T: Turn the page and sit down please.\n"
        "[00:00:15] T: Maya, why do you think that? Can you explain your reasoning?\n"
        "[00:00:30] S2: Because it is bigger.\n"
    )
    hl = highlights_for(model, "press", transcript, k=3, level=1)
    assert (
        hl[0].kind == "support"
        and hl[0].text == "Maya, why do you think that? Can you explain your reasoning?"
    )
    assert hl[0].label == "T" and hl[0].field == "transcript"
    for h in hl:
        assert transcript[h.start : h.end] == h.text
        assert h.label == "T"  # the student's "Why do we need a pencil?" is never a candidate
    counters = [h for h in hl if h.kind == "counter"]
    assert counters and all(h.strength < 0 for h in counters)
    assert [h.strength for h in hl if h.kind == "support"] == sorted(
        (h.strength for h in hl if h.kind == "support"), reverse=True
    )


def test_reflection_sentences_are_highlighted_with_offsets(model: SimpleNamespace) -> None:
    reflection = (
        "First I said turn the page. Then I asked why do you think that, how do you know? We lined up."
    )
    out = explain(model, "reflect", reflection, k=1, level=1)
    assert set(out["probabilities"]) == {"0", "1"} and out["score"] in (0, 1)
    top = out["highlights"][0]
    assert top.kind == "support" and top.text == "Then I asked why do you think that, how do you know?"
    assert reflection[top.start : top.end] == top.text and top.field == "reflection"


def test_teacher_only_criterion_ignores_student_turns(model: SimpleNamespace) -> None:
    base = "T: Why do you think that?\nS1: {s}\nT: Turn the page.\nS2: {s2}\n"
    a = base.format(s="Because it is even.", s2="I agree.")
    b = base.format(s="How do you know it works, why is that true?", s2="Explain your reasoning!")
    ea, eb = explain(model, "press", a, k=2), explain(model, "press", b, k=2)
    assert ea["probabilities"] == eb["probabilities"]
    assert [(h.text, h.strength) for h in ea["highlights"]] == [
        (h.text, h.strength) for h in eb["highlights"]
    ]
    units = criterion_units(RUBRIC, RUBRIC.criterion("press"), {"transcript": a})
    assert [u.label for u in units] == ["T", "T"]


def test_a_dict_of_fields_routes_each_field(model: SimpleNamespace) -> None:
    ev = {"transcript": "T: Why is that true?\nS: Because.\n", "reflection": "I asked why. It went well."}
    assert {h.field for h in highlights_for(model, "press", ev, k=5)} == {"transcript"}
    assert {h.field for h in highlights_for(model, "reflect", ev, k=5)} == {"reflection"}
    with pytest.raises(ValueError, match="has levels"):
        explain(model, "press", ev, level=7)


def test_batch_hook_explains_the_decided_score_with_offsets(model: SimpleNamespace) -> None:
    from scoring.highlights import highlight_hook

    ev = {
        "transcript": "T: Sit down please.\nS: Ok.\nT: Why is that true?\n",
        "reflection": "I asked why. We lined up.",
    }
    item = SimpleNamespace(
        criteria={"press": SimpleNamespace(score=1, extra={}), "reflect": SimpleNamespace(score=0, extra={})}
    )
    highlight_hook(model, 1)([item], [SimpleNamespace(evidence=ev)])
    press, reflect = item.criteria["press"].extra["highlights"], item.criteria["reflect"].extra["highlights"]
    assert [(h["kind"], h["text"]) for h in press] == [
        ("support", "Why is that true?"),
        ("counter", "Sit down please."),
    ]
    # Explaining score 0 flips the roles of the same kind of evidence.
    assert [(h["kind"], h["text"]) for h in reflect] == [
        ("support", "We lined up."),
        ("counter", "I asked why."),
    ]
    for h in press + reflect:
        assert ev[h["field"]][h["start"] : h["end"]] == h["text"]
        assert set(h) == {"start", "end", "text", "strength", "kind", "field", "label"}
