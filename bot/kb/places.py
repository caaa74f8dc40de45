"""Where a person is: the former districts and the new commune-level units of ``localities.yml``,
and a ``Locator`` that finds them in a message, accented or not.

One reading of place names for the whole project: the NLU's gazetteer (entities ``locality`` and
``commune``), the action that answers "where can I get help", the statistics (former district and
unit of an episode) and the broadcast opt-in (a district after DK).

A match says what the words can mean, not a guess:

- ``unit``: one unit is named ("xã Tam Xuân", "Gò Nổi", "xã Tam Xuân 1" now in xã Tam Xuân);
- ``district``: the former district is certain (also when the unit is not: "Núi Thành" is either
  the former district or xã Núi Thành, which lies inside it);
- ``ambiguous``: the words name more than one thing (a district and a unit, or several
  districts: "Trà My"); the caller asks which one.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from bot.kb import KB, cached, read_yaml
from bot.nlu.normalize import clean, fold, tokenize

# written with their accents: the accent check (below) compares them with what was typed
DISTRICT_PREFIXES = ("huyện", "h", "thị xã", "tx", "thành phố", "tp")
UNIT_PREFIXES = {"xa": ("xã", "x"), "phuong": ("phường", "p")}
OLD_PREFIXES = ("xã", "phường", "thị trấn", "tt", "x", "p")
# an old unit's bare name counts only after one of these (or with its kind): "em ở Tam Tiến"
CUES = ("o", "tai", "thuoc", "ben", "gan", "que")
OLD_SUFFIX = ("cũ",)                          # "Núi Thành cũ", "huyện Núi Thành cũ": the former district


@dataclass(frozen=True)
class District:
    id: str
    name_vi: str
    former_kind: str                # city | town | district
    units: tuple[str, ...]
    seat_unit: Optional[str]
    aliases: tuple[str, ...] = ()
    shared_aliases: tuple[str, ...] = ()

    @property
    def label_vi(self) -> str:
        kind = {"city": "thành phố", "town": "thị xã"}.get(self.former_kind, "huyện")
        return f"{kind} {self.name_vi} cũ"


@dataclass(frozen=True)
class Unit:
    id: str
    name_vi: str                    # "xã Tam Xuân"
    district: str
    item: Optional[int]
    formed_from: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return "phuong" if self.name_vi.lower().startswith("phường") else "xa"

    @property
    def bare(self) -> str:
        return re.sub(r"^(phường|xã)\s+", "", self.name_vi, flags=re.IGNORECASE)


@dataclass(frozen=True)
class Match:
    """One place named in a text. ``candidates`` are ("district"|"unit", id) pairs."""
    start: int
    end: int
    text: str
    candidates: tuple[tuple[str, str], ...]
    district: Optional[str]         # certain former district, or None
    old_name: Optional[str] = None  # the old unit's name when the words were an old name

    @property
    def unit(self) -> Optional[str]:
        units = [i for k, i in self.candidates if k == "unit"]
        return units[0] if len(units) == 1 and len(self.candidates) == 1 else None

    @property
    def ambiguous(self) -> bool:
        return len(self.candidates) > 1

    @property
    def names_district(self) -> bool:
        """The words name a former district and nothing else ("huyện Núi Thành", "Bắc Trà My")."""
        return len(self.candidates) == 1 and self.candidates[0][0] == "district"


def key(phrase: str) -> tuple[str, ...]:
    return tuple(t.text for t in tokenize(clean(phrase)))


@dataclass
class _Entry:
    candidates: set = field(default_factory=set)
    needs_cue: bool = True          # only old names need a cue; any other form clears it
    old_name: Optional[str] = None
    accents: dict = field(default_factory=dict)   # candidate -> accented spellings of this key


def _accented(phrase: str) -> tuple[str, ...]:
    return tuple(w.lower() for w in re.findall(r"[^\W_]+", clean(phrase)))


def _agree(raw: tuple[str, ...], form: tuple[str, ...]) -> bool:
    """A syllable typed with accents must carry the name's accents ("Hà nhà" is not "Hà Nha",
    "Tam Thạnh" is not "Tam Thanh"); one typed without accents matches any."""
    return len(form) == len(raw) and all(fold(r) == r or r == f for r, f in zip(raw, form))


def _by_accents(entry: "_Entry", raw: tuple[str, ...]) -> tuple:
    """The candidates whose spelling agrees with what was typed. When none does, a long name is
    still taken as typed with a slip (all candidates); a two-syllable one is not a match at all."""
    fitting = tuple(sorted(c for c in entry.candidates if any(_agree(raw, f) for f in entry.accents.get(c, ()))))
    if fitting:
        return fitting
    return tuple(sorted(entry.candidates)) if len(raw) > 2 else ()


class Locator:
    """Longest match over folded tokens, so "Hội An Đông" wins over "Hội An" and "Tam Xuân I"
    over "Tam Xuân". Serialisable (the Rasa model stores it)."""

    def __init__(self, index: dict[tuple[str, ...], _Entry], districts_of: dict[str, str]):
        self.index = {k: v for k, v in index.items() if k}
        self.max_len = max((len(k) for k in self.index), default=1)
        self.firsts = frozenset(k[0] for k in self.index)   # most words start no name: one look
        self.districts_of = districts_of          # unit id -> district id

    @classmethod
    def build(cls, districts: Iterable[District], units: Iterable[Unit]) -> "Locator":
        index: dict[tuple[str, ...], _Entry] = {}

        def add(phrase: str, cand: tuple[str, str], cue: bool = False, old: Optional[str] = None) -> None:
            k = key(phrase)
            if not k:
                return
            e = index.setdefault(k, _Entry())
            e.candidates.add(cand)
            e.needs_cue = e.needs_cue and cue
            if old and e.old_name is None:
                e.old_name = old
            if len(_accented(phrase)) == len(k):
                e.accents.setdefault(cand, set()).add(_accented(phrase))

        units = list(units)
        for d in districts:
            names = [d.name_vi, *d.aliases]
            for n in names:
                add(n, ("district", d.id))
                for p in DISTRICT_PREFIXES:
                    add(f"{p} {n}", ("district", d.id))
                for s in OLD_SUFFIX:
                    add(f"{n} {s}", ("district", d.id))
                    for p in DISTRICT_PREFIXES:
                        add(f"{p} {n} {s}", ("district", d.id))
            for n in d.shared_aliases:
                add(n, ("district", d.id))
        for u in units:
            for n in (u.bare, *u.aliases):
                add(n, ("unit", u.id))
                for p in UNIT_PREFIXES[u.kind]:
                    add(f"{p} {n}", ("unit", u.id))
            for old in u.formed_from:
                bare = re.sub(r"^(phường|xã|thị trấn)\s+", "", old, flags=re.IGNORECASE)
                # "Tam Xuân I" is also typed "Tam Xuân 1"
                variants = {bare, bare.replace(" II", " 2").replace(" I", " 1")}
                for v in variants:
                    if len(key(v)) >= 2:        # "Ba", "Tư", "Dang": only as "xã Ba"
                        add(v, ("unit", u.id), cue=not _distinctive(v), old=old)
                    for p in OLD_PREFIXES:
                        add(f"{p} {v}", ("unit", u.id), old=old)
        return cls(index, {u.id: u.district for u in units})

    # --- serialisation (stored inside the Rasa model) ---------------------------------------
    def to_json(self) -> dict:
        return {"index": [[" ".join(k), sorted([list(c) for c in e.candidates]), e.needs_cue, e.old_name,
                           [[list(c), sorted(" ".join(a) for a in forms)] for c, forms in sorted(e.accents.items())]]
                          for k, e in sorted(self.index.items())],
                "districts_of": self.districts_of}

    @classmethod
    def from_json(cls, data: dict) -> "Locator":
        index = {}
        for phrase, cands, cue, old, accents in data.get("index", []):
            index[tuple(phrase.split())] = _Entry({tuple(c) for c in cands}, bool(cue), old,
                                                  {tuple(c): {tuple(a.split()) for a in forms} for c, forms in accents})
        return cls(index, dict(data.get("districts_of") or {}))

    # --- matching ----------------------------------------------------------------------------
    def locate(self, text: str, toks: Optional[list] = None) -> list[Match]:
        """Places in ``text``; ``toks`` are its tokens when the caller has them (``text`` is then
        already cleaned)."""
        cleaned = clean(text or "") if toks is None else text
        toks = tokenize(cleaned) if toks is None else toks
        words = [t.text for t in toks]
        out: list[Match] = []
        i = 0
        while i < len(words):
            if words[i] not in self.firsts:
                i += 1
                continue
            for n in range(min(self.max_len, len(words) - i), 0, -1):
                e = self.index.get(tuple(words[i:i + n]))
                if e is None or e.needs_cue and not self._cued(words, i):
                    continue
                start, end = toks[i].start, toks[i + n - 1].end
                raw = _accented(cleaned[start:end])
                cands = _by_accents(e, raw) if len(raw) == n else tuple(sorted(e.candidates))
                if not cands:
                    continue
                out.append(Match(start, end, cleaned[start:end], cands, self._district(cands), e.old_name))
                i += n
                break
            else:
                i += 1
        return out

    @staticmethod
    def _cued(words: list[str], i: int) -> bool:
        return any(tuple(words[max(0, i - len(c.split())):i]) == tuple(c.split()) for c in CUES)

    def _district(self, cands: tuple[tuple[str, str], ...]) -> Optional[str]:
        ds = {i if k == "district" else self.districts_of.get(i) for k, i in cands}
        return ds.pop() if len(ds) == 1 else None


def _distinctive(name: str) -> bool:
    """An old name of three syllables or with a digit is safe without a cue ("Tam Xuân 1",
    "Điện Nam Đông"); a two-syllable one may be a person's name ("Thanh Hà", "Minh An")."""
    return len(key(name)) >= 3 or bool(re.search(r"\d", name))


