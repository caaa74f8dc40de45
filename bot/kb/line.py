"""The counselling line: one setting, rendered into every reply that mentions it.

The Social Work Center's free line (``counselling_line`` in ``data/kb/services.yml``, a service
id) is written in replies as a marker, never as digits:

    "[[line: Tư vấn miễn phí: @line (@hours).]]"
    "Cần nói chuyện với người thật: [[line: gọi @line (miễn phí, @hours) || nhắn: gặp tư vấn viên]]."

``render`` keeps the part before ``||`` with ``@line`` and ``@hours`` filled in when the line may
be offered now, and the part after it (or nothing) otherwise. The line may be offered when:

- it has a number and is not expired or marked wrong by a later check;
- it was verified (in the file or by a check recorded in the console) within
  ``line_max_age_days`` (90 by default) of today;
- its hours are known, and it is open at that moment. A line whose hours are unknown is never
  offered, so nobody is sent to a number that may not answer at night; danger replies name
  113, 115 and 111 whatever happens here.

The gateway renders every text it sends (``webhook/outbox``), so replies from Rasa, the gateway's
own replies, campaign messages and counsellors' canned texts all follow the same state.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Optional

from bot.kb import facts as F
from bot.kb import hours as H

MARKER = re.compile(r"\[\[line:(.*?)\]\]", re.S)


@dataclass(frozen=True)
class LineState:
    service_id: Optional[str]
    number: Optional[str]
    hours: Optional[str]                  # hours grammar (bot.kb.hours), None when unknown
    checked_on: Optional[dt.date]
    usable: bool                          # verified recently enough and hours known
    reason: str                           # why not usable, for `helpline kb check` and the console
    code: str = "ok"                      # the reason as a key: unset, no_number, expired, not_yet, wrong,
                                          # unverified, stale, no_hours, bad_hours, ok

    def open_at(self, when: float) -> bool:
        return bool(self.usable and self.hours and H.open_at(when, self.hours))


def state(today: Optional[dt.date] = None, checks: Optional[dict] = None, directory: Optional[dict] = None,
          max_age_days: Optional[int] = None) -> LineState:
    """The line as it may be offered on ``today``, from the directory and the console's checks
    (``facts.latest_checks``)."""
    today = today or dt.date.today()
    directory = directory if directory is not None else F.directory()
    sid = directory.get("counselling_line")
    item = directory["items"].get(sid) if sid else None
    if item is None:
        return LineState(None, None, None, None, False, "no counselling line is set (services.yml: counselling_line)",
                         "unset")
    limit = max_age_days if max_age_days is not None else directory.get("line_max_age_days", 90)
    st = F.status(item, today, checks, max_age_days=limit)
    number = item.data.get("phone")
    hours = st.hours or item.data.get("hours")
    code, reason = "ok", ""
    if not number:
        code, reason = "no_number", "the line has no number"
    elif st.state in ("expired", "not_yet", "wrong"):
        code, reason = st.state, f"the line is {st.state.replace('_', ' ')}"
    elif st.state == "unverified":
        code, reason = "unverified", "the line is not verified (no check recorded)"
    elif st.state == "stale":
        code, reason = "stale", f"the last check ({st.checked_on}) is older than {limit} days"
    elif not hours:
        code, reason = "no_hours", "the line's hours are not known"
    else:
        try:
            H.parse(hours)
        except H.HoursError:
            code, reason = "bad_hours", "the line's hours cannot be read"
    return LineState(sid, number, hours, st.checked_on, not reason, reason or "offered when open", code)


def render(text: str, line: Optional[LineState], when: Optional[float] = None, language: str = "vi",
           any_time: bool = False) -> str:
    """``text`` with every line marker resolved (see the module docstring). ``any_time``: offer
    the line whenever it may be offered at all, with its hours, not only while it is open (a
    campaign message is read later, and must render the same when the sender checks what it
    sent)."""
    if "[[line:" not in text:
        return text
    import time

    if line is None:
        offer = False
    elif any_time:
        offer = line.usable
    else:
        offer = line.open_at(time.time() if when is None else when)

    def one(m: re.Match) -> str:
        with_line, _, without = m.group(1).partition("||")
        if not offer:
            return without
        out = with_line.replace("@line", line.number or "")
        return out.replace("@hours", H.describe(line.hours or "", language))

    out = MARKER.sub(one, text)
    # a dropped clause leaves its neighbours' spaces and line breaks behind
    out = re.sub(r"[ \t]+([.,;:])", r"\1", out)
    out = re.sub(r"[ \t]{2,}", " ", out)
    out = re.sub(r"\n{2,}", "\n", out)
    return re.sub(r"[ \t]+\n", "\n", out).strip()


def strip_markers(text: str) -> str:
    """Both branches' wording, for checks that read a reply's text (length, numbers)."""
    return MARKER.sub(lambda m: m.group(1).replace("||", " "), text)
