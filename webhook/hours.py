"""Counsellors' working hours and holidays, in Asia/Ho_Chi_Minh time.

``HELPLINE_HOURS`` lists the staffed hours, e.g. ``"mon-fri 07:30-11:30,13:30-17:00; sat 07:30-11:30"``;
``HELPLINE_HOLIDAYS`` lists dates (``2026-09-02,2027-02-16``). Empty hours means staffed around
the clock (the default: the Social Work Center's hours are not verified, see data/kb/services.yml).
"""
from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class HoursError(ValueError):
    pass


def _minutes(hhmm: str) -> int:
    h, m = hhmm.strip().split(":")
    value = int(h) * 60 + int(m)
    if not 0 <= value <= 24 * 60:
        raise HoursError(f"bad time {hhmm!r}")
    return value


@lru_cache(maxsize=16)
def parse(spec: str) -> dict[int, list[tuple[int, int]]]:
    """{weekday: [(start minute, end minute), ...]}"""
    table: dict[int, list[tuple[int, int]]] = {}
    for block in filter(None, (b.strip() for b in spec.split(";"))):
        try:
            days, ranges = block.split(None, 1)
            if "-" in days:
                a, b = days.split("-")
                picked = range(DAYS.index(a), DAYS.index(b) + 1)
            else:
                picked = [DAYS.index(d) for d in days.split(",")]
            spans = []
            for r in ranges.split(","):
                start, end = r.split("-")
                spans.append((_minutes(start), _minutes(end)))
        except (ValueError, IndexError) as exc:
            raise HoursError(f"cannot read working hours {block!r}: write like 'mon-fri 07:30-17:00'") from exc
        for d in picked:
            table.setdefault(d, []).extend(spans)
    return table


def staffed(when: float, spec: str, holidays: str = "") -> bool:
    """Is a counsellor on duty at the Unix time ``when``?"""
    if not spec.strip():
        return True
    local = dt.datetime.fromtimestamp(when, TZ)
    if local.date().isoformat() in {h.strip() for h in holidays.split(",") if h.strip()}:
        return False
    minute = local.hour * 60 + local.minute
    return any(start <= minute < end for start, end in parse(spec).get(local.weekday(), []))
