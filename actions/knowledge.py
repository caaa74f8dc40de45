"""Read-only access to the knowledge base in data/kb/ (loaded on first use, never at import)."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Optional

import yaml

from bot.nlu.normalize import normalize

ROOT = Path(__file__).resolve().parents[1]
KB = ROOT / "data" / "kb"

normalized = normalize


class Knowledge:
    def __init__(self, services: list[dict], localities: list[dict]):
        self.services = services
        self.localities = {l["id"]: l for l in localities}

    def locality(self, locality_id: str) -> Optional[dict]:
        return self.localities.get(locality_id)

    def services_text(self, place: dict) -> str:
        """Where a person in this place can go: commune-level bodies first, then the hotlines.
        Only services from the directory, so no number can appear that is not sourced."""
        lines = []
        units = place.get("new_units") or []
        for s in self.services:
            if s.get("scope") == "commune":
                lines.append(f"- {s['name_vi']}")
        for s in self.services:
            if s.get("phone") and s.get("kind") in ("social_work", "hotline", "emergency"):
                lines.append(f"- {s['name_vi']}: {s['phone']}")
        if units:
            lines.insert(0, "(" + ", ".join(units) + ")")
        return "\n".join(lines)


@functools.lru_cache(maxsize=1)
def load(root: Path = KB) -> Knowledge:
    services = (yaml.safe_load((root / "services.yml").read_text("utf-8")) or {}).get("services", [])
    localities = (yaml.safe_load((root / "localities.yml").read_text("utf-8")) or {}).get("localities", [])
    return Knowledge(services, localities)
