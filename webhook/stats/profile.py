"""What one message says about the person and the violence, as statistics labels only.

Run on the message text when it is handled; only the labels are kept (webhook/stats/episodes.py).
Everything here is on the normalised text (bot/nlu/normalize.py: lower case, no diacritics,
teencode and Central dialect mapped), so "bị hiếp" and "bi hiep" are the same. A label is set
only when the words say it: no guessing sex from "my husband", no age from a school topic alone.

GBVIMS core types (GBVIMS User Guide ch. 3, ../shared/reference/domain_brief.md §3.2), one per
incident, the first that applies in this order: rape, sexual assault, physical assault, forced
marriage, denial of resources, psychological/emotional abuse. A disclosure none of the patterns
types is ``undetermined`` (the counsellor sets the type on the case); a message that discloses
nothing is ``non_gbv``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

from bot.kb import places
from bot.nlu.normalize import normalize

GBV_TYPES = ("rape", "sexual_assault", "physical_assault", "forced_marriage", "denial_of_resources",
             "psychological_abuse", "undetermined", "non_gbv")
AGE_GROUPS = ("0-11", "12-17", "18-25", "26-40", "41-60", "61+", "unknown")
REPORTERS = ("survivor", "witness_relative", "student", "parent", "professional", "unknown")
SEXES = ("female", "male", "unknown")
RISKS = ("none", "low", "medium", "high", "imminent")
DISCLOSURE_TOPICS = {"domestic_violence", "sexual_violence", "sexual_harassment", "child_abuse", "school_violence",
                     "online_violence", "forced_marriage_trafficking", "emergency"}


def _rx(*patterns: str) -> re.Pattern:
    return re.compile(r"\b(?:" + "|".join(patterns) + r")\b")


# In GBVIMS precedence order. Patterns are on folded text: "danh" alone is also "dành"/"danh", so
# hitting is matched with a victim or a verb around it.
TYPE_PATTERNS = [
    ("rape", _rx(r"hiep dam", r"cuong hiep", r"bi (?:\w+ ){0,2}hiep", r"hiep (?:toi|em|chau|con|minh|be)", r"cuong dam",
                 r"ep (?:toi |em |minh )?quan he", r"bat (?:toi |em )?quan he", r"giao cau", r"loan luan")),
    ("sexual_assault", _rx(r"sam so", r"bi (?:\w+ ){0,2}(?:so mo|sam so|xam hai)", r"so mo", r"so (?:vao )?(?:nguoi|nguc|vung kin|chan|dui)",
                           r"cham vao (?:nguoi|vung kin|nguc)", r"xam hai tinh duc", r"dam o", r"bi xam hai",
                           r"hon (?:ep|cuong)", r"cat bo phan sinh duc")),
    ("physical_assault", _rx(r"danh dap", r"bi (?:\w+ ){0,2}danh", r"danh (?:toi|em|vo|con|me|chi|minh|chau|ban|be|nhau)",
                             r"dam (?:toi|em|vo|con|vao)", r"bi dam", r"tat (?:toi|em|vo|con|vao mat)", r"bi tat",
                             r"bop co", r"chem", r"dao dam", r"bi dot", r"tat nuoc soi", r"xo nga", r"bam tim",
                             r"chay mau", r"gay tay", r"gay chan", r"bao luc the chat", r"bi dap", r"dap (?:toi|em|vo|con)",
                             r"troi (?:toi|em|lai)", r"nhot (?:toi|em|lai)")),
    ("forced_marriage", _rx(r"ep cuoi", r"ep (?:toi |em )?lay chong", r"ep (?:toi |em )?ket hon", r"tao hon",
                            r"bat (?:toi |em )?lay chong", r"ep (?:toi |em )?lay vo", r"cuong ep ket hon",
                            r"ga ban", r"ban (?:toi |em )?(?:sang|qua) trung quoc")),
    ("denial_of_resources", _rx(r"khong cho (?:toi |em )?tien", r"giu het tien", r"lay het (?:tien|luong)",
                                r"khong cho (?:toi |em |con )?di (?:hoc|lam)", r"khong cho (?:toi |em |con )?an",
                                r"khong chu cap", r"bo doi", r"giu giay to", r"tich thu giay to", r"cat tien",
                                r"khong dua tien", r"khong cho di kham")),
    ("psychological_abuse", _rx(r"chui (?:mang|bo|toi|em|rua)", r"bi chui", r"chui", r"de doa", r"doa giet",
                                r"doa (?:toi|em|se)", r"xuc pham", r"lang ma", r"nhuc ma", r"kiem soat",
                                r"theo doi (?:toi|em)", r"tung anh", r"phat tan anh", r"dang anh", r"co lap",
                                r"bat nat", r"khung bo tinh than", r"quay roi", r"nhan tin quay roi",
                                r"khong cho (?:toi |em )?gap", r"tong tien")),
]

AGE_RX = re.compile(r"\b(\d{1,2})\s*tuoi\b")
GRADE_RX = re.compile(r"\blop\s*(\d{1,2})\b")
AGE_WORDS = [(_rx(r"mam non", r"mau giao", r"tieu hoc", r"cap 1"), "0-11"),
             (_rx(r"thpt", r"cap 3", r"trung hoc pho thong"), "12-17"),
             (_rx(r"sinh vien", r"dai hoc nam"), "18-25")]
PROFESSIONAL_RX = _rx(r"(?:toi|em|minh) la (?:giao vien|co giao|thay giao|can bo|cong an|bac si|y ta|"
                      r"nhan vien xa hoi|cong tac vien|truong thon|hieu truong|tu van vien)")
STUDENT_RX = _rx(r"(?:toi|em|minh|tui) (?:la|dang la) (?:hoc sinh|hs)", r"em hoc lop", r"o truong em", r"lop em")
PARENT_RX = _rx(r"con (?:gai |trai )?(?:toi|em|minh|tui)", r"be nha (?:toi|em|minh)", r"chau (?:toi|em|minh)")
FEMALE_RX = _rx(r"(?:toi|em|minh|tui) la (?:nu|con gai|phu nu|dan ba|gai)")
MALE_RX = _rx(r"(?:toi|em|minh|tui) la (?:nam|con trai|dan ong|dan ong)")


@dataclass(frozen=True)
class Profile:
    gbv_type: str = "non_gbv"
    age_group: str = "unknown"
    reporter: str = "unknown"
    sex: str = "unknown"
    relationship: Optional[str] = None
    former_district: Optional[str] = None
    locality: Optional[str] = None


def age_group(age: int) -> str:
    for limit, group in ((11, "0-11"), (17, "12-17"), (25, "18-25"), (40, "26-40"), (60, "41-60")):
        if age <= limit:
            return group
    return "61+"


def gbv_type(norm: str, disclosure: bool) -> str:
    for name, rx in TYPE_PATTERNS:
        if rx.search(norm):
            return name
    return "undetermined" if disclosure else "non_gbv"


def _age(norm: str) -> str:
    m = AGE_RX.search(norm)
    if m and 0 < int(m.group(1)) <= 99:
        return age_group(int(m.group(1)))
    m = GRADE_RX.search(norm)
    if m:
        grade = int(m.group(1))
        if 1 <= grade <= 5:
            return "0-11"
        if 7 <= grade <= 12:
            return "12-17"          # grade 6 pupils are 11 or 12: left unknown
    for rx, group in AGE_WORDS:
        if rx.search(norm):
            return group
    return "unknown"


@lru_cache(maxsize=1)
def _gazetteer():
    from bot.nlu.gazetteer import load_default

    return load_default()


def profile(text: str, topic: Optional[str], risk: str) -> Profile:
    norm = normalize(text or "")
    found = _gazetteer().find(text or "")
    persons = [f.value for f in found if f.entity == "person_at_risk"]
    relationships = [f.value for f in found if f.entity == "relationship"]
    districts = [f.value for f in found if f.entity == "locality"]
    disclosure = risk in ("medium", "high", "imminent") or topic in DISCLOSURE_TOPICS and risk != "none"
    kind = gbv_type(norm, disclosure)
    if PROFESSIONAL_RX.search(norm):
        reporter = "professional"
    elif "child" in persons and PARENT_RX.search(norm):
        reporter = "parent"
    elif STUDENT_RX.search(norm) or ("self" in persons and topic == "school_violence"):
        reporter = "student"
    elif "self" in persons:
        reporter = "survivor"
    elif persons:
        reporter = "witness_relative"
    else:
        reporter = "unknown"
    sex = "female" if FEMALE_RX.search(norm) else "male" if MALE_RX.search(norm) else "unknown"
    communes = [f.value for f in found if f.entity == "commune"]
    unit = places.load().unit_name(communes[0]) if communes else None
    return Profile(gbv_type=kind, age_group=_age(norm), reporter=reporter, sex=sex,
                   relationship=relationships[0] if relationships else None,
                   former_district=districts[0] if districts else None, locality=unit)
