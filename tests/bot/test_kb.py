"""The knowledge base (data/kb/, bot/kb/): facts and numbers carry their sources and dates; no
reply states an expired fact; 111 is offered for trafficking to every age; the counselling line
appears only while verified, with known hours, and open; every former district and unit of
Quảng Nam is found the way people write it, and a name that means two places is never guessed."""
import datetime as dt
import re
import subprocess
import sys

import pytest
import yaml

from bot.kb import check as K
from bot.kb import facts as F
from bot.kb import hours as H
from bot.kb import importer, plans
from bot.kb import line as L
from bot.kb import places as P
from tests.conftest import ROOT

TODAY = dt.date(2026, 12, 7)
DOMAIN = {}
for _p in (ROOT / "bot" / "domain").glob("*.yml"):
    DOMAIN.update((yaml.safe_load(_p.read_text("utf-8")) or {}).get("responses") or {})


def vi(name: str) -> str:
    """The Vietnamese text of a response (its variation without a language condition)."""
    return next(v["text"] for v in DOMAIN[name]
                if not any(c.get("name") == "language" for c in v.get("condition") or []))


def _lang(v: dict) -> str:
    return next((c.get("value") for c in v.get("condition") or [] if c.get("name") == "language"), "vi")


def _campaign_citations():
    from webhook.broadcast.content import citations

    return citations()


# --- facts and citations ------------------------------------------------------------------------------

def test_every_fact_and_service_has_sources_and_the_day_it_was_checked():
    for item in [*F.facts().values(), *F.services().values()]:
        assert item.sources, item.id
        if item.id != "social_work_center":                     # never checked: nobody has called it
            assert item.checked_on and item.checked_on <= TODAY, item.id
        if not item.verified:
            assert item.note, f"{item.id}: an unverified item says what to check"


def test_no_reply_states_an_expired_or_unknown_fact():
    report = K.check(TODAY, {}, K.domain_citations() + _campaign_citations())
    assert report.errors == [], [f.message for f in report.errors]


def test_the_check_fails_a_reply_that_states_an_expired_fact_as_current():
    """The guard itself: a reply citing Decree 13/2023 (ended 31/12/2025) as the law today."""
    bad = [K.Citation("utter_example", facts=("decree_13_consent",)),
           K.Citation("utter_other", facts=("no_such_fact",), services=("no_such_service",))]
    errors = K.check(TODAY, {}, bad).errors
    assert len(errors) == 3
    assert "decree_13_consent" in errors[0].message and "pdpl_consent" in errors[0].message
    # the same fact named as history is fine, and so is a fact before its end
    assert K.check(TODAY, {}, [K.Citation("utter_x", history=("decree_13_consent",))]).errors == []
    assert K.check(dt.date(2025, 6, 1), {}, [K.Citation("utter_x", facts=("decree_13_consent",))]).errors == []


def test_decree_13_facts_ended_and_name_their_successors():
    facts = F.facts()
    old = [f for f in facts.values() if f.id.startswith("decree_13_")]
    assert len(old) == 7
    for f in old:
        assert f.valid_until == dt.date(2025, 12, 31), f.id
        succ = facts[f.replaced_by]
        assert succ.valid_from == dt.date(2026, 1, 1) and succ.valid_until is None, f.id
        assert "91/2025" in succ.data["instrument"] or "356/2025" in succ.data["instrument"], f.id


def test_request_deadlines_are_sourced_to_decree_356():
    f = F.facts()["decree_356_request_deadlines"]
    assert "Điều 5" in f.data["articles"] and "356/2025" in f.data["instrument"]
    assert "2 ngày làm việc" in f.data["statement_vi"] and "20 ngày" in f.data["statement_vi"]


