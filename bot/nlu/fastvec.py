"""A faster, equivalent ``transform`` for fitted scikit-learn count vectorizers.

A long letter is counted several times per message: by Rasa's two ``CountVectorsFeaturizer``s
(each token, then the whole text) and by the ``SentenceReader``'s TF-IDF (each sentence).
scikit-learn analyses every document from scratch in Python, n-gram by n-gram; measured on the
2,000-character letters of ``bench/nlu.py`` that was about a quarter of a parse. A letter repeats
a few hundred syllables, so the vocabulary indices of each word (``char_wb``) or of each short
document (a single token) are remembered instead.

``speed_up(vectorizer)`` replaces the vectorizer's ``_count_vocab`` on that one object, only for a
fixed vocabulary (fitting is untouched). The result is the same sparse matrix, value for value
(``tests/bot/test_fastvec.py`` compares them on every training example).
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import scipy.sparse as sp

# a document up to this length is remembered whole (Rasa counts each token as a document)
SHORT_DOC = 32
# remembered entries per vectorizer before the memory starts again
MAX_ENTRIES = 200_000


def speed_up(vectorizer: Any) -> Any:
    """Give ``vectorizer`` (a fitted ``CountVectorizer`` or ``TfidfVectorizer``) the remembering
    ``_count_vocab``; vectorizers with a custom analyzer, preprocessor or tokenizer, or with stop
    words, keep scikit-learn's own. Idempotent."""
    if getattr(vectorizer, "_helpline_fast", False):
        return vectorizer
    if not (callable(getattr(vectorizer, "_count_vocab", None)) and vectorizer.analyzer in ("word", "char_wb")
            and vectorizer.preprocessor is None and vectorizer.tokenizer is None and not vectorizer.stop_words
            and vectorizer.input == "content"):
        return vectorizer
    original = vectorizer._count_vocab
    memory: dict = {}

    def count_vocab(raw_documents: Iterable[str], fixed_vocab: bool):
        if not fixed_vocab:
            return original(raw_documents, fixed_vocab)
        vocabulary = vectorizer.vocabulary_
        if len(memory) > MAX_ENTRIES:
            memory.clear()
        rows = [_indices(vectorizer, doc, vocabulary, memory) for doc in raw_documents]
        return vocabulary, _matrix(rows, len(vocabulary), vectorizer.dtype)

    vectorizer._count_vocab = count_vocab
    vectorizer._helpline_fast = True
    return vectorizer


_EMPTY = np.zeros(0, dtype=np.int64)


def _indices(vectorizer: Any, doc: Any, vocabulary: dict, memory: dict) -> np.ndarray:
    """The vocabulary indices of one document's features, repeated as often as they occur."""
    if isinstance(doc, bytes):
        doc = vectorizer.decode(doc)
    short = len(doc) <= SHORT_DOC
    if short and doc in memory:
        return memory[doc]
    if vectorizer.analyzer == "char_wb":
        preprocessed = vectorizer.build_preprocessor()(vectorizer.decode(doc))
        words = [_word(vectorizer, w, vocabulary, memory) for w in preprocessed.split()]
        found = np.concatenate(words) if words else _EMPTY
    else:
        get = vocabulary.get
        found = np.array([i for i in map(get, vectorizer.build_analyzer()(doc)) if i is not None], dtype=np.int64)
    if short:
        memory[doc] = found
    return found


def _word(vectorizer: Any, word: str, vocabulary: dict, memory: dict) -> np.ndarray:
    """The indices of one word's character n-grams (scikit-learn's ``_char_wb_ngrams``)."""
    key = ("w", word)
    hit = memory.get(key)
    if hit is None:
        min_n, max_n = vectorizer.ngram_range
        w = f" {word} "
        grams = []
        for n in range(min_n, max_n + 1):
            offset = 0
            grams.append(w[:n])
            while offset + n < len(w):
                offset += 1
                grams.append(w[offset:offset + n])
            if offset == 0:  # a short word counts once
                break
        get = vocabulary.get
        hit = memory[key] = np.array([i for i in map(get, grams) if i is not None], dtype=np.int64)
    return hit


def _matrix(rows: list, width: int, dtype: Any) -> sp.csr_matrix:
    """The CSR matrix scikit-learn builds from the rows' indices: each index once per row, sorted,
    with the number of times it occurs (scipy sums the repeated entries)."""
    lengths = [len(r) for r in rows]
    cols = np.concatenate(rows).astype(np.int32) if rows else np.zeros(0, np.int32)
    row_ids = np.repeat(np.arange(len(rows), dtype=np.int32), lengths)
    X = sp.coo_matrix((np.ones(len(cols), dtype=np.intc), (row_ids, cols)), shape=(len(rows), width)).tocsr()
    X.sum_duplicates()
    X.sort_indices()
    return X.astype(dtype, copy=False)
