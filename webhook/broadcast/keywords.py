"""The words a person sends to manage campaign messages, on any channel, in any case, with or
without diacritics, with or without punctuation (``bot.nlu.normalize``). A message is a command
only when the WHOLE message is one (after the optional segment words of an opt-in): "hủy vé xe"
or "đăng ký khám thai ở đâu" are questions for the bot.

- opt in:       DK, ĐĂNG KÝ, DANG KI, DKY, JOIN, SUBSCRIBE … optionally followed by a segment:
                HS / HỌC SINH / SV / SINH VIÊN (students), EN / ENGLISH (language), a former
                district's name ("DK TAM KY").
- confirm:      CÓ, ĐỒNG Ý, OK, YES (only while an opt-in waits for confirmation).
- opt out:      HỦY, HUY, STOP, TỪ CHỐI, DỪNG NHẮN TIN, UNSUBSCRIBE … (``bot.nlu.commands``; not a
                bare "dung", which is also "đúng" and "đừng" without accents).
- safe hours:   GIỜ 19-21, GIO 7H-9H, GIO 19 21 (local hours, start inclusive, end exclusive);
                GIỜ BẤT KỲ / GIO XOA clears them.
- pause:        KHÔNG LIÊN LẠC, KLL: "do not contact" (nothing proactive at all); LIÊN LẠC LẠI or
                TIẾP TỤC NHẮN TIN lifts it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from bot.nlu.commands import KEYWORDS
from bot.nlu.normalize import normalize

OPT_IN = {"dk", "dang ky", "dang ki", "dky", "dki", "dangky", "dangki", "dang ky nhan tin", "dang ki nhan tin",
          "dang ky nhan thong bao", "dang ky nhan tin chien dich", "join", "subscribe", "start", "bat dau nhan tin"}
CONFIRM = {"co", "dong y", "toi dong y", "ok", "oke", "okay", "yes", "y", "dy", "dong y nhan tin", "co dong y"}
# Bare "dung" is left out: "đúng" (right, yes), "đừng" (don't) and "dùng" all lose their accents to
# it; "dừng nhắn tin" and the other longer forms stay.
AMBIGUOUS = {"dung", "ngung"}
OPT_OUT = (set(KEYWORDS["unsubscribe"]) | {"huy", "stop", "tu choi", "tuchoi", "huy bo", "cancel", "quit",
                                           "unsubscribe", "opt out", "optout", "khong nhan", "khong nhan tin",
                                           "ngung nhan", "dung gui", "dung gui tin", "huy dang ky nhan tin"}) - AMBIGUOUS
PAUSE = {"khong lien lac", "kll", "tam dung lien lac", "dung lien lac", "khong lien he", "do not contact"}
# "tiếp tục" alone means "go on" in a conversation: lifting a do-not-contact needs the longer form
RESUME = {"lien lac lai", "tiep tuc nhan tin", "tiep tuc lien lac", "resume messages"}
SAFE_HOURS = re.compile(r"^(?:gio|gio an toan|safe hours|hours)\s+(\d{1,2})\s*h?\s+(?:den\s+|toi\s+|to\s+)?(\d{1,2})\s*h?$")
SAFE_CLEAR = {"gio bat ky", "gio bat ki", "gio xoa", "xoa gio", "gio nao cung duoc", "any time", "anytime"}
STUDENT = {"hs", "hoc sinh", "sv", "sinh vien", "student", "students", "truong", "hoc sinh sinh vien"}
ENGLISH = {"en", "english", "tieng anh"}
VIETNAMESE = {"vi", "tieng viet", "vn"}


@dataclass(frozen=True)
class Command:
    action: str                          # opt_in | confirm | opt_out | safe_hours | safe_clear | pause | resume
    audience: Optional[str] = None       # opt_in: "student" or "public"
    language: Optional[str] = None       # opt_in: "en" / "vi" when said
    locality: Optional[str] = None       # opt_in: a former district id when named
    hours: Optional[tuple[int, int]] = None


def _opt_in(norm: str) -> Optional[Command]:
    for head in sorted(OPT_IN, key=len, reverse=True):
        if norm == head:
            return Command("opt_in", audience="public")
        if norm.startswith(head + " "):
            rest = norm[len(head) + 1:].strip()
            audience, language, locality = "public", None, None
            for word in sorted(STUDENT | ENGLISH | VIETNAMESE, key=len, reverse=True):
                if re.search(rf"(^|\s){re.escape(word)}(\s|$)", rest):
                    if word in STUDENT:
                        audience = "student"
                    else:
                        language = "en" if word in ENGLISH else "vi"
                    rest = re.sub(rf"(^|\s){re.escape(word)}(?=\s|$)", " ", rest).strip()
            if rest:
                locality = _district(rest)
                if locality is None:
                    return None              # "dang ky kham thai o dau": a question, not a command
            return Command("opt_in", audience=audience, language=language, locality=locality)
    return None


def _district(words: str) -> Optional[str]:
    """The former district when ``words`` are exactly one place's name, of a former district or
    of a unit in it (nothing else: "dk tam ky chong toi danh toi" or "đăng ký khám thai ở Tam Kỳ"
    are messages for the bot, not commands)."""
    from bot.kb import places

    found = places.load().locator().locate(words)
    if len(found) == 1 and found[0].district and normalize(found[0].text) == normalize(words).strip():
        return found[0].district
    return None


def parse(text: Optional[str]) -> Optional[Command]:
    """The command when the whole message is one, else None."""
    if not text or len(text) > 60:
        return None
    norm = normalize(text).strip()
    if not norm:
        return None
    if norm in OPT_OUT:
        return Command("opt_out")
    if norm in CONFIRM:
        return Command("confirm")
    if norm in PAUSE:
        return Command("pause")
    if norm in RESUME:
        return Command("resume")
    if norm in SAFE_CLEAR:
        return Command("safe_clear")
    m = SAFE_HOURS.match(norm)
    if m:
        start, end = int(m.group(1)), int(m.group(2))
        if 0 <= start <= 23 and 1 <= end <= 24 and start != end:
            return Command("safe_hours", hours=(start, end))
        return None
    return _opt_in(norm)
