"""The cached character TF-IDF must give scikit-learn's matrix exactly, whatever the text."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer

from models.tfidf import CharWbTfidf

CORPUS = [
    "Students explained their thinking; I pressed them to justify answers.",
    "We copied notes from the board.  Then   we\tcopied\nmore notes!",
    "İstanbul ÉCOLE café naïve — “quoted” words, émigré, ß and STRASSE.",
    "a an I x y z",
    "",
    "Computers help people. Computers harm people? computers, computers...",
]
KW = {"analyzer": "char_wb", "ngram_range": (2, 5), "min_df": 1, "sublinear_tf": True}


def _pair(**kw):
    params = {**KW, **kw}
    return TfidfVectorizer(**params).fit(CORPUS), CharWbTfidf(**params).fit(CORPUS)


def _same(a, b, docs):
    A, B = a.transform(docs), b.transform(docs)
    assert A.shape == B.shape and A.dtype == B.dtype
    np.testing.assert_array_equal(A.indptr, B.indptr)
    np.testing.assert_array_equal(A.indices, B.indices)
    np.testing.assert_allclose(A.data, B.data, rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    "kw",
    [{}, {"sublinear_tf": False}, {"norm": "l1"}, {"norm": None}, {"binary": True}, {"use_idf": False},
     {"ngram_range": (1, 3)}, {"lowercase": False}, {"strip_accents": "unicode"}, {"max_features": 40}],
)
def test_transform_equals_scikit_learns_for_each_setting(kw):
    a, b = _pair(**kw)
    docs = [*CORPUS, "Unseen words: zebra quixotic, and COPIED notes again.", "   "]
    _same(a, b, docs)
    _same(a, b, docs)  # second call answers from the word cache


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=60), min_size=1, max_size=6))
def test_transform_equals_scikit_learns_on_arbitrary_unicode(docs):
    a, b = _pair()
    _same(a, b, docs)


def test_the_word_cache_is_not_pickled_and_other_analyzers_fall_back():
    _, b = _pair()
    b.transform(CORPUS)
    assert b.__dict__.get("_word_ngrams")
    clone = pickle.loads(pickle.dumps(b))
    assert "_word_ngrams" not in clone.__dict__
    words = CharWbTfidf(analyzer="word").fit(CORPUS)
    _same(TfidfVectorizer(analyzer="word").fit(CORPUS), words, CORPUS)
