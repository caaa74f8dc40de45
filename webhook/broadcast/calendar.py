"""The campaign calendar: the yearly action months and days the plan's communication runs in
(``../shared/reference/domain_brief.md`` §1.10):

- 1–30 June: National Action Month on domestic violence prevention;
- 15 November–15 December: Action Month for gender equality and GBV prevention;
- 25 November: International Day for the Elimination of Violence against Women (inside the
  November–December month).

A campaign is sent only inside an action period: the one of its occasion, or any one when it has
no occasion.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Optional

from webhook.broadcast.content import _l


@dataclass(frozen=True)
class Occasion:
    key: str
    name: str                  # msgid (English; Vietnamese in locale/vi)
    start: tuple[int, int]     # (month, day), inclusive
    end: tuple[int, int]       # (month, day), inclusive
    content: str               # the default message (webhook/broadcast/content.MESSAGES)

    def dates(self, year: int) -> tuple[dt.date, dt.date]:
        return dt.date(year, *self.start), dt.date(year, *self.end)

    def contains(self, day: dt.date) -> bool:
        first, last = self.dates(day.year)
        return first <= day <= last


OCCASIONS = {
    "june_dv_month": Occasion("june_dv_month", _l("National Action Month on domestic violence prevention"),
                              (6, 1), (6, 30), "june_dv_month"),
    "gbv_action_month": Occasion("gbv_action_month",
                                 _l("Action Month for gender equality and gender-based violence prevention"),
                                 (11, 15), (12, 15), "gbv_action_month"),
    "nov25": Occasion("nov25", _l("International Day for the Elimination of Violence against Women"),
                      (11, 25), (11, 25), "nov25"),
}


def active(day: dt.date) -> list[Occasion]:
    return [o for o in OCCASIONS.values() if o.contains(day)]


def allowed(day: dt.date, occasion: Optional[str]) -> bool:
    """May a campaign of ``occasion`` (None: any) be sent on ``day``?"""
    if occasion:
        return occasion in OCCASIONS and OCCASIONS[occasion].contains(day)
    return bool(active(day))


def upcoming(day: dt.date, count: int = 4) -> list[tuple[Occasion, dt.date, dt.date]]:
    """The next periods (running now or to come), soonest first."""
    out = []
    for year in (day.year, day.year + 1):
        for o in OCCASIONS.values():
            first, last = o.dates(year)
            if last >= day:
                out.append((o, first, last))
    return sorted(out, key=lambda t: (t[1], t[0].key))[:count]
