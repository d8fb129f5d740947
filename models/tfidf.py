"""Character n-gram TF-IDF whose ``transform`` reuses each word's n-grams instead of regenerating them.

Why: scikit-learn's ``char_wb`` analyzer builds every n-gram of every word of every document in Python,
which made the character view the most expensive step of scoring after the encoder itself. ``char_wb``
n-grams never cross a word boundary, so a document's n-gram counts are the sum of its words' counts, and
words repeat heavily across a backlog (Zipf). ``CharWbTfidf`` is a ``TfidfVectorizer`` (fitting, the
vocabulary, idf and pickling are scikit-learn's own); only ``transform`` maps each distinct word once, through
scikit-learn's own analyzer, and then sums per document. Its output equals the parent's (a test checks
it matrix for matrix); any configuration it does not model falls back to the parent.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

_MAX_CACHED_WORDS = 300_000  # bounded memory on endless backlogs; cleared, not evicted, when full


class CharWbTfidf(TfidfVectorizer):
    """``TfidfVectorizer`` with a per-word cached ``transform`` when ``analyzer="char_wb"``.

    Same constructor as the parent (scikit-learn reads parameters from the signature, so none are added).
    """

    def _fast_path(self, docs: list[Any]) -> bool:
        return (
            self.analyzer == "char_wb"
            and self.input == "content"
            and self.preprocessor is None
            and self.norm in ("l2", "l1", None)
            and all(isinstance(d, str) for d in docs)
        )

    def transform(self, raw_documents: Any) -> sparse.csr_matrix:
        docs = list(raw_documents)
        if not self._fast_path(docs):
            return super().transform(docs)
        vocab = self.vocabulary_
        analyze = self.build_analyzer()
        cache: dict[str, np.ndarray] = self.__dict__.setdefault("_word_ngrams", {})
        if len(cache) > _MAX_CACHED_WORDS:
            cache.clear()
        # documents x distinct words (counts), then words x n-grams from the cache: X = W @ M
        word_index: dict[str, int] = {}
        doc_words: list[int] = []
        indptr = [0]
        for doc in docs:
            doc_words.extend([word_index.setdefault(w, len(word_index)) for w in doc.split()])
            indptr.append(len(doc_words))
        W = sparse.csr_matrix((np.ones(len(doc_words)), doc_words, indptr), shape=(len(docs), len(word_index)))
        rows: list[np.ndarray] = []
        for w in word_index:
            ids = cache.get(w)
            if ids is None:
                ids = cache[w] = np.fromiter((vocab[g] for g in analyze(w) if g in vocab), dtype=np.int64)
            rows.append(ids)
        lens = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        M = sparse.csr_matrix(
            (np.ones(int(lens.sum())), np.concatenate(rows) if rows else np.zeros(0, np.int64),
             np.concatenate([[0], np.cumsum(lens)])),
            shape=(len(word_index), len(vocab)),
        )
        X = (W @ M).tocsr()  # sums duplicate n-grams of a word and repeated words of a document
        X.sum_duplicates()
        X.sort_indices()
        if self.binary:
            X.data[:] = 1.0
        if self.sublinear_tf:
            np.log(X.data, X.data)
            X.data += 1.0
        if self.use_idf:
            X.data *= self.idf_[X.indices]
        if self.norm is not None:
            X = normalize(X, norm=self.norm, copy=False)
        return X.astype(self.dtype, copy=False)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_word_ngrams", None)  # a cache, not part of the model
        return state
