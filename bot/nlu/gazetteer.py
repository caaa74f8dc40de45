"""Dictionary look-up of places and people on folded text (plain Python, no Rasa).

Used by the Rasa ``Gazetteer`` component and by the statistics. Places are read by
``bot.kb.places.Locator`` (former districts, the new commune-level units, old unit names); the
rest (relationships, persons at risk, the province) by longest match on normalised tokens, so
"huyện Núi Thành", "nui thanh" and "NÚI THÀNH" all find ``locality=nui_thanh`` and "xã Tam Xuân 1"
finds ``commune=xa_tam_xuan`` (with ``locality=nui_thanh``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import yaml

from bot.kb.places import Locator
from bot.kb.places import load as load_places
from bot.nlu.normalize import clean, tokenize

ROOT = Path(__file__).resolve().parents[2]
PERSON_PRIORITY = ("child", "other", "self")
# Phrases that contain a relationship word but are not one once folded: "phòng chống" is not
# "phòng chồng", "chống lại" is not a husband.
STOP_PHRASES = ("phong chong", "chong lai", "chong doi", "chong chi", "chong tay", "chong nang", "chong tham",
                "chong dich", "chong say", "chong gay", "chong tra", "chong chay", "chong ngap", "chong bao luc",
                "chong buon nguoi", "chong xam hai")


@dataclass(frozen=True)
class Found:
    entity: str
    value: str
    start: int
    end: int
    text: str

    def as_rasa(self) -> dict:
        return {"entity": self.entity, "value": self.value, "start": self.start, "end": self.end,
                "confidence_entity": 1.0}


def _key(phrase: str) -> tuple[str, ...]:
    return tuple(t.text for t in tokenize(clean(phrase)))


class Gazetteer:
    def __init__(self, phrases: dict[tuple[str, ...], tuple[str, str]], places: Locator | None = None):
        self.phrases = {k: v for k, v in phrases.items() if k}
        self.max_len = max((len(k) for k in self.phrases), default=1)
        self.firsts = frozenset(k[0] for k in self.phrases)   # most words start no phrase: one look
        self.places = places

    @classmethod
    def from_files(cls, localities: str | Path, relationships: str | Path) -> "Gazetteer":
        places = load_places(_resolve(localities))
        rel = yaml.safe_load(_resolve(relationships).read_text("utf-8")) or {}
        phrases: dict[tuple[str, ...], tuple[str, str]] = {}
        for phrase in STOP_PHRASES:
            phrases[_key(phrase)] = ("_stop", "")
        for alias in places.province_aliases:
            phrases.setdefault(_key(alias), ("province", "da_nang"))
        for value, words in (rel.get("relationships") or {}).items():
            for w in words or []:
                phrases.setdefault(_key(w), ("relationship", value))
        for value, words in (rel.get("persons_at_risk") or {}).items():
            for w in words or []:
                phrases.setdefault(_key(w), ("person_at_risk", value))
        return cls(phrases, places.locator())

    def to_json(self) -> dict:
        return {"phrases": [[" ".join(k), e, v] for k, (e, v) in sorted(self.phrases.items())],
                "places": self.places.to_json() if self.places else None}

    @classmethod
    def from_json(cls, data: dict) -> "Gazetteer":
        places = Locator.from_json(data["places"]) if data.get("places") else None
        return cls({tuple(p.split()): (e, v) for p, e, v in data.get("phrases", [])}, places)

    def find_all(self, text: str) -> list[Found]:
        cleaned = clean(text)
        toks = tokenize(cleaned)
        words = [t.text for t in toks]
        found: list[Found] = []
        taken = [False] * len(words)
        for m in (self.places.locate(cleaned, toks) if self.places else []):
            # a district is certain even when the words are ambiguous between it and a unit
            if m.district:
                found.append(Found("locality", m.district, m.start, m.end, m.text))
            if m.unit:
                found.append(Found("commune", m.unit, m.start, m.end, m.text))
            for j, t in enumerate(toks):
                if t.start >= m.start and t.end <= m.end:
                    taken[j] = True
        i = 0
        while i < len(words):
            if taken[i] or words[i] not in self.firsts:
                i += 1
                continue
            for n in range(min(self.max_len, len(words) - i), 0, -1):
                if any(taken[i:i + n]):
                    continue
                hit = self.phrases.get(tuple(words[i:i + n]))
                if hit:
                    start, end = toks[i].start, toks[i + n - 1].end
                    if hit[0] != "_stop":
                        found.append(Found(hit[0], hit[1], start, end, cleaned[start:end]))
                    i += n
                    break
            else:
                i += 1
        return sorted(found, key=lambda f: f.start)

    def find(self, text: str) -> list[Found]:
        """Entities for the dialogue: every locality and relationship, and one person at risk
        (a child mentioned anywhere outranks another person, who outranks the writer)."""
        everything = self.find_all(text)
        out = [f for f in everything if f.entity in ("locality", "commune", "relationship", "province")]
        persons = [f for f in everything if f.entity == "person_at_risk"]
        for level in PERSON_PRIORITY:
            hit = next((p for p in persons if p.value == level), None)
            if hit:
                out.append(hit)
                break
        return sorted(out, key=lambda f: f.start)


def _resolve(path: str | Path) -> Path:
    p = Path(path)
    return p if p.is_absolute() or p.exists() else ROOT / p


def load_default() -> Gazetteer:
    return Gazetteer.from_files("data/kb/localities.yml", "data/kb/relationships.yml")


def iter_values(found: Iterable[Found], entity: str) -> list[str]:
    return [f.value for f in found if f.entity == entity]
