"""Property-based tests of the normaliser and the risk rules (hypothesis).

The tables in test_normalize.py and test_risk.py pin what chosen messages mean; these properties
say what must hold for every message, however it is typed: on a cheap phone without diacritics,
in capitals, from a keyboard that sends decomposed accents or zero-width characters, or after a
greeting. A missed high or imminent message is the worst error the helpline can make
(../shared/spec/TAXONOMY.md), so the risk properties are about never losing danger.

``clean`` and ``fold`` are idempotent. ``normalize`` is deliberately not: dialect and teencode are
read on the accented syllable ("tụi" folds to "tui", which read again would become "tôi"), so its
output is instead checked to be folded already.
"""
from __future__ import annotations

import unicodedata
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.intents import RISK_LEVELS, TOPICS, risk_rank
from bot.nlu.normalize import _INVISIBLE, _WORD, clean, fold, has_diacritics, normalize, strip_diacritics, tokenize
from bot.nlu.risk import assess
from bot.understanding import understand

FAST = settings(max_examples=150, deadline=None)

TABLE = yaml.safe_load((Path(__file__).parents[1] / "data" / "risk_table.yaml").read_text("utf-8"))["cases"]
# phrases written apart from the rules, each at least high or imminent
DANGER = [c["text"] for c in TABLE if c.get("min") in ("high", "imminent")]

# --- text strategies --------------------------------------------------------------------------

TONES = ("", "\u0300", "\u0301", "\u0303", "\u0309", "\u0323")     # huyền sắc ngã hỏi nặng
LETTERS = sorted({unicodedata.normalize("NFC", v + t) for v in "aăâeêioôơuưy" for t in TONES}
                 | set("bcdđghklmnpqrstvx"))
LETTERS += [ch.upper() for ch in LETTERS]
INVISIBLE = [chr(c) for c in _INVISIBLE]
# the words the rules are written in, so generated messages reach the rules, not only the model
VOCABULARY = sorted({w for c in TABLE for w in c["text"].split()})
SEPARATORS = (". ", "! ", "? ", "\n", ", ", " - ", "... ")

# anything at all, with lone surrogates (half an emoji from a provider), control and format
# characters made common
any_text = st.lists(st.characters(exclude_categories=())
                    | st.sampled_from(["\ud83d", "\ude22", "\x00", "\x1b", "\u202e", "\u200b", "\ufeff"]),
                    max_size=300).map("".join)
long_text = st.builds(lambda part, n: part * n, st.text(min_size=1, max_size=20), st.integers(500, 3000))
vi_word = st.one_of(st.text(st.sampled_from(LETTERS), min_size=1, max_size=7), st.sampled_from(VOCABULARY))
vi_text = st.lists(st.tuples(vi_word, st.sampled_from((" ", " ", " ", *SEPARATORS))), max_size=25).map(
    lambda parts: "".join(w + sep for w, sep in parts).strip())


@st.composite
def mangled(draw):
    """(text, the same text as a bad keyboard sends it: decomposed accents, zero-width characters
    inside words)."""
    text = draw(vi_text)
    chars = list(unicodedata.normalize("NFD", text) if draw(st.booleans()) else text)
    for _ in range(draw(st.integers(0, 5))):
        chars.insert(draw(st.integers(0, len(chars))), draw(st.sampled_from(INVISIBLE)))
    return text, "".join(chars)


# --- the normaliser ---------------------------------------------------------------------------

@FAST
@given(st.one_of(any_text, long_text))
def test_normaliser_never_raises_and_cleans_fully(text):
    cleaned = clean(text)
    assert cleaned == cleaned.strip() and "  " not in cleaned
    assert not any(unicodedata.category(ch).startswith("C") or ch in INVISIBLE for ch in cleaned)
    assert unicodedata.is_normalized("NFC", cleaned)
    assert clean(cleaned) == cleaned
    for part in (strip_diacritics(text), fold(text)):
        assert isinstance(part, str)
    has_diacritics(text)


@FAST
@given(st.one_of(any_text, vi_text))
def test_normalized_text_is_folded_words_with_spans_into_the_cleaned_text(text):
    norm = normalize(text)
    assert fold(norm) == norm and fold(fold(text)) == fold(text)
    assert norm == " ".join(norm.split())
    cleaned = clean(text)
    for token in tokenize(cleaned):
        assert 0 <= token.start < token.end <= len(cleaned)
        assert _WORD.fullmatch(cleaned[token.start:token.end])


@FAST
@given(mangled())
def test_decomposed_accents_and_zero_width_characters_change_nothing(pair):
    text, typed = pair
    assert normalize(typed) == normalize(text)


@FAST
@given(vi_text)
def test_case_changes_nothing(text):
    assert normalize(text.upper()) == normalize(text.lower()) == normalize(text)


@FAST
@given(st.text(st.sampled_from(LETTERS + [" "]), max_size=40))
def test_strip_diacritics_keeps_length_and_case(text):
    """SMS replies are stripped to fit 160 GSM characters: nothing may be lost or change case."""
    stripped = strip_diacritics(text)
    assert len(stripped) == len(text)
    assert [c.isupper() for c in stripped] == [c.isupper() for c in text]
    assert not has_diacritics(stripped)


# --- the risk rules ---------------------------------------------------------------------------

def _at_least(text: str, level: str) -> bool:
    return risk_rank(assess(text).risk) >= risk_rank(level)


@FAST
@given(st.one_of(any_text, long_text, vi_text))
def test_risk_is_always_a_defined_level_and_never_raises(text):
    result = assess(text)
    assert result.risk in RISK_LEVELS
    assert result.topic is None or result.topic in TOPICS
    assert all(isinstance(r, str) for r in result.reasons)
    # the gateway's own reading when Rasa is down: rules only
    understood = understand(text, None)
    assert understood.risk in RISK_LEVELS and understood.topic in TOPICS
    assert understood.action in ("answer", "offer_counselor", "escalate")


@FAST
@given(vi_text)
def test_capitals_change_nothing(text):
    expected = assess(text)
    for variant in (text.upper(), text.lower(), text.title()):
        got = assess(variant)
        assert (got.risk, got.topic, got.reasons) == (expected.risk, expected.topic, expected.reasons), variant


@FAST
@given(mangled())
def test_keyboard_artefacts_change_nothing(pair):
    text, typed = pair
    assert assess(typed).risk == assess(text).risk


@FAST
@given(st.sampled_from(DANGER), st.sampled_from([strip_diacritics, str.upper, str.lower,
                                                 lambda t: strip_diacritics(t).upper()]))
def test_danger_without_diacritics_or_in_capitals_is_still_danger(phrase, typed):
    """SMS users write without accents (SMS with them costs double), and in capitals."""
    assert _at_least(typed(phrase), assess(phrase).risk), typed(phrase)


# What people put around what matters: greetings, "is anyone there?", thanks, an emoji.
HARMLESS = ("Xin chào", "Chào ad ạ", "Alo alo", "Có ai không", "Có ai trực không", "Ad ơi", "Dạ",
            "Em chào anh chị", "Em xin lỗi làm phiền", "Em cảm ơn", "Cảm ơn nhiều ạ", "Mong được giúp đỡ",
            "Làm ơn trả lời em", "😢", "🙏🙏")
sentences = st.lists(st.sampled_from(HARMLESS), max_size=3)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(DANGER), sentences, sentences, st.sampled_from(SEPARATORS))
def test_harmless_sentences_around_danger_never_lower_it(phrase, before, after, sep):
    message = sep.join([*before, phrase, *after])
    assert _at_least(message, assess(phrase).risk), message
