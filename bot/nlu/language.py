"""Which language a message is written in: Vietnamese (the default) or English.

Đà Nẵng has foreign residents and workers who write in English. An English message gets the
English danger cues (``bot.nlu.risk``) instead of the Vietnamese ones (folded Vietnamese cues
misread English: "can't" is not "cắn"), and the conversation is answered in English
(``docs/nlu.md``, "English"). A message counts as English when it has no Vietnamese diacritics
and common English words make up a good part of it; mixed Vietnamese-English stays Vietnamese.
"""
from __future__ import annotations

import re

from bot.nlu.normalize import has_diacritics

_TOKENS = re.compile(r"[a-z']+")
# Frequent English words that are not also frequent unaccented Vietnamese syllables ("me" is mẹ,
# "to" is tớ/to, "an" is ăn, "can" is cần, "long" is lòng: left out).
_EN = frozenset("""
is are was were am been being i i'm im my mine you your he she his her him they them their we our us it it's
this that these those what where when why how who which there here and or but if because not yes don't
doesn't didn't can't won't isn't aren't have has had does did will would could should please help hello
hey thanks thank of at for with from about into out after before tonight now just again
husband wife boyfriend girlfriend partner father mother dad mom son daughter child kids baby friend boss
hits beat beats hurt kill scared afraid safe need want know find police hospital money phone
house home apartment work job school someone somebody anyone anybody nobody something anything going
get got took take said says tell told call very really
""".split())
# Left out: words that are also common unaccented Vietnamese syllables ("the" thể, "do" đó, "no" nó,
# "so" sợ, "be" bé, "on" ổn, "me" mẹ, "to" tớ, "an" ăn, "can" cần, "hi" hí, "go" gõ, "in", "up").
_VI = frozenset("""
em toi tui minh anh chi ban chong vo con cua bi khong ko dang roi nay nua voi cho nguoi lam gi sao the nao
duoc nha ve di ma thi la va nhung cung rat qua hay da se muon biet giup oi a ah nhe
""".split())


# place names written without accents in English messages ("Da Nang", "Hoi An")
_PLACES = re.compile(r"\b(?:da nang|danang|hoi an|tam ky|quang nam|nui thanh|dien ban|an thuong|my khe|son tra|hai chau)\b")


def is_english(text: str) -> bool:
    if not text or has_diacritics(text):
        return False
    words = _TOKENS.findall(_PLACES.sub(" ", text.lower()))
    if len(words) < 2:
        return text.strip().lower() in {"help", "hello", "hi", "hey", "sos"}
    en = sum(w in _EN for w in words)
    vi = sum(w in _VI for w in words)
    return en >= 2 and en >= 3 * vi and en / len(words) >= 0.25


def is_vietnamese(text: str) -> bool:
    """Clearly Vietnamese (accents, or common unaccented Vietnamese words): the conversation
    switches back to Vietnamese. Short or unclear messages ("ok") leave the language as it was."""
    if not text:
        return False
    if has_diacritics(text):
        return True
    words = _TOKENS.findall(text.lower())
    vi = sum(w in _VI for w in words)
    return vi >= 2 and vi > sum(w in _EN for w in words)


def language(text: str) -> str | None:
    """``en``, ``vi`` or None (cannot tell)."""
    return "en" if is_english(text) else ("vi" if is_vietnamese(text) else None)
