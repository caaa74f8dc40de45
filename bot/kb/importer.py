"""`helpline kb import FILE.csv`: the provincial office's way to keep ``data/kb/places.csv``
current, and `helpline kb template`: the rows still missing, ready to fill in.

Every row is validated before anything is written; one bad row stops the import and every
problem is listed with its line number, so a spreadsheet can be fixed and imported again. A row
replaces the row of ``places.csv`` with the same unit, kind and name; others are added. Nothing
else changes.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from bot.kb import KB
from bot.kb import facts as F
from bot.kb import hours as H
from bot.kb import places as P

REQUIRED = ("kind", "name", "source", "checked_on")
PHONE = re.compile(r"^[0-9 .\-]+$")


@dataclass
class ImportResult:
    rows: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    added: int = 0
    replaced: int = 0
    unchanged: int = 0


def valid_phone(value: str) -> bool:
    """Vietnamese numbers only: 111-115, 1800/1900 lines, 10-11 digit numbers from 0."""
    if not PHONE.match(value):
        return False
    digits = re.sub(r"\D", "", value)
    return bool(re.fullmatch(r"11[1-5]", digits) or re.fullmatch(r"1[89]00\d{4}", digits)
                or re.fullmatch(r"0\d{9,10}", digits))


def _check_row(n: int, raw: dict, places: P.Places, today: dt.date) -> tuple[Optional[dict], list[str]]:
    errs = []
    row = {k: (raw.get(k) or "").strip() for k in F.PLACE_FIELDS}
    for col in REQUIRED:
        if not row[col]:
            errs.append(f"line {n}: {col} is empty")
    if row["kind"] and row["kind"] not in F.PLACE_KINDS:
        errs.append(f"line {n}: kind {row['kind']!r} is not one of {', '.join(F.PLACE_KINDS)}")
    if row["unit"]:
        unit = places.unit_by_name(row["unit"])
        if unit is None:
            errs.append(f"line {n}: unit {row['unit']!r} is not a commune-level unit of data/kb/localities.yml "
                        "(write it as in Resolution 1659, e.g. 'xã Tam Xuân')")
        else:
            row["unit"] = unit.name_vi
            if row["former_district"] and row["former_district"] != unit.district:
                errs.append(f"line {n}: {unit.name_vi} lies in former district {unit.district}, "
                            f"not {row['former_district']}")
            row["former_district"] = unit.district
    if row["former_district"] and row["former_district"] not in places.districts:
        errs.append(f"line {n}: former_district {row['former_district']!r} is not an id of data/kb/localities.yml")
    for d in row["serves"].split():
        if d not in places.districts:
            errs.append(f"line {n}: serves names {d!r}, not a former district id")
    if row["phone"] and not valid_phone(row["phone"]):
        errs.append(f"line {n}: phone {row['phone']!r} is not a Vietnamese number (111-115, 1800/1900 xxxx, "
                    "or 10-11 digits from 0)")
    if row["hours"]:
        try:
            H.parse(row["hours"])
        except H.HoursError:
            errs.append(f"line {n}: hours {row['hours']!r}: write '24/7' or like 'mon-fri 07:30-11:30,13:30-17:00'")
    if row["checked_on"]:
        try:
            day = dt.date.fromisoformat(row["checked_on"])
            if day > today:
                errs.append(f"line {n}: checked_on {day} is in the future")
        except ValueError:
            errs.append(f"line {n}: checked_on {row['checked_on']!r} is not a date (YYYY-MM-DD)")
    v = row["verified"].lower()
    if v not in ("", "true", "false", "1", "0", "yes", "no"):
        errs.append(f"line {n}: verified must be true or false")
    row["verified"] = "true" if v in ("true", "1", "yes") else "false"
    if row["verified"] == "true" and not (row["address"] or row["phone"] or row["kind"] == "legal_aid"):
        errs.append(f"line {n}: a verified row needs an address or a phone")
    return (None if errs else row), errs


def read(text: str) -> list[dict]:
    text = text.lstrip("\ufeff")                     # spreadsheets save UTF-8 with a BOM
    return [dict(r) for r in csv.DictReader(io.StringIO(text))]


def validate(text: str, places: Optional[P.Places] = None, today: Optional[dt.date] = None) -> ImportResult:
    places = places or P.load()
    today = today or dt.date.today()
    result = ImportResult()
    try:
        raw_rows = read(text)
    except csv.Error as exc:
        result.errors.append(f"not a CSV file: {exc}")
        return result
    if not raw_rows:
        result.errors.append("no rows (the first line must name the columns: " + ",".join(F.PLACE_FIELDS) + ")")
        return result
    unknown = set(raw_rows[0]) - set(F.PLACE_FIELDS)
    if unknown:
        result.errors.append(f"unknown columns: {', '.join(sorted(unknown))}")
    for n, raw in enumerate(raw_rows, start=2):
        row, errs = _check_row(n, raw, places, today)
        result.errors += errs
        if row:
            result.rows.append(row)
    return result


def merge(result: ImportResult, path: Path = KB / "places.csv", write: bool = True) -> ImportResult:
    """Put the validated rows into ``places.csv`` (unless there were errors)."""
    if result.errors:
        return result
    current = {F.place_id(r): r for r in F.read_places_csv(path)}
    for row in result.rows:
        key = F.place_id(row)
        old = current.get(key)
        if old is None:
            result.added += 1
        elif {k: (old.get(k) or "") for k in F.PLACE_FIELDS} == row:
            result.unchanged += 1
        else:
            result.replaced += 1
        current[key] = row
    if write:
        rows = sorted(current.values(), key=lambda r: (r.get("former_district") or "~", r.get("unit") or "",
                                                       r.get("kind") or "", r.get("name") or ""))
        tmp = path.with_suffix(".csv.tmp")
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=F.PLACE_FIELDS, lineterminator="\n", extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
        tmp.replace(path)
    return result


def template(places: Optional[P.Places] = None, path: Path = KB / "places.csv") -> str:
    """CSV of the rows still missing: for every unit, its People's Committee and police when no
    verified row with an address exists yet. Names are filled in; the rest is for the office."""
    places = places or P.load()
    have = set()
    for r in F.read_places_csv(path):
        if r.get("unit") and r.get("address") and str(r.get("verified")).lower() == "true":
            unit = places.unit_by_name(r["unit"])
            if unit:
                have.add((unit.id, r.get("kind")))
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=F.PLACE_FIELDS, lineterminator="\n")
    w.writeheader()
    for unit in sorted(places.units.values(), key=lambda u: (u.district, u.name_vi)):
        for kind, body in (("peoples_committee", "UBND"), ("police", "Công an")):
            if (unit.id, kind) not in have:
                w.writerow({"unit": unit.name_vi, "former_district": unit.district, "kind": kind,
                            "name": f"{body} {unit.name_vi}", "verified": "false"})
    return out.getvalue()
