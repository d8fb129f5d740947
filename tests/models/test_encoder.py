"""The encoder reads every token of long evidence and never re-encodes an unchanged text."""

from __future__ import annotations

import numpy as np
import pytest

from models.encoder import EncoderError, resolve_encoder_path

pytestmark = pytest.mark.slow


def test_weights_come_from_an_installed_package_not_a_hub():
    path = resolve_encoder_path("all-MiniLM-L6-v2")
    assert (path / "model.safetensors").exists()
    with pytest.raises(EncoderError, match="neither a bundled encoder"):
        resolve_encoder_path("sentence-transformers/some-hub-model")


def test_long_text_is_windowed_to_cover_every_character(encoder):
    text = " ".join(f"Sentence {i} about checking student understanding." for i in range(300))
    chunks = encoder.chunk(text)
    assert len(chunks) > 1
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert b.start <= a.end, "windows must overlap or touch: no text skipped"
    for c in chunks:
        n = len(encoder.tokenizer(text[c.start : c.end], add_special_tokens=True)["input_ids"])
        assert n <= encoder.max_tokens, "a window longer than the model's limit would be truncated silently"


def test_the_end_of_a_long_text_changes_its_embedding(encoder):
    head = "The students discussed fractions with a partner. " * 80
    a = encoder.encode([head + "Then the lesson ended quietly."])[0]
    b = encoder.encode([head + "Then I stopped the class and retaught equivalent fractions with a number line model."])[0]
    assert np.linalg.norm(a) == pytest.approx(1.0, abs=1e-4)
    assert float(a @ b) < 0.9999, "a truncating encoder would give identical vectors"


def test_unchanged_texts_are_served_from_the_cache(encoder):
    texts = [f"A reflection about lesson number {i} and what students said." for i in range(5)]
    first = encoder.encode(texts)
    before = dict(encoder.stats)
    again = encoder.encode(texts)
    assert encoder.stats["windows_encoded"] == before["windows_encoded"]
    assert encoder.stats["windows_cached"] == before["windows_cached"] + 5
    np.testing.assert_allclose(first, again, atol=1e-6)


def test_cache_persists_across_encoder_instances(encoder, encoder_cache):
    from models.encoder import Encoder

    encoder.encode(["persisted text for the cache test"])
    fresh = Encoder(cache_dir=encoder_cache, precision=encoder.precision)
    fresh.encode(["persisted text for the cache test"])
    assert fresh.stats == {"windows_encoded": 0, "windows_cached": 1, "filler_rows": 0}


def test_a_windows_vector_is_the_same_bits_whatever_it_is_encoded_with(encoder):
    # The same backlog scored in other blocks, by other Ray actors or with part of it cached must give the
    # same probabilities, so a window's vector may depend on nothing but the window (Encoder._embed).
    from scoring.demo import make_reflections

    rng = np.random.default_rng(7)
    texts = [r["reflection"] for r in make_reflections(40, seed=5)]
    texts += [" ".join(rng.choice(texts, size=k)) for k in (3, 5, 9, 14)]  # longer ones: other padded lengths
    whole = encoder._embed(texts)
    assert whole.shape == (len(texts), encoder.dim)
    for trial in range(3):
        pick = rng.permutation(len(texts))[: rng.integers(1, len(texts))]
        assert np.array_equal(encoder._embed([texts[i] for i in pick]), whole[pick]), f"trial {trial}"
    assert np.array_equal(encoder._embed([texts[-1]])[0], whole[-1])
    assert np.allclose(np.linalg.norm(whole, axis=1), 1.0, atol=1e-5)


def _passes(encoder, monkeypatch) -> list[tuple[int, int]]:
    """Record (real rows, rows) of every forward pass the encoder runs."""
    seen: list[tuple[int, int]] = []
    real = type(encoder)._pass

    def spy(self, texts, pad_to, rows):  # type: ignore[no-untyped-def]
        seen.append((len(texts), rows))
        return real(self, texts, pad_to, rows)

    monkeypatch.setattr(type(encoder), "_pass", spy)
    return seen


@pytest.mark.parametrize("free", [False, True])
def test_passes_carry_filler_rows_only_where_rows_move_the_bits(encoder, monkeypatch, free):
    from scoring.demo import make_reflections

    texts = [r["reflection"] for r in make_reflections(10, seed=31)]
    monkeypatch.setattr(encoder, "_rows_free", free)
    seen = _passes(encoder, monkeypatch)
    before = encoder.stats["filler_rows"]
    encoder._embed(texts)
    assert sum(n for n, _ in seen) == len(texts) and all(rows <= encoder.batch_size for _, rows in seen)
    if free:
        assert all(n == rows for n, rows in seen), "no filler where a row's bits do not depend on its pass"
    else:
        assert all(rows == encoder.batch_size for _, rows in seen), "every pass one shape"
        assert any(n < rows for n, rows in seen), "10 texts over several padded lengths leave room for filler"
    assert encoder.stats["filler_rows"] - before == sum(rows - n for n, rows in seen)


def test_the_probe_says_rows_move_the_bits_when_a_pass_of_several_rows_rounds_differently(encoder, monkeypatch):
    from models.encoder import Encoder

    real = Encoder._pass

    def shifted(self, texts, pad_to, rows):  # type: ignore[no-untyped-def]
        v = real(self, texts, pad_to, rows)
        return v + np.float32(1e-7) if rows == 3 else v  # one row count rounds in the last bit or so

    monkeypatch.setattr(Encoder, "_pass", shifted)
    assert encoder._probe_rows_free() is False
    monkeypatch.setattr(Encoder, "_pass", real)
    assert encoder._probe_rows_free() is encoder.rows_free(), "the same verdict each time on one machine"


def test_vectors_with_and_without_filler_are_the_same_bits_where_the_probe_says_rows_are_free(encoder, monkeypatch):
    from scoring.demo import make_reflections

    if not encoder.rows_free():
        pytest.skip("on this machine a pass's rows move the bits: every pass has filler (the test above covers it)")
    texts = [r["reflection"] for r in make_reflections(12, seed=41)]
    free = encoder._embed(texts)
    monkeypatch.setattr(encoder, "_rows_free", False)
    assert np.array_equal(encoder._embed(texts), free), "cached vectors stay valid whichever way they were made"


def test_a_machines_verdict_is_probed_once_and_remembered_per_machine_and_encoder(encoder, monkeypatch, tmp_path):
    from models.encoder import Encoder

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    probes: list[bool] = []
    real = Encoder._probe_rows_free

    def counted(self):  # type: ignore[no-untyped-def]
        probes.append(real(self))
        return probes[-1]

    monkeypatch.setattr(Encoder, "_probe_rows_free", counted)
    monkeypatch.setattr(encoder, "_rows_free", None)
    first = encoder.rows_free()
    monkeypatch.setattr(encoder, "_rows_free", None)  # as a new process would start
    assert encoder.rows_free() is first and len(probes) == 1, "the second process reads the verdict"
    monkeypatch.setattr(Encoder, "_probe_key", lambda self: "another machine")
    monkeypatch.setattr(encoder, "_rows_free", None)
    assert encoder.rows_free() is first and len(probes) == 2, "another machine or encoder probes for itself"
    assert (tmp_path / "rubric-scoring" / "rows-free.json").exists()
