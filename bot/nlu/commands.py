"""Service keywords that must always work, whatever the model thinks.

"STOP"/"HUY" must stop messages and "XOA" must start erasure even if the model misreads a
one-word message, so a message that *is* a keyword (after normalisation: any case, with or
without diacritics, with or without punctuation) is a command by definition. Longer messages
that merely contain the word ("hủy vé xe") are left to the model.
"""
from __future__ import annotations

from typing import Optional

from bot.nlu.normalize import normalize

KEYWORDS = {
    "subscribe": {"dk", "dang ky", "dang ki", "dky", "dki", "dang ky nhan tin", "dang ki nhan tin",
                  "dang ky nhan thong bao", "start", "batdau", "bat dau nhan tin", "join"},
    # not a bare "dung": "đúng" (yes), "đừng" (don't) and "dùng" lose their accents to it
    "unsubscribe": {"huy", "stop", "tu choi", "ngung nhan", "huy dang ky", "huy dang ki", "huy dk",
                    "unsubscribe", "stopall", "dung nhan tin", "ngung nhan tin", "tuchoi", "huy nhan tin"},
    "delete_data": {"xoa", "xoa du lieu", "xoa het", "xoa du lieu cua toi", "xoa tin nhan", "delete",
                    "xoa het du lieu", "xoa thong tin", "xoa so dien thoai"},
}
_LOOKUP = {kw: intent for intent, kws in KEYWORDS.items() for kw in kws}


def command_for(text: str) -> Optional[str]:
    """The command intent when the whole message is a service keyword, else None."""
    if len(text) > 60:              # no keyword is that long: spare a long letter the work
        return None
    return _LOOKUP.get(normalize(text))