def test_legal_aid_for_trafficking_victims_has_no_financial_condition_since_july_2025():
    facts = F.facts()
    now = facts["legal_aid_trafficking_victims"]
    assert now.valid_from == dt.date(2025, 7, 1) and "không cần điều kiện" in now.data["statement_vi"]
    assert facts["legal_aid_trafficking_victims_2017"].valid_until == dt.date(2025, 6, 30)
    text = vi("utter_legal_aid")
    assert "nạn nhân mua bán người (không cần điều kiện gì)" in text


def test_the_court_order_is_said_to_need_a_court_case():
    for name in ("utter_no_contact_order", "utter_divorce_custody"):
        text = vi(name)
        assert "4 tháng" in text and ("Chỉ khi Tòa án đang giải quyết" in text or "Khi vụ ly hôn đang ở Tòa" in text), name
    assert "Chỉ khi" in F.facts()["no_contact_court"].data["statement_vi"]


def test_decree_282_fines_name_their_articles():
    for f in F.facts().values():
        if f.id.startswith("fine_282_"):
            assert f.data.get("articles") and f.data["articles"].startswith("Điều "), f.id
    assert F.facts()["fine_282_forced_sex_spouse"].data["articles"] == "Điều 41"


# --- 111 -----------------------------------------------------------------------------------------------

CHILD_ONLY = re.compile(r"(trẻ em|dưới 16 tuổi|nếu là trẻ em)[^.\n]{0,12}:?\s*(gọi\s+)?111", re.IGNORECASE)


def _texts():
    for name, variants in DOMAIN.items():
        for v in variants:
            yield f"{name}/{_lang(v)}", v.get("text") or "", (v.get("metadata") or {}).get("topic")
    for c in _campaign_citations():
        yield c.where, c.text, "campaign"


# the same two rules in English: "trafficking" on 111's line, and "any age" in a trafficking reply
ENGLISH_CHILD_ONLY = re.compile(r"(children|child|under 16)[^.\n]{0,12}:?\s*(call\s+)?111", re.IGNORECASE)


@pytest.mark.parametrize("name, text, topic", [t for t in _texts() if "111" in t[1]], ids=lambda v: str(v)[:40])
def test_111_is_offered_for_trafficking_to_every_age(name, text, topic):
    """A reply that can be sent whatever the person wrote (no topic) says 111 takes trafficking
    reports too; a trafficking reply offers 111 to everyone, never 'if you are a child'."""
    english = name.endswith("/en")
    if topic == "trafficking":
        if english:
            assert re.search(r"any age|all ages|every age", text) and not ENGLISH_CHILD_ONLY.search(text), name
        else:
            assert "mọi lứa tuổi" in text and not CHILD_ONLY.search(text), name
    elif topic is None or topic == "campaign" and "mua bán người" in text:
        line = next(ln for ln in re.split(r"(?<=\.)\s|\n", text) if "111" in ln)
        assert ("trafficking" if english else "mua bán người") in line, f"{name}: {line}"


def test_the_111_directory_entry_names_its_operator_and_both_roles():
    s = F.services()["hotline_111"]
    assert s.data["operator_vi"] == "Bộ Y tế" and "mua bán người" in s.data["what_vi"] and "mọi lứa tuổi" in s.data["what_vi"]


# --- the counselling line ----------------------------------------------------------------------------------

NUMBER = "1800 1581"


def test_no_text_writes_the_counselling_line_as_digits():
    texts = [t for _n, t, _topic in _texts()]
    canned = yaml.safe_load((ROOT / "data" / "console" / "canned_responses.yml").read_text("utf-8"))["responses"]
    texts += [c["body"] for c in canned]
    for t in texts:
        assert NUMBER not in L.strip_markers(t).replace("@line", ""), t[:80]
    # and the marker is used where the line was offered before
    assert sum("[[line:" in t for t in texts) >= 20


def _state(checks=None, today=TODAY, max_age=None):
    return L.state(today, checks or {}, max_age_days=max_age)


def _check(result="confirmed", hours="24/7", day=TODAY):
    return F.latest_checks([F.Check("service", "social_work_center", day, result, hours)])


