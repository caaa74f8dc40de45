"""Dictionary look-up of places and people on folded text (plain Python, no Rasa).

Used by the Rasa ``Gazetteer`` component and by the action server's service look-up. Matching is
on normalised tokens with longest match first, so "huyện Núi Thành", "nui thanh" and "NÚI THÀNH"
all find ``nui_thanh``, and "Hội An Đông" wins over "Hội An".
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import yaml

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
    def __init__(self, phrases: dict[tuple[str, ...], tuple[str, str]]):
        self.phrases = {k: v for k, v in phrases.items() if k}
        self.max_len = max((len(k) for k in self.phrases), default=1)

    @classmethod
    def from_files(cls, localities: str | Path, relationships: str | Path) -> "Gazetteer":
        loc = yaml.safe_load(_resolve(localities).read_text("utf-8")) or {}
        rel = yaml.safe_load(_resolve(relationships).read_text("utf-8")) or {}
        phrases: dict[tuple[str, ...], tuple[str, str]] = {}
        for item in loc.get("localities", []):
            for alias in [item.get("name_vi", "")] + list(item.get("aliases") or []):
                phrases.setdefault(_key(alias), ("locality", item["id"]))
            for unit in item.get("new_units") or []:
                phrases.setdefault(_key(unit), ("locality", item["id"]))
        for phrase in STOP_PHRASES:
            phrases[_key(phrase)] = ("_stop", "")
        for alias in loc.get("province_aliases") or []:
            phrases.setdefault(_key(alias), ("province", "da_nang"))
        for value, words in (rel.get("relationships") or {}).items():
            for w in words or []:
                phrases.setdefault(_key(w), ("relationship", value))
        for value, words in (rel.get("persons_at_risk") or {}).items():
            for w in words or []:
                phrases.setdefault(_key(w), ("person_at_risk", value))
        return cls(phrases)

    def to_json(self) -> dict:
        return {"phrases": [[" ".join(k), e, v] for k, (e, v) in sorted(self.phrases.items())]}

    @classmethod
    def from_json(cls, data: dict) -> "Gazetteer":
        return cls({tuple(p.split()): (e, v) for p, e, v in data.get("phrases", [])})

    def find_all(self, text: str) -> list[Found]:
        cleaned = clean(text)
        toks = tokenize(cleaned)
        words = [t.text for t in toks]
        found: list[Found] = []
        i = 0
        while i < len(words):
            for n in range(min(self.max_len, len(words) - i), 0, -1):
                hit = self.phrases.get(tuple(words[i:i + n]))
                if hit:
                    start, end = toks[i].start, toks[i + n - 1].end
                    if hit[0] != "_stop":
                        found.append(Found(hit[0], hit[1], start, end, cleaned[start:end]))
                    i += n
                    break
            else:
                i += 1
        return found

    def find(self, text: str) -> list[Found]:
        """Entities for the dialogue: every locality and relationship, and one person at risk
        (a child mentioned anywhere outranks another person, who outranks the writer)."""
        everything = self.find_all(text)
        out = [f for f in everything if f.entity in ("locality", "relationship", "province")]
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
