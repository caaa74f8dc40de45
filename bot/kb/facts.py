"""Facts of law (``legal_facts.yml``), the service directory (``services.yml``) and the places of
each unit (``places.csv``), each with its sources, the period it applies to and when it was last
checked; and what state each is in today.

States, worst first:
    expired     ``valid_until`` is past: a reply must not state it as current (history only)
    not_yet     ``valid_from`` is in the future
    wrong       the last check recorded in the console found it wrong (a number that no longer
                answers): not offered until checked again
    unverified  ``verified: false`` and no later confirmation
    stale       verified, but last checked more than ``max_age`` days ago
    ok

A console check ("checked by phone on 2026-12-07: confirmed, hours mon-fri 07:30-17:00") is a
``Check``; the newest check of an item decides: ``confirmed`` verifies it as of that day,
``wrong``/``no_answer`` marks it wrong.
"""
from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from bot.kb import KB, cached, read_yaml

STATES = ("expired", "not_yet", "wrong", "unverified", "stale", "ok")
RESULTS = ("confirmed", "wrong", "no_answer")
PLACE_KINDS = ("peoples_committee", "police", "health", "legal_aid", "social_work", "shelter")
PLACE_FIELDS = ["unit", "former_district", "serves", "kind", "name", "address", "phone", "hours", "source", "source_date",
                "checked_on", "verified", "note"]


def _date(value) -> Optional[dt.date]:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value).strip())


@dataclass(frozen=True)
class Item:
    """Anything the bot states that can go out of date."""
    kind: str                                   # fact | service | place
    id: str
    label: str
    sources: tuple[str, ...]
    valid_from: Optional[dt.date] = None
    valid_until: Optional[dt.date] = None
    verified: bool = False
    checked_on: Optional[dt.date] = None
    note: Optional[str] = None
    replaced_by: Optional[str] = None
    data: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Check:
    kind: str
    item_id: str
    checked_on: dt.date
    result: str                                 # confirmed | wrong | no_answer
    hours: Optional[str] = None
    note: Optional[str] = None


@dataclass(frozen=True)
class Status:
    state: str
    checked_on: Optional[dt.date]
    note: Optional[str]
    hours: Optional[str] = None                 # a console check may record a line's hours


def latest_checks(checks: Iterable[Check]) -> dict[tuple[str, str], Check]:
    out: dict[tuple[str, str], Check] = {}
    for c in sorted(checks, key=lambda c: c.checked_on):
        out[(c.kind, c.item_id)] = c
    return out


def status(item: Item, today: dt.date, checks: Optional[dict] = None, max_age_days: int = 365) -> Status:
    check = (checks or {}).get((item.kind, item.id))
    if item.valid_until and item.valid_until < today:
        return Status("expired", item.checked_on, item.note)
    if item.valid_from and item.valid_from > today:
        return Status("not_yet", item.checked_on, item.note)
    checked_on, verified, note, hours = item.checked_on, item.verified, item.note, None
    if check is not None and (checked_on is None or check.checked_on >= checked_on):
        checked_on, note, hours = check.checked_on, check.note or note, check.hours
        if check.result != "confirmed":
            return Status("wrong", checked_on, note, hours)
        verified = True
    if not verified:
        return Status("unverified", checked_on, note, hours)
    if checked_on is None or (today - checked_on).days > max_age_days:
        return Status("stale", checked_on, note, hours)
    return Status("ok", checked_on, note, hours)


# --- loading --------------------------------------------------------------------------------------

def _fact(f: dict) -> Item:
    return Item("fact", f["id"], f.get("statement_vi") or f["id"], tuple(f.get("sources") or ()),
                _date(f.get("valid_from")), _date(f.get("valid_until")), bool(f.get("verified")),
                _date(f.get("checked_on")), f.get("verify_note"), f.get("replaced_by"), f)


def _service(s: dict) -> Item:
    label = s.get("name_vi") or s["id"]
    if s.get("phone"):
        label += f" ({s['phone']})"
    return Item("service", s["id"], label, tuple(s.get("sources") or ()), _date(s.get("valid_from")),
                _date(s.get("valid_until")), bool(s.get("verified")), _date(s.get("checked_on")), s.get("verify_note"),
                s.get("replaced_by"), s)


def place_id(row: dict) -> str:
    """A stable id for a row of places.csv: where, what, whose."""
    return "|".join((row.get("unit") or row.get("former_district") or "city", row.get("kind") or "", row.get("name") or ""))


def _place(row: dict) -> Item:
    return Item("place", place_id(row), f"{row.get('name')} ({row.get('unit') or row.get('former_district') or 'city'})",
                tuple(s for s in (row.get("source") or "").split(" ; ") if s), None, None,
                str(row.get("verified") or "").strip().lower() in ("1", "true", "yes"), _date(row.get("checked_on")),
                row.get("note") or None, None, row)


def _facts(path: Path) -> dict[str, Item]:
    return {f["id"]: _fact(f) for f in read_yaml(path).get("facts") or []}


def _services(path: Path) -> dict:
    data = read_yaml(path)
    return {"items": {s["id"]: _service(s) for s in data.get("services") or []},
            "counselling_line": data.get("counselling_line"), "line_max_age_days": int(data.get("line_max_age_days") or 90)}


def read_places_csv(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as fh:
        return [dict(r) for r in csv.DictReader(fh)]


def _places(path: Path) -> dict[str, Item]:
    return {place_id(r): _place(r) for r in read_places_csv(path)}


def facts(path: Path = KB / "legal_facts.yml") -> dict[str, Item]:
    return cached(path, "facts", _facts)


def services(path: Path = KB / "services.yml") -> dict[str, Item]:
    return cached(path, "services", _services)["items"]


def directory(path: Path = KB / "services.yml") -> dict:
    """The directory with its settings: ``counselling_line`` (a service id) and
    ``line_max_age_days``."""
    return cached(path, "services", _services)


def places(path: Path = KB / "places.csv") -> dict[str, Item]:
    return cached(path, "places", _places)


def all_items(root: Path = KB) -> dict[tuple[str, str], Item]:
    out: dict[tuple[str, str], Item] = {}
    for group in (facts(root / "legal_facts.yml"), services(root / "services.yml"), places(root / "places.csv")):
        for item in group.values():
            out[(item.kind, item.id)] = item
    return out