WED_10 = dt.datetime(2026, 12, 9, 10, 0, tzinfo=H.TZ).timestamp()
WED_22 = dt.datetime(2026, 12, 9, 22, 0, tzinfo=H.TZ).timestamp()
SUN_10 = dt.datetime(2026, 12, 13, 10, 0, tzinfo=H.TZ).timestamp()


def test_an_unverified_line_is_never_offered():
    st = _state()
    assert not st.usable and "not verified" in st.reason
    out = L.render(vi("utter_emergency_numbers"), st, WED_10)
    assert out == "Đang nguy hiểm: gọi ngay 113 (công an). Bị thương: 115 (cấp cứu). Trẻ em, mua bán người: 111."


def test_a_verified_line_is_offered_while_open_with_its_hours():
    st = _state(_check(hours="mon-fri 07:30-11:30,13:30-17:00"))
    assert st.usable
    text = vi("utter_fallback")
    assert "gọi 1800 1581 (miễn phí, T2-T6 7:30-11:30, 13:30-17:00) hoặc nhắn: gặp tư vấn viên" in L.render(text, st, WED_10)
    for closed in (WED_22, SUN_10):                               # at night and on Sunday: not the only place
        out = L.render(text, st, closed)
        assert NUMBER not in out and "Cần nói chuyện với người thật: nhắn: gặp tư vấn viên. Nguy hiểm: gọi 113." in out


@pytest.mark.parametrize("checks, max_age, why", [
    (_check(hours=None), None, "hours"),                                   # hours unknown
    (_check(day=TODAY - dt.timedelta(days=91)), None, "older than 90"),     # checked too long ago
    (_check(day=TODAY - dt.timedelta(days=31)), 30, "older than 30"),       # a stricter limit
    (F.latest_checks([F.Check("service", "social_work_center", TODAY - dt.timedelta(days=2), "confirmed", "24/7"),
                      F.Check("service", "social_work_center", TODAY, "no_answer")]), None, "wrong"),
])
def test_the_line_falls_back_to_the_verified_numbers(checks, max_age, why):
    st = _state(checks, max_age=max_age)
    assert not st.usable and why in st.reason
    assert NUMBER not in L.render(vi("utter_self_harm"), st, WED_10)


def test_every_reply_reads_well_with_and_without_the_line():
    on, off = _state(_check()), _state()
    for name, text, _topic in _texts():
        for st in (on, off):
            out = L.render(text, st, WED_10)
            assert "[[" not in out and "]]" not in out and "@line" not in out and "@hours" not in out, name
            assert "  " not in out and " ." not in out and " ," not in out and ".." not in out, (name, out)
            assert len(out) <= 480, name
        assert (NUMBER in L.render(text, on, WED_10)) == ("[[line:" in text and "@line" in text.split("||")[0]), name


def test_danger_replies_always_give_113_115_111_first():
    for name in ("utter_emergency_numbers", "utter_self_harm", "utter_gateway_degraded", "utter_gateway_out_of_hours"):
        for st in (_state(), _state(_check())):
            out = L.render(vi(name), st, WED_22)
            assert all(n in out for n in ("113", "115", "111")), name
            if NUMBER in out:
                assert out.index(NUMBER) > max(out.index(n) for n in ("113", "115")), name


# --- places ------------------------------------------------------------------------------------------------

PLACES = P.load()
LOC = PLACES.locator()
FORMER = ["tam_ky", "hoi_an", "dien_ban", "nui_thanh", "phu_ninh", "thang_binh", "que_son", "nong_son", "duy_xuyen",
          "dai_loc", "tien_phuoc", "hiep_duc", "bac_tra_my", "nam_tra_my", "phuoc_son", "nam_giang", "dong_giang",
          "tay_giang"]


