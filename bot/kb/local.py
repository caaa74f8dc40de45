"""What to tell a person about the help near them, from ``localities.yml`` and ``places.csv``.

For a unit: its People's Committee and police (always: every unit has them, and the name is
certain), then the rows of ``places.csv`` that may be shown today for the unit, for its former
district or for the city. A row may be shown when it is verified (in the file or by a check
recorded in the console) and not expired or marked wrong; its address and phone are printed only
then. Nothing else is printed: no address or number from memory.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Optional

from bot.kb import facts as F
from bot.kb import places as P
from bot.nlu.normalize import fold

KIND_ORDER = {"peoples_committee": 0, "police": 1, "health": 2, "legal_aid": 3, "social_work": 4, "shelter": 5}
ROLE_VI = {   # facts dv_report_places, no_contact_commune, legal_aid_free
    "peoples_committee": "nhận trình báo, ra lệnh cấm tiếp xúc",
    "police": "trình báo, bảo vệ",
    "health": "khám, chữa trị",
    "legal_aid": "miễn phí cho người thuộc diện",
    "social_work": "tư vấn, hỗ trợ",
    "shelter": "chỗ tạm lánh",
}


@dataclass(frozen=True)
class Place:
    kind: str
    name: str
    address: str = ""
    phone: str = ""
    hours: str = ""
    scope: str = "unit"             # unit | district | city

    def line(self) -> str:
        where = ", ".join(p for p in (self.address, f"ĐT {self.phone}" if self.phone else "") if p)
        if where:
            return f"- {self.name}: {where}"
        role = ROLE_VI.get(self.kind)
        return f"- {self.name} ({role})" if role else f"- {self.name}"


def _shown(item: F.Item, today: dt.date, checks: Optional[dict]) -> bool:
    return F.status(item, today, checks, max_age_days=10_000).state == "ok"


def _rows_for(unit: Optional[P.Unit], district: Optional[str], places: P.Places, today: dt.date,
              checks: Optional[dict]) -> list[Place]:
    out: list[Place] = []
    for item in F.places().values():
        if not _shown(item, today, checks):
            continue
        row = item.data
        where = places.unit_by_name(row.get("unit") or "") if row.get("unit") else None
        serves = (row.get("serves") or "").split()
        if unit is not None and where is not None and where.id == unit.id:
            scope = "unit"
        elif district and ((where is not None and where.district == district) or row.get("former_district") == district
                           and where is None or district in serves):
            scope = "district"
        elif not row.get("unit") and not row.get("former_district"):
            scope = "city"
        else:
            continue
        out.append(Place(row["kind"], row["name"], row.get("address") or "", row.get("phone") or "",
                         row.get("hours") or "", scope))
    return out


def unit_places(unit_id: str, today: Optional[dt.date] = None, checks: Optional[dict] = None,
                places: Optional[P.Places] = None) -> list[Place]:
    """Where a person in this unit can go, nearest first: the unit's People's Committee and
    police, then health, legal aid and the rest (the unit's own rows before the area's)."""
    today = today or dt.date.today()
    places = places or P.load()
    unit = places.units[unit_id]
    rows = _rows_for(unit, unit.district, places, today, checks)
    own = {r.kind for r in rows if r.scope == "unit"}
    for kind, body in (("peoples_committee", "UBND"), ("police", "Công an")):
        if kind not in own:
            rows.append(Place(kind, f"{body} {unit.name_vi}", scope="unit"))
    # one health place is enough: the unit's own, else the area's
    health = [r for r in rows if r.kind == "health"]
    if len(health) > 1:
        best = min(health, key=lambda r: ("unit", "district", "city").index(r.scope))
        rows = [r for r in rows if r.kind != "health" or r is best]
    return sorted(rows, key=lambda r: (KIND_ORDER.get(r.kind, 9), ("unit", "district", "city").index(r.scope)))


def area_places(district_id: str, today: Optional[dt.date] = None, checks: Optional[dict] = None,
                places: Optional[P.Places] = None) -> list[Place]:
    """What serves a whole former district (hospitals, legal aid), for the answer that asks
    which unit the person is in."""
    today = today or dt.date.today()
    places = places or P.load()
    rows = [r for r in _rows_for(None, district_id, places, today, checks)
            if r.kind not in ("peoples_committee", "police")]
    return sorted(rows, key=lambda r: (KIND_ORDER.get(r.kind, 9), ("unit", "district", "city").index(r.scope)))


def unit_label(unit_id: str, places: Optional[P.Places] = None) -> str:
    """ "xã Tam Xuân (huyện Núi Thành cũ)"."""
    places = places or P.load()
    unit = places.units[unit_id]
    district = places.districts.get(unit.district)
    return f"{unit.name_vi} ({district.label_vi})" if district else unit.name_vi


def merged_note(unit_id: str, old_name: Optional[str], places: Optional[P.Places] = None) -> str:
    """ "Xã Tam Tiến cũ nay thuộc xã Tam Xuân. " when the person named an old unit by its old
    name; empty otherwise."""
    places = places or P.load()
    unit = places.units[unit_id]
    if not old_name or _bare(old_name) == _bare(unit.name_vi):
        return ""
    return f"{old_name[0].upper()}{old_name[1:]} cũ nay thuộc {unit.name_vi}. "


def _bare(name: str) -> str:
    return re.sub(r"^(thi tran|phuong|xa)\s+", "", fold(name).strip())


def units_list(district_id: str, places: Optional[P.Places] = None) -> str:
    places = places or P.load()
    units = places.units_of(district_id)
    return ", ".join(u.name_vi for u in units)


def choices(match: P.Match, places: Optional[P.Places] = None) -> str:
    """The places a shared name can mean, for the question: "xã Trà My (huyện Bắc Trà My cũ),
    huyện Bắc Trà My cũ, huyện Nam Trà My cũ"."""
    places = places or P.load()
    out = []
    for kind, ident in match.candidates:
        if kind == "unit":
            out.append(unit_label(ident, places))
        else:
            out.append(places.districts[ident].label_vi)
    return ", ".join(out)