@dataclass(frozen=True)
class Places:
    districts: dict[str, District]
    units: dict[str, Unit]
    province_aliases: tuple[str, ...]

    def locator(self) -> Locator:
        return _locator(self)

    def district_name(self, district_id: Optional[str]) -> str:
        d = self.districts.get(district_id or "")
        return d.name_vi if d else (district_id or "")

    def unit_name(self, unit_id: Optional[str]) -> str:
        u = self.units.get(unit_id or "")
        return u.name_vi if u else (unit_id or "")

    def units_of(self, district_id: str) -> list[Unit]:
        d = self.districts.get(district_id)
        return [self.units[u] for u in (d.units if d else ()) if u in self.units]

    def unit_by_name(self, name: str) -> Optional[Unit]:
        """A unit from its name as people or the provincial office write it ("xã Tam Xuân",
        "xa tam xuan", "Tam Xuân"), or its id."""
        if name in self.units:
            return self.units[name]
        wanted = fold(clean(name))
        bare = re.sub(r"^(phuong|xa)\s+", "", wanted)
        hits = [u for u in self.units.values() if fold(u.name_vi) == wanted]
        hits = hits or [u for u in self.units.values() if fold(u.bare) == bare]
        return hits[0] if len(hits) == 1 else None


_locators: dict[int, Locator] = {}


def _locator(places: Places) -> Locator:
    hit = _locators.get(id(places))
    if hit is None:
        hit = _locators[id(places)] = Locator.build(places.districts.values(), places.units.values())
    return hit


def _build(path: Path) -> Places:
    data = read_yaml(path)
    districts = {}
    for d in data.get("localities") or []:
        districts[d["id"]] = District(d["id"], d["name_vi"], d.get("former_kind", "district"), tuple(d.get("units") or ()),
                                      d.get("seat_unit"), tuple(d.get("aliases") or ()),
                                      tuple(d.get("shared_aliases") or ()))
    units = {}
    for u in data.get("units") or []:
        units[u["id"]] = Unit(u["id"], u["name_vi"], u["district"], u.get("item"), tuple(u.get("formed_from") or ()),
                              tuple(u.get("aliases") or ()), tuple(u.get("sources") or ()))
    return Places(districts, units, tuple(data.get("province_aliases") or ()))


def load(path: Path = KB / "localities.yml") -> Places:
    return cached(path, "places", _build)