def test_all_78_units_of_former_quang_nam_are_mapped_once():
    assert sorted(PLACES.districts) == sorted(FORMER)
    assert len(PLACES.units) == 78
    listed = [u for d in PLACES.districts.values() for u in d.units]
    assert sorted(listed) == sorted(PLACES.units)
    olds = [o for u in PLACES.units.values() for o in u.formed_from]
    assert len(olds) >= 233
    for u in PLACES.units.values():
        assert u.sources and PLACES.districts[u.district].units.count(u.id) == 1
        assert u.item is not None or u.name_vi in ("xã Tam Hải", "xã Tân Hiệp")


def _one(text):
    found = LOC.locate(text)
    assert len(found) == 1, (text, found)
    return found[0]


@pytest.mark.parametrize("district", FORMER)
def test_each_former_district_is_found_and_its_units_too(district):
    from bot.nlu.normalize import strip_diacritics

    d = PLACES.districts[district]
    kind = {"city": "thành phố", "town": "thị xã"}.get(d.former_kind, "huyện")
    for text in (f"em ở {kind} {d.name_vi}", strip_diacritics(f"{kind} {d.name_vi}").lower(), f"{d.name_vi} cũ"):
        m = _one(text)
        assert m.names_district and m.district == district, text
    bare = _one(f"em ở {d.name_vi}")
    assert bare.district == district and bare.unit is None
    same_name = [u for u in PLACES.units_of(district) if u.bare == d.name_vi]
    assert bare.ambiguous == bool(same_name), d.name_vi       # both a district and a unit: ask, never guess
    for u in PLACES.units_of(district):
        for text in (u.name_vi, strip_diacritics(u.name_vi), u.name_vi.upper()):
            m = _one(text)
            assert m.unit == u.id and m.district == district, text
        for old in u.formed_from:
            m = _one(old)        # an old name two districts had ("xã Phước Hòa") is asked about, never guessed
            assert m.unit == u.id and m.district == district or m.ambiguous and ("unit", u.id) in m.candidates, old


def test_names_that_mean_two_places_are_ambiguous():
    for text, expected in [("Núi Thành", {("district", "nui_thanh"), ("unit", "xa_nui_thanh")}),
                           ("trà my", {("district", "bac_tra_my"), ("district", "nam_tra_my"), ("unit", "xa_tra_my")}),
                           ("Điện Bàn", {("district", "dien_ban"), ("unit", "phuong_dien_ban")})]:
        assert set(_one(text).candidates) == expected, text
    assert _one("xã Thạnh Mỹ").unit == "xa_thanh_my" and _one("thạnh mỹ").unit == "xa_thanh_my"


def test_place_names_are_not_read_into_ordinary_words():
    assert LOC.locate("chị Thanh Hà nhà bên đánh con") == []     # a person, and "nhà" is not "Nha"
    assert LOC.locate("ba em đánh em") == []                       # "Ba" is a commune only as "xã Ba"
    assert _one("xã Ba").unit == "xa_song_vang"
    assert LOC.locate("Tam Tiến") == [] and _one("em ở Tam Tiến").unit == "xa_tam_xuan"   # an old name needs "ở"


def test_the_model_and_the_statistics_read_places_the_same_way():
    from bot.nlu.gazetteer import load_default
    from webhook.stats.profile import profile

    found = {(f.entity, f.value) for f in load_default().find("em ở xã Tam Xuân 1, Núi Thành, chồng đánh em")}
    assert {("locality", "nui_thanh"), ("commune", "xa_tam_xuan")} <= found
    assert any(e == "relationship" for e, _v in found)
    p = profile("em o Dien Ban, chong danh em", "domestic_violence", "medium")
    assert p.former_district == "dien_ban" and p.locality is None          # ambiguous: the unit is not guessed
    assert profile("em o xa Go Noi", None, "none").locality == "xã Gò Nổi"


# --- places.csv and the import ---------------------------------------------------------------------------

def test_places_rows_are_sourced_and_valid():
    result = importer.validate((ROOT / "data" / "kb" / "places.csv").read_text("utf-8"), PLACES, TODAY)
    assert result.errors == [], result.errors
    assert len(result.rows) >= 15


