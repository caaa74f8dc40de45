"""Vietnamese text normalisation shared by the Rasa pipeline, the gateway and `helpline classify`.

People write to the helpline on cheap phones, often without diacritics ("chong em danh em"),
in teencode ("ck e dj nhau") or in Quảng Nam dialect ("hắn đánh tui, chừ răng"). Understanding
must not depend on any of that, so every message is reduced to one *folded* form:

1. ``clean``: Unicode NFC (some keyboards send NFD), zero-width and control characters removed,
   white space collapsed. Broken surrogates are replaced, never raised.
2. dialect words are mapped to standard Vietnamese while the diacritics still tell them apart
   ("mô" → "đâu" but "mổ" stays);
3. ``fold``: lower case, diacritics removed and ``đ`` → ``d`` (U+0111 has no decomposition, so
   NFD alone would keep it);
4. teencode on the folded syllables ("ko" → "khong", "ck" → "chong").

The folded form is what the NLU features and the risk rules see, so "chồng đánh" and
"chong danh" are the same message to the model.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import NamedTuple

# Zero-width and bidi marks that keyboards and copy-paste leave in messages.
_INVISIBLE = dict.fromkeys(
    map(ord, "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\ufeff\u00ad\u202a\u202b\u202c\u202d\u202e"),
    None,
)
_SPACES = re.compile(r"\s+")
# Syllables: letters and digits (Vietnamese letters are all \w after NFC). Everything else
# (punctuation, emoji, symbols) separates tokens.
_WORD = re.compile(r"[^\W_]+", re.UNICODE)

# Central (Quảng Nam) dialect → standard, on *accented* lower-case syllables. Only forms whose
# accents make them unambiguous are listed: "ni" and "tê" are kept because they are the usual
# spelling, but "ảnh" (also "photo") and "chi" (also "chị" without accents) are not.
DIALECT = {
    "mô": "đâu",
    "rứa": "vậy",
    "ni": "này",
    "tê": "kia",
    "chừ": "bây giờ",
    "hắn": "nó",
    "tui": "tôi",
    "ổng": "ông ấy",
    "bả": "bà ấy",
    "mi": "mày",
    "tau": "tao",
    "nỏ": "không",
    "hông": "không",
    "hổng": "không",
    "khum": "không",
    "dzậy": "vậy",
    "zậy": "vậy",
    "vầy": "vậy",
    "nờ": "này",
    "eng": "anh",
    "cíu": "cứu",
    "híp": "hiếp",
}

# Teencode and SMS abbreviations → standard, on *folded* syllables. Ambiguous short forms that
# are also service keywords ("dk" = đăng ký / được) are left alone on purpose.
TEENCODE = {
    "ko": "khong", "k": "khong", "kg": "khong", "kh": "khong", "hok": "khong", "hk": "khong",
    "khg": "khong", "kô": "khong", "khum": "khong", "hong": "khong", "hem": "khong", "kp": "khong phai",
    "e": "em", "a": "anh", "c": "chi", "t": "toi", "mk": "minh", "mik": "minh", "mn": "moi nguoi",
    "dc": "duoc", "dk": "dk", "vs": "voi", "j": "gi", "ji": "gi", "ng": "nguoi", "ngta": "nguoi ta",
    "sdt": "so dien thoai", "dt": "dien thoai", "bj": "bay gio", "bh": "bay gio", "bgio": "bay gio",
    "ck": "chong", "vk": "vo", "ny": "nguoi yeu", "r": "roi", "ntn": "nhu the nao", "z": "vay",
    "v": "vay", "trc": "truoc", "ad": "admin", "ib": "nhan tin", "inbox": "nhan tin", "cx": "cung",
    "ns": "noi", "nt": "nhan tin", "tn": "tin nhan", "gd": "gia dinh", "bs": "bac si", "hs": "hoc sinh",
    "gv": "giao vien", "cty": "cong ty", "dj": "di", "ms": "moi", "lm": "lam", "bt": "biet",
    "oke": "ok", "okie": "ok", "okela": "ok", "uk": "u", "uh": "u", "uhm": "u", "um": "u", "ukm": "u",
    "bn": "bao nhieu", "bnh": "bao nhieu", "cmt": "binh luan", "fb": "facebook", "tr": "troi",
    "wa": "qua", "qa": "qua", "lun": "luon", "hix": "", "huhu": "", "hic": "", "plz": "lam on",
    "thui": "thoi", "nhiu": "nhieu", "iu": "yeu", "cj": "chi", "ch": "chua", "chx": "chua",
    "tks": "cam on", "thanks": "cam on", "thank": "cam on", "ty": "cam on", "xl": "xin loi",
    "dthoai": "dien thoai", "mng": "moi nguoi", "ae": "anh em", "kb": "ket ban", "nv": "nhan vien",
    "tvv": "tu van vien", "hn": "hom nay", "hqua": "hom qua", "sn": "sinh nhat", "nma": "nhung ma",
    "nhma": "nhung ma", "dg": "dang", "dag": "dang", "mun": "muon", "mún": "muon",
    "jet": "giet", "ciu": "cuu", "bik": "biet", "hum": "khong", "hong": "khong", "mjnh": "minh", "nhjeu": "nhieu", "kbh": "khong bao gio", "ktra": "kiem tra", "tgian": "thoi gian",
}


def clean(text: str) -> str:
    """NFC, without invisible or control characters, single-spaced. Never raises on odd input
    (lone surrogates from broken UTF-8 are replaced)."""
    if not isinstance(text, str):
        text = str(text)
    text = text.encode("utf-8", "replace").decode("utf-8", "replace")
    text = unicodedata.normalize("NFC", text.translate(_INVISIBLE))   # a mark behind a zero-width space composes too
    text = _UNCOMMON.sub(_control_to_space, text)
    return _SPACES.sub(" ", text).strip()


# Letters, digits and signs a Vietnamese message is made of are never control characters: only
# the other characters are looked up one by one (a 2,000-character letter is cleaned in ~0.1 ms).
_UNCOMMON = re.compile("[^\x20-\x7e\u00a0-\u00ac\u00ae-\u024f\u0300-\u036f\u1ea0-\u1ef9]")


def _control_to_space(m: "re.Match[str]") -> str:
    ch = m.group()
    return " " if unicodedata.category(ch)[0] == "C" else ch


def tidy(text: str) -> str:
    """NFC without invisible characters, line breaks kept (for readers that split sentences)."""
    if not isinstance(text, str):
        text = str(text)
    text = text.encode("utf-8", "replace").decode("utf-8", "replace")
    return unicodedata.normalize("NFC", text.translate(_INVISIBLE))


def _without_marks(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if unicodedata.category(c) != "Mn"))


# every precomposed Latin letter (Vietnamese ones included) and its letter without marks
_BARE = {c: _without_marks(chr(c)) for c in [*range(0xC0, 0x250), *range(0x1E00, 0x1F00)]
         if _without_marks(chr(c)) != chr(c)}
_BARE.update({ord("đ"): "d", ord("Đ"): "D"})


def strip_diacritics(text: str) -> str:
    """Remove Vietnamese diacritics, keeping case and length ('Đ' → 'D')."""
    bare = text.translate(_BARE)
    # letters outside the table (a lone combining mark, other scripts) the slow way
    return bare if bare.isascii() else _without_marks(bare)


def fold(text: str) -> str:
    return strip_diacritics(text.lower())


def has_diacritics(text: str) -> bool:
    return fold(text) != text.lower()


class Token(NamedTuple):
    """A normalised word. ``start``/``end`` point into the cleaned text, so an expansion
    ("ck" → "chong") keeps the span of the syllable it came from. (A named tuple: a letter has
    hundreds of them, and a tuple is made several times faster than a frozen dataclass.)"""

    text: str
    start: int
    end: int


@lru_cache(maxsize=65536)
def _expand(raw: str) -> tuple[str, ...]:
    return tuple(_expand_syllable(raw))


def _expand_syllable(raw: str) -> list[str]:
    low = raw.lower()
    if low in DIALECT:
        return [fold(w) for w in DIALECT[low].split()]
    folded = fold(low)
    # Teencode is typed without accents (except đ): "ạ" folds to "a" but is not "anh".
    if folded in TEENCODE and low.replace("đ", "d") == folded:
        return TEENCODE[folded].split()
    return [folded]


def tokenize(text: str) -> list[Token]:
    """Normalised tokens of ``text`` (which should already be ``clean``ed). Remembered for the
    last few texts: the tokenizer, the gazetteer and the rules each tokenize the same message."""
    return list(_tokens(text))


@lru_cache(maxsize=64)
def _tokens(text: str) -> tuple[Token, ...]:
    return tuple(Token(word, m.start(), m.end()) for m in _WORD.finditer(text) for word in _expand(m.group()))


@lru_cache(maxsize=8192)
def _normalize(text: str) -> str:
    return " ".join(t.text for t in tokenize(clean(text)))


def normalize(text: str) -> str:
    """The folded, expanded form used for features, rules and look-ups: 'Chồng e đánh e!!' →
    'chong em danh em'. Cached: a long letter's sentences are read alone and in pairs, so the same
    pieces come back (a pure function of the text; the cache holds no more than 8,192 of them)."""
    return _normalize(text if isinstance(text, str) else str(text))
