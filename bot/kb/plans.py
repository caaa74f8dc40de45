"""The plans behind indicators d and đ (``data/kb/plans.yml``): which are in force in a year and
what they target, so a report never claims a target that no plan in force sets, and a new plan is
a data change."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from bot.kb import KB, cached, read_yaml


@dataclass(frozen=True)
class Plan:
    id: str
    kind: str
    name_vi: str
    name_en: str
    instrument: str
    start: dt.date
    until: dt.date
    targets: dict = field(default_factory=dict)
    fact: Optional[str] = None
    implements: Optional[str] = None
    context_vi: Optional[str] = None

    def covers(self, year: int) -> bool:
        return self.start.year <= year <= self.until.year


def _build(path: Path) -> list[Plan]:
    out = []
    for p in read_yaml(path).get("plans") or []:
        out.append(Plan(p["id"], p.get("kind", ""), p.get("name_vi", ""), p.get("name_en", ""), p.get("instrument", ""),
                        p["from"], p["until"], dict(p.get("targets") or {}), p.get("fact"), p.get("implements"),
                        p.get("context_vi")))
    return out


def plans(path: Path = KB / "plans.yml") -> list[Plan]:
    return cached(path, "plans", _build)


def in_force(year: int, path: Path = KB / "plans.yml") -> list[Plan]:
    return [p for p in plans(path) if p.covers(year)]


def targets(year: int, path: Path = KB / "plans.yml") -> dict[str, tuple[float, Plan]]:
    """{"d": (50, plan), "dd": (100, plan)} for the targets a plan in force in ``year`` sets."""
    out: dict[str, tuple[float, Plan]] = {}
    for p in in_force(year, path):
        for k, v in p.targets.items():
            out.setdefault(k, (v, p))
    return out