CSV_HEAD = ",".join(F.PLACE_FIELDS) + "\n"


def test_import_validates_every_row_and_writes_nothing_on_an_error(tmp_path):
    target = tmp_path / "places.csv"
    target.write_text(CSV_HEAD, "utf-8")
    bad = ("\ufeff" + CSV_HEAD +
           "xã Không Có,,,police,Công an,,,,http://x,,2026-12-01,true,\n"
           "xã Gò Nổi,tam_ky,,peoples_committee,UBND xã Gò Nổi,Thôn 1,0123,,http://x,,2099-01-01,maybe,\n"
           "phường Tam Kỳ,,,clinic,Phòng khám,,,,,,,,\n")
    result = importer.validate(bad, PLACES, TODAY)
    text = "\n".join(result.errors)
    for expected in ("line 2: unit 'xã Không Có'", "line 3: xã Gò Nổi lies in former district dien_ban",
                     "line 3: phone '0123'", "line 3: checked_on 2099-01-01 is in the future",
                     "line 3: verified must be", "line 4: kind 'clinic'", "line 4: source is empty"):
        assert expected in text, text
    importer.merge(result, target)
    assert target.read_text("utf-8") == CSV_HEAD


def test_import_merges_by_unit_kind_and_name(tmp_path):
    target = tmp_path / "places.csv"
    target.write_text(CSV_HEAD, "utf-8")
    good = (CSV_HEAD + "xa go noi,,,peoples_committee,UBND xã Gò Nổi,Thôn Phú Nham,0235 3888 999,mon-fri 07:30-17:00,"
            "phone call by the provincial office,,2026-12-01,true,\n")
    r = importer.merge(importer.validate(good, PLACES, TODAY), target)
    assert (r.added, r.replaced) == (1, 0)
    row = F.read_places_csv(target)[0]
    assert row["unit"] == "xã Gò Nổi" and row["former_district"] == "dien_ban"
    r = importer.merge(importer.validate(good.replace("Thôn Phú Nham", "Thôn 2"), PLACES, TODAY), target)
    assert (r.added, r.replaced) == (0, 1) and F.read_places_csv(target)[0]["address"] == "Thôn 2"


def test_the_template_lists_what_the_office_still_has_to_fill_in():
    rows = importer.read(importer.template(PLACES))
    assert len(rows) == 2 * 78                       # no unit has a verified office address yet
    assert {"unit": "xã Gò Nổi", "kind": "police", "name": "Công an xã Gò Nổi"}.items() <= rows[0].items() or \
        any(r["name"] == "Công an xã Gò Nổi" for r in rows)


# --- plans, hours, the command ---------------------------------------------------------------------------

def test_targets_only_while_a_plan_is_in_force():
    assert {k: v for k, (v, _p) in plans.targets(2025).items()} == {"d": 50, "dd": 100}
    assert plans.targets(2026) == {}
    from webhook.stats.report import plans_text

    assert "50%" in plans_text(2025) and "2232/QĐ-TTg" in plans_text(2025)
    later = plans_text(2026)
    assert "50%" not in later and "không có chương trình" in later and "đã kết thúc ngày 31/12/2025" in later


def test_hours_grammar():
    assert H.describe("mon-fri 07:30-11:30,13:30-17:00; sat 07:30-11:30") == "T2-T6 7:30-11:30, 13:30-17:00; T7 7:30-11:30"
    assert H.open_at(WED_10, "24/7") and not H.open_at(WED_22, "mon-fri 07:30-17:00")
    with pytest.raises(H.HoursError):
        H.parse("every day")


def test_kb_check_command_prints_the_state_and_exits_zero(tmp_path):
    out = subprocess.run([sys.executable, "-m", "bot.cli", "kb", "check", "--no-db"], capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Counselling line (social_work_center): 1800 1581 — NOT offered" in out.stdout
    assert "unverified service social_work_center" in out.stdout
    assert "Replies citing an expired, future or unknown fact: 0" in out.stdout
