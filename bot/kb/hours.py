"""Opening hours in Asia/Ho_Chi_Minh time, one grammar for the whole project: the counsellors'
shifts (``HELPLINE_HOURS``) and the hours of a phone line in the directory.

    "24/7"                                         always
    "mon-fri 07:30-11:30,13:30-17:00; sat 07:30-11:30"
"""
from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
ALWAYS = "24/7"
_DAYS_VI = ["T2", "T3", "T4", "T5", "T6", "T7", "CN"]
_DAYS_EN = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


class HoursError(ValueError):
    pass


def _minutes(hhmm: str) -> int:
    h, m = hhmm.strip().split(":")
    value = int(h) * 60 + int(m)
    if not 0 <= value <= 24 * 60:
        raise HoursError(f"bad time {hhmm!r}")
    return value


@lru_cache(maxsize=32)
def parse(spec: str) -> dict[int, list[tuple[int, int]]]:
    """{weekday: [(start minute, end minute), ...]}; "24/7" is every day, all day."""
    if spec.strip() == ALWAYS:
        return {d: [(0, 24 * 60)] for d in range(7)}
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
            raise HoursError(f"cannot read hours {block!r}: write like 'mon-fri 07:30-17:00' or '24/7'") from exc
        for d in picked:
            table.setdefault(d, []).extend(spans)
    return table


def open_at(when: float, spec: str, holidays: str = "") -> bool:
    """Is the service open at the Unix time ``when``? (Closed on the listed holidays.)"""
    local = dt.datetime.fromtimestamp(when, TZ)
    if spec.strip() != ALWAYS and local.date().isoformat() in {h.strip() for h in holidays.split(",") if h.strip()}:
        return False
    minute = local.hour * 60 + local.minute
    return any(start <= minute < end for start, end in parse(spec).get(local.weekday(), []))


def describe(spec: str, language: str = "vi") -> str:
    """Short human form: "24/7", "T2-T6 7:30-11:30, 13:30-17:00"."""
    if spec.strip() == ALWAYS:
        return ALWAYS
    names = _DAYS_EN if language == "en" else _DAYS_VI
    table = parse(spec)
    groups: list[tuple[list[int], list[tuple[int, int]]]] = []
    for d in range(7):
        if d in table:
            if groups and groups[-1][1] == table[d] and groups[-1][0][-1] == d - 1:
                groups[-1][0].append(d)
            else:
                groups.append(([d], table[d]))

    def hm(m: int) -> str:
        return f"{m // 60}:{m % 60:02d}"

    parts = []
    for days, spans in groups:
        label = names[days[0]] if len(days) == 1 else f"{names[days[0]]}-{names[days[-1]]}"
        parts.append(label + " " + ", ".join(f"{hm(a)}-{hm(b)}" for a, b in spans))
    return "; ".join(parts)
