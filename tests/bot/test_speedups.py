"""The shortcuts that make a long letter cheap to read must not change what is read: each is
checked against the plain way it replaces."""
import json
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rasa.shared.nlu.training_data.message import Message
from sklearn.feature_extraction.text import TfidfVectorizer

from bot.nlu import components as C
from bot.nlu import normalize as N
from bot.nlu import risk as R
from bot.nlu.segments import sentences

ROOT = Path(__file__).resolve().parents[2]


def _texts() -> list[str]:
    """Every training example and every labelled message of the project's own sets."""
    import yaml

    out = []
    for f in sorted((ROOT / "data" / "nlu").glob("*.yml")):
        for item in (yaml.safe_load(f.read_text("utf-8")) or {}).get("nlu", []):
            out += [line[2:].strip() for line in (item.get("examples") or "").splitlines() if line.startswith("- ")]
    for f in sorted((ROOT / "eval").glob("*.jsonl")):
        out += [json.loads(line).get("text", "") for line in f.read_text("utf-8").splitlines() if line.strip()]
    return [t for t in out if t]


TEXTS = _texts()


def _plain_clean(text: str) -> str:
    text = text.encode("utf-8", "replace").decode("utf-8", "replace")
    text = unicodedata.normalize("NFC", text.translate(N._INVISIBLE))
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text)
    return N._SPACES.sub(" ", text).strip()


def _plain_strip(text: str) -> str:
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if unicodedata.category(c) != "Mn"))


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_clean_and_fold_match_the_character_by_character_way(text):
    assert N.clean(text) == _plain_clean(text)
    assert N.strip_diacritics(text) == _plain_strip(text)


def test_clean_and_fold_match_on_every_vietnamese_letter_and_decomposed_marks():
    letters = "".join(chr(c) for c in [*range(0x80, 0x250), *range(0x1E00, 0x1F00), 0x300, 0x301, 0x303, 0x309, 0x323])
    for text in (letters, unicodedata.normalize("NFD", letters), "Đà Nẵng\u00ad\u200b\u0085 x", *TEXTS[:2000]):
        assert N.clean(text) == _plain_clean(text)
        assert N.strip_diacritics(text) == _plain_strip(text)


def test_a_cue_is_skipped_only_when_it_cannot_match():
    """``Cue.needs`` is read from the pattern: every match of every cue in every known text holds
    one of its words, and a text without them has no match."""
    for text in TEXTS:
        norm = N.normalize(text)
        for cue in R.CUES:
            if cue.pattern.search(norm) or cue.lines.search(norm):
                assert not cue.absent(norm), (cue.name, text)


@pytest.mark.parametrize("regex, words", [
    (r"\b(?:tu sat|muon chet)\b", ("muon chet", "tu sat")),
    (r"\bdang (?:bi )?danh\b", ("dang ",)),
    (r"(?:\w+ )?giet", ("giet",)),
    (r"\b(?:a+b|\w+)\b", None),             # some match holds no literal: never skipped
])
def test_the_words_a_pattern_needs(regex, words):
    assert R._needs(regex) == words


def test_a_long_letter_reads_the_same_with_the_shortcuts():
    letters = [t for t in TEXTS if len(sentences(t)) > 3][:80]
    assert letters
    for text in letters:
        fast = R.assess_long(text, sentences(text))
        # the plain way: every window read with every cue (no skipping)
        saved = [c.needs for c in R.CUES]
        try:
            for c in R.CUES:
                object.__setattr__(c, "needs", None)
            plain = R.assess_long(text, sentences(text))
        finally:
            for c, n in zip(R.CUES, saved):
                object.__setattr__(c, "needs", n)
        assert (fast.risk, fast.topic, sorted(fast.reasons)) == (plain.risk, plain.topic, sorted(plain.reasons)), text[:80]


def test_the_whole_message_model_reads_a_long_letters_beginning_and_end():
    tok = C.VietnameseTokenizer(C.VietnameseTokenizer.get_default_config())
    text = "mở đầu " + "chữ giữa " * 400 + "cuối thư tối nay ổng về"
    tokens = tok.tokenize(Message(data={"text": text}), "text")
    words = [t.text for t in tokens]
    assert words[:2] == ["mo", "dau"] and words[-7:] == ["cuoi", "thu", "toi", "nay", "ong", "ay", "ve"]
    assert len(tokens) < 0.4 * len(text.split())
    assert all(t.end <= C.NLU_HEAD_CHARS or t.start >= len(text) - C.NLU_TAIL_CHARS for t in tokens)
    short = "chồng em đánh em"
    assert [t.text for t in tok.tokenize(Message(data={"text": short}), "text")] == ["chong", "em", "danh", "em"]


def _same(a, b) -> None:
    a, b = a.tocsr(), b.tocsr()
    a.sort_indices()
    b.sort_indices()
    assert a.shape == b.shape and a.dtype == b.dtype
    assert (a.indptr == b.indptr).all() and (a.indices == b.indices).all() and (a.data == b.data).all()


@pytest.mark.parametrize("make", [
    # Rasa's two featurizers (bot/config.yml) and the SentenceReader's two TF-IDF vectorizers
    lambda: __import__("sklearn.feature_extraction.text", fromlist=["x"]).CountVectorizer(
        analyzer="word", ngram_range=(1, 2), token_pattern=r"(?u)\b\w+\b"),
    lambda: __import__("sklearn.feature_extraction.text", fromlist=["x"]).CountVectorizer(
        analyzer="char_wb", ngram_range=(2, 4)),
    lambda: TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"\S+"),
    lambda: TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, min_df=2),
], ids=["rasa-words", "rasa-chars", "reader-words", "reader-chars"])
def test_remembered_counts_are_scikit_learns(make):
    from bot.nlu import fastvec

    train = [N.normalize(t) for t in TEXTS[::2]]
    plain, fast = make().fit(train), fastvec.speed_up(make().fit(train))
    assert fast._helpline_fast and not getattr(plain, "_helpline_fast", False)
    unseen = [N.normalize(t) for t in TEXTS[1::2]]
    tokens = [w for t in unseen[:300] for w in t.split()]
    odd = ["", " ", "Ô KÌA  Đà\tNẵng\n", "x" * 40, "a b", "\u00a0nbsp\u00a0", "CHỒNG em", "chồng em"]
    for docs in (unseen, tokens, odd, [" ".join(tokens)], tokens):   # tokens twice: the remembered path
        _same(fast.transform(docs), plain.transform(docs))
