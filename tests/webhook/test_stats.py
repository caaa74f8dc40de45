"""Anonymised contact statistics: labels from a message, episodes (one per person per month,
year-scoped pseudonyms, nothing identifying), indicators d and đ on synthetic data with known
answers, small-cell suppression (also against differencing), on SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt
import itertools
import json
import random
import time

import pytest
from sqlalchemy import select

from tests.webhook.conftest import post_telegram, rows, settle
from webhook import pipeline
from webhook.channels.base import Inbound
from webhook.db import transaction
from webhook.models import Contact, Episode, StatYearKey
from webhook.stats import episodes as E
from webhook.stats import report as R
from webhook.stats.profile import profile
from webhook.stats.suppress import HIDDEN, MASK, percent, suppress_line, suppress_table


@pytest.mark.parametrize("text,expected", [
    ("Chồng tôi đánh tôi chảy máu ở Núi Thành", dict(gbv_type="physical_assault", reporter="survivor",
                                                     relationship="intimate_partner", former_district="nui_thanh")),
    ("chong toi danh toi chay mau o nui thanh", dict(gbv_type="physical_assault", former_district="nui_thanh")),
    ("con gái tôi 13 tuổi bị thầy giáo sàm sỡ", dict(gbv_type="sexual_assault", age_group="12-17", reporter="parent",
                                                     relationship="teacher")),
    ("toi bi hiep dam, toi la nu 22 tuoi", dict(gbv_type="rape", sex="female", age_group="18-25")),
    # precedence: rape outranks the physical assault in the same message
    ("nó đánh tôi rồi hiếp dâm tôi", dict(gbv_type="rape")),
    ("bố mẹ ép em lấy chồng năm 15 tuổi", dict(gbv_type="forced_marriage", age_group="12-17")),
    ("chồng không cho tôi tiền, giữ hết lương", dict(gbv_type="denial_of_resources")),
    ("em là học sinh lớp 8, bị bạn bắt nạt", dict(gbv_type="psychological_abuse", reporter="student",
                                                  age_group="12-17")),
    ("tôi là giáo viên, học sinh lớp tôi bị bố đánh", dict(reporter="professional", gbv_type="physical_assault")),
    ("phường Hội An Tây có chỗ nào giúp không", dict(locality="phường Hội An Tây", former_district="hoi_an")),
])
def test_profile_labels(text, expected):
    p = profile(text, "domestic_violence", "medium")
    for key, value in expected.items():
        assert getattr(p, key) == value, (key, p)


def test_profile_of_a_question_is_not_a_disclosure():
    assert profile("luật phòng chống bạo lực gia đình phạt bao nhiêu", "legal_aid", "none").gbv_type == "non_gbv"
    assert profile("chồng tôi hay chửi tôi", "domestic_violence", "medium").sex == "unknown"   # never guessed


# --- suppression ---------------------------------------------------------------------------------

def _numeric(v):
    return isinstance(v, int)


def test_primary_and_complementary_suppression():
    assert suppress_line([3, 0, 10, 20], 33) == (["<5", 0, HIDDEN, 20], 33)
    assert suppress_line([2, 1], 3) == (["<5", "<5"], "<5")
    assert suppress_line([7, 9], 16) == ([7, 9], 16)
    assert percent(40, 40) == 100.0 and percent(3, 40) == MASK and percent(38, 40) == MASK and percent(0, 0) is None


def test_no_suppressed_cell_can_be_recovered_by_differencing():
    rng = random.Random(7)
    for _ in range(500):
        r, c = rng.randint(1, 5), rng.randint(1, 6)
        cells = [[rng.choice([0, 0, 1, 2, 3, 4, 5, 8, 20, 60]) for _ in range(c)] for _ in range(r)]
        rows_t = [sum(x) for x in cells]
        cols_t = [sum(cells[i][j] for i in range(r)) for j in range(c)]
        out, rt, ct, grand = suppress_table(cells, rows_t, cols_t)
        for i in range(r):
            for j in range(c):
                v = out[i][j]
                assert not (_numeric(v) and 0 < v < 5)          # no small count is ever shown
                if not _numeric(v):
                    assert cells[i][j] > 0
        lines = [(out[i], rt[i]) for i in range(r)] + [([out[i][j] for i in range(r)], ct[j]) for j in range(c)]
        lines += [(rt, grand), (ct, grand)]                     # the totals themselves add up to the grand total
        for line, total in lines:
            if _numeric(total):
                hidden = [v for v in line if not _numeric(v)]
                assert len(hidden) != 1, (cells, out)           # one hidden cell = total minus the rest


# --- episodes through the pipeline ---------------------------------------------------------------

def tg(chat, text, update_id):
    return {"update_id": update_id, "message": {"message_id": update_id, "date": int(time.time()),
            "chat": {"id": chat, "type": "private"}, "from": {"id": chat, "is_bot": False, "first_name": "A"},
            "text": text}}


def test_a_danger_message_becomes_one_anonymous_episode(client, gw):
    secret = "Chồng tôi đánh tôi chảy máu ở Núi Thành, số nhà 45"
    post_telegram(client, tg(7001234, secret, 1))
    post_telegram(client, tg(7001234, "tôi 30 tuổi", 2))
    settle(gw)
    (ep,) = rows(gw, Episode)
    assert (ep.gbv_type, ep.risk, ep.former_district, ep.channel, ep.needed_help, ep.age_group) == (
        "physical_assault", "high", "nui_thanh", "telegram", True, "26-40")
    assert ep.first_day == E.local_day(time.time()) and isinstance(ep.first_day, dt.date)
    (contact,) = rows(gw, Contact)
    assert ep.person != contact.pseudonym and len(ep.person) == 32
    with transaction(gw.Session) as s:
        dump = json.dumps([[str(getattr(r, c.name)) for c in Episode.__table__.columns]
                           for r in s.execute(select(Episode)).scalars()], ensure_ascii=False)
    assert "7001234" not in dump and "45" not in dump.replace(ep.person, "") and "đánh" not in dump


def test_a_person_is_one_per_year_and_cannot_be_linked_across_years(quiet):
    gw = quiet
    conv = pipeline.receive(gw, Inbound("web", "sess-a", "m1", text="x")).conversation_id
    jan = dt.datetime(2026, 1, 10, 12, tzinfo=dt.timezone.utc).timestamp()
    E.record_message(gw, conv, "chồng đánh tôi", "medium", "domestic_violence", at=jan)
    E.record_message(gw, conv, "chồng đánh tôi", "medium", "domestic_violence", at=jan + 86400 * 40)   # February
    E.record_message(gw, conv, "chồng đánh tôi", "medium", "domestic_violence", at=jan + 86400 * 365)  # next year
    eps = rows(gw, Episode)
    assert [(e.year, e.month) for e in eps] == [(2026, 1), (2026, 2), (2027, 1)]
    assert eps[0].person == eps[1].person != eps[2].person
    assert E.close_year(gw, 2026) and not E.close_year(gw, 2026)
    assert rows(gw, StatYearKey, StatYearKey.year == 2026)[0].salt is None
    E.record_message(gw, conv, "chồng đánh tôi", "medium", "domestic_violence", at=jan + 86400 * 100)
    assert len(rows(gw, Episode)) == 3                                     # a closed year records nothing




# --- indicators on synthetic data -----------------------------------------------------------------

def synthetic(gw, year=2026):
    """Known answers: 20 survivors (12 sought help), 6 witnesses, 10 persons needed help (5
    helped), 4 refused to be counted, 5 information-only persons; one survivor in 2 months."""
    n = itertools.count()
    rows_ = []

    def add(month=3, **kw):
        base = dict(person=f"p{next(n):04d}", year=year, month=month, first_day=dt.date(year, month, 2),
                    last_day=dt.date(year, month, 2), channel="sms", gbv_type="physical_assault", reporter="survivor",
                    age_group="26-40", sex="unknown", risk="medium", sought_help=False, needed_help=False,
                    helped=None, consent="not_asked", former_district="tam_ky")
        base.update(kw)
        rows_.append(Episode(**base))
        return base["person"]

    for i in range(20):
        needed = i < 10
        add(sought_help=i < 12, needed_help=needed, helped=(i < 5) if needed else None,
            gbv_type="rape" if i < 3 else "psychological_abuse" if i < 10 else "physical_assault",
            former_district="nui_thanh" if i < 8 else "tam_ky")
    for _ in range(6):
        add(reporter="witness_relative")
    for _ in range(4):
        add(consent="no", sought_help=True)
    for _ in range(5):
        add(gbv_type="non_gbv", reporter="unknown", risk="none")
    again = rows_[0].person
    rows_.append(Episode(**{**{c.name: getattr(rows_[0], c.name) for c in Episode.__table__.columns if c.name != "id"},
                            "month": 7, "first_day": dt.date(year, 7, 1), "last_day": dt.date(year, 7, 1),
                            "person": again}))
    with transaction(gw.Session) as s:
        s.add_all(rows_)
    rebuild(gw, year)


def rebuild(gw, year=2026):
    """Episodes written straight into the table (not through ``record_message``): the counts
    the reports read are recomputed from them, as after a bulk import."""
    from webhook.stats import cube

    with transaction(gw.Session) as s:
        cube.rebuild(s, year)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_indicators_d_and_dd_on_known_data(make_app, request, database):
    over = {"database_url": request.getfixturevalue("pg_url")} if database == "postgresql" else {}
    gw = make_app(run_dispatcher=False, **over).extensions["helpline"]
    synthetic(gw)
    with transaction(gw.Session) as s:
        ind = R.indicators(s, 2026)
        q3 = R.indicators(s, 2026, (7, 9))
        by_type = dict(R.breakdown(s, 2026, "gbv_type"))
        months = R.by_period(s, 2026, "month")
        quarters = R.by_period(s, 2026, "quarter")
    assert (ind.survivors, ind.sought, ind.needed, ind.helped, ind.others, ind.persons) == (20, 12, 10, 5, 6, 31)
    assert ind.d == 60.0 and ind.dd == 50.0
    assert (q3.persons, q3.survivors, q3.sought) == (1, 1, 1) and q3.d == MASK
    assert by_type == {"rape": 3, "psychological_abuse": 7, "physical_assault": 16, "non_gbv": 5}
    assert months == [(3, 31), (7, 1)] and quarters == [(1, 31), (3, 1)]     # refusals left out
    t = R.table(gw, 2026, "former_district")
    assert t.rows == [["Núi Thành", 8], ["Tam Kỳ", 23]] and t.total == ["total", 31]
    it = R.indicator_table(gw, 2026)
    assert it.rows[0] == ["year", 20, 12, 60.0, 10, 5, 50.0]
    assert it.rows[3] == ["3", "<5", "<5", MASK, "<5", "<5", MASK]          # one person: nothing shown
    assert it.rows[2] == ["2", 0, 0, None, 0, 0, None]
    assert R.locality_table(gw, 2026).total[:3] == ["total", 31, 20]
    assert "Núi Thành" in _xml_texts(R.yearly_docx(gw, 2026))           # the whole yearly report runs here too


def test_statistics_tables_and_exports_hold_no_phone_number_id_or_text(client, gw, fakes):
    from tests.webhook.conftest import post_sms
    from webhook.stats import export

    phone, chat = "+84905123456", 7009876
    secrets_ = ["Chồng tôi đánh tôi chảy máu ở Núi Thành", "bố em 45 tuổi hay đánh em, em 12 tuổi, lớp 7"]
    post_sms(client, fakes, {"From": phone, "To": "+15005550006", "Body": secrets_[0], "MessageSid": "SM" + "a" * 32,
                             "AccountSid": "{account_sid}"})
    post_telegram(client, tg(chat, secrets_[1], 31))
    settle(gw)
    assert len(rows(gw, Episode)) == 2
    year = dt.date.today().year
    tables = [R.indicator_table(gw, year), R.indicator_table(gw, year, "month")]
    tables += [R.table(gw, year, by) for by in R.DIMENSIONS] + [R.cross(gw, year, "gbv_type", "month")]
    blob = "\n".join(fmt(t) for t in tables for fmt in export.FORMATS.values())
    with transaction(gw.Session) as s:
        blob += json.dumps([[str(getattr(r, c.name)) for c in Episode.__table__.columns]
                            for r in s.execute(select(Episode)).scalars()], ensure_ascii=False)
    for needle in (phone, phone[3:], "905123456", str(chat), "đánh", "danh", "chảy máu", "45 tuổi", "lop 7"):
        assert needle not in blob, needle
    assert "<5" in blob                          # two persons: every count that is not 0 is suppressed


def test_stats_command(tmp_path, monkeypatch, capsys):
    from bot.cli import main

    monkeypatch.setenv("HELPLINE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("HELPLINE_SECRET_KEY", "k" * 40)
    assert main(["stats", "indicators", "--year", "2026", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "quarter,survivors,sought help,d (per cent),needed help,helped,đ (per cent)"
    assert main(["stats", "table", "--by", "nonsense"]) == 2
    assert main(["stats", "close-year", "--year", "2021"]) == 0 and "closed" in capsys.readouterr().out
    assert main(["stats", "export", "--year", "2026", "--out", str(tmp_path / "r.docx")]) == 0
    assert main(["stats", "export", "--year", "2026", "--out", str(tmp_path / "r.xlsx")]) == 0
    assert (tmp_path / "r.docx").read_bytes()[:2] == b"PK" and (tmp_path / "r.xlsx").read_bytes()[:2] == b"PK"
    assert main(["stats", "export", "--year", "2026", "--out", str(tmp_path / "r.pdf")]) == 2


# --- exports, incidents and the console pages ------------------------------------------------------

def _xml_texts(blob: bytes) -> str:
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        return "".join(z.read(n).decode() for n in z.namelist())


def test_xlsx_and_docx_are_valid_packages_with_the_suppressed_tables(quiet):
    import xml.dom.minidom
    import zipfile
    import io

    from webhook.stats import export

    gw = quiet
    synthetic(gw)
    tables = R.yearly_tables(gw, 2026)
    xlsx = export.to_xlsx(tables)
    with zipfile.ZipFile(io.BytesIO(xlsx)) as z:
        names = z.namelist()
        assert "[Content_Types].xml" in names and "xl/workbook.xml" in names
        assert sum(n.startswith("xl/worksheets/sheet") for n in names) == len(tables)
        for n in names:
            xml.dom.minidom.parseString(z.read(n))                   # every part is well-formed XML
    docx = R.yearly_docx(gw, 2026)
    with zipfile.ZipFile(io.BytesIO(docx)) as z:
        xml.dom.minidom.parseString(z.read("word/document.xml"))
    text = _xml_texts(docx)
    assert "Báo cáo năm 2026" in text and "2232/QĐ-TTg" in text and "Núi Thành" in text and ">60.0<" in text
    loc = R.locality_table(gw, 2026)
    # 8 survivors in Núi Thành all sought help, 4 of 12 in Tam Kỳ: the 4 is "<5", so the 8 is hidden too
    assert loc.rows[0][:4] == ["Núi Thành", 8, 8, "x"] and loc.rows[1][3] == "<5" and loc.total[1] == 31
    assert loc.rows[0][4] == MASK          # 100% of 8 would give the hidden "8 sought help" back


def test_serious_incidents_are_tracked_with_their_deadline(client, gw):
    from webhook.stats import incidents

    post_telegram(client, tg(7005555, "tôi muốn tự tử ngay bây giờ", 41))
    settle(gw)
    (inc,) = incidents.pending(gw)
    assert (inc.due_day - inc.opened_day).days == 10 and not inc.drafted
    text = _xml_texts(incidents.draft(gw, inc.case_id, "hoa", "Sở Y tế"))
    assert "Sở Y tế" in text and "imminent" in text and "tự tử" not in text and "7005555" not in text
    assert incidents.submit(gw, inc.case_id, "hoa") and not incidents.submit(gw, inc.case_id, "hoa")
    assert incidents.pending(gw) == []
    late = incidents.pending(gw, today=inc.due_day + dt.timedelta(days=3), include_submitted=True)
    assert late[0].days_left == -3 and late[0].submitted


def test_console_statistics_pages_are_for_supervisors_and_exports_are_audited(make_app, tmp_path):
    import re as re_

    from tests.webhook.test_console import PASSWORD, login
    from webhook.console import auth
    from webhook.models import Event

    app = make_app(run_dispatcher=False)
    gw = app.extensions["helpline"]
    synthetic(gw, year=2026)
    auth.create_staff(gw, "lan", PASSWORD, "counsellor")
    auth.create_staff(gw, "hoa", PASSWORD, "supervisor")
    assert login(app, "lan").get("/console/stats?year=2026").status_code == 403
    hoa = login(app, "hoa")
    page = hoa.get("/console/stats?year=2026&by=former_district").get_data(as_text=True)
    assert "Chỉ số d và đ" in page and "60.0%" in page and "Núi Thành" in page
    svg = hoa.get("/console/stats/chart/trend.svg?year=2026")
    assert svg.mimetype == "image/svg+xml" and svg.get_data(as_text=True).startswith("<svg")
    assert "<script" not in svg.get_data(as_text=True)
    for fmt in ("csv", "xlsx", "docx"):
        resp = hoa.get(f"/console/stats/export.{fmt}?year=2026")
        assert resp.status_code == 200 and "attachment" in resp.headers["Content-Disposition"]
    assert [e.detail for e in rows(gw, Event) if e.action == "export"] == [
        "stats csv year=2026", "stats xlsx year=2026", "stats docx year=2026"]
    assert not re_.search(r"\b[1-4]\b", hoa.get("/console/stats/export.csv?year=2026&by=age_group").get_data(as_text=True))


def test_a_published_share_never_gives_a_hidden_count_back(quiet):
    """On random data: wherever d or đ is shown as a number, the two counts it divides are shown."""
    rng = random.Random(3)
    eps = []
    for i in range(400):
        needed = rng.random() < 0.4
        eps.append(Episode(person=f"r{i:04d}", year=2026, month=rng.randint(1, 12), first_day=dt.date(2026, 1, 1),
                           last_day=dt.date(2026, 1, 1), channel="sms", gbv_type=rng.choice(["rape", "physical_assault",
                                                                                            "non_gbv"]),
                           reporter=rng.choice(["survivor", "parent"]), age_group="unknown", sex="unknown", risk="medium",
                           sought_help=rng.random() < 0.5, needed_help=needed, helped=rng.random() < 0.7 if needed else None,
                           consent="not_asked", former_district=rng.choice(["tam_ky", "hoi_an", "nui_thanh", "dai_loc",
                                                                           "tay_giang"])))
    with transaction(quiet.Session) as s:
        s.add_all(eps)
    rebuild(quiet)
    for t, pairs in ((R.locality_table(quiet, 2026), ((3, 2, 4), (6, 5, 7))),
                     (R.indicator_table(quiet, 2026, "month"), ((2, 1, 3), (5, 4, 6)))):
        for row in [r for r in t.rows + [t.total] if r]:
            for num, den, share in pairs:
                if isinstance(row[share], float):
                    assert isinstance(row[num], int) and isinstance(row[den], int), (t.title, row)


def test_a_long_statistics_read_never_holds_up_a_message(quiet):
    """The yearly report reads for seconds; on SQLite a transaction used to take the write lock
    (in the process and BEGIN IMMEDIATE in the file) for all that time. ``db.reading`` takes
    neither: a message is stored while the report's read transaction is open."""
    import threading

    from webhook.db import reading

    gw = quiet
    synthetic(gw)
    stored = threading.Event()
    with reading(gw.Session) as s:
        assert R.indicators(s, 2026).persons == 31                    # the read transaction is open
        t = threading.Thread(target=lambda: (pipeline.receive(gw, Inbound("web", "sess-w", "w1", text="cứu tôi")),
                                              stored.set()))
        t.start()
        assert stored.wait(5), "a message waited for the statistics read"
        assert R.indicators(s, 2026).persons == 31
    t.join()


# --- the kept counts (webhook/stats/cube.py) ------------------------------------------------------

TEXTS = ["chồng tôi đánh tôi ở Núi Thành", "toi bi hiep dam, toi la nu 22 tuoi", "em là học sinh lớp 8, bị bạn bắt nạt",
         "con gái tôi 13 tuổi bị thầy giáo sàm sỡ", "luật phòng chống bạo lực gia đình phạt bao nhiêu",
         "phường Hội An Tây có chỗ nào giúp không", "chồng không cho tôi tiền", "tôi là nam 45 tuổi, vợ chửi tôi",
         "bố mẹ ép em lấy chồng năm 15 tuổi ở Tây Giang", "xin chào"]


def _random_writes(gw, rng, persons=12, writes=150, year=2026):
    """Messages and case facts in random order, over the months of a year, for a few persons."""
    from webhook.models import Case

    convs = [pipeline.receive(gw, Inbound(rng.choice(["web", "telegram", "sms"]), f"cube-{i}", f"c{i}",
                                          text="x")).conversation_id for i in range(persons)]
    start = dt.datetime(year, 1, 1, 3, tzinfo=dt.timezone.utc).timestamp()
    for _ in range(writes):
        conv, at = rng.choice(convs), start + rng.randrange(360) * 86400
        if rng.random() < 0.7:
            E.record_message(gw, conv, rng.choice(TEXTS), rng.choice(["none", "low", "medium", "high", "imminent"]),
                             rng.choice(["domestic_violence", "legal_aid", None]), at=at)
            continue
        with transaction(gw.Session) as s:
            case = Case(conversation_id=conv, risk="high", source="rules", created_at=at, updated_at=at)
            s.add(case)
            s.flush()
            case_id = case.id
        E.mark_case(gw, case_id, **rng.choice([dict(needed_help=True), dict(sought_help=True), dict(helped=True),
                                               dict(helped=False), dict(consent="no"), dict(consent="yes"),
                                               dict(gbv_type="rape"), dict(risk="imminent")]))
    return convs


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_the_kept_counts_equal_a_fresh_computation_after_random_writes(make_app, request, database):
    """Every write adds the change of its person's summaries to ``stat_counts``; after 150 random
    messages and case facts (new months, consent withdrawn and given again, types and risks
    raised) the kept counts are exactly what grouping the episodes by person gives."""
    from webhook.stats import cube

    over = {"database_url": request.getfixturevalue("pg_url")} if database == "postgresql" else {}
    gw = make_app(run_dispatcher=False, **over).extensions["helpline"]
    _random_writes(gw, random.Random(11))
    with transaction(gw.Session) as s:
        assert cube.check(s, 2026) == []
        kept = cube.stored(s, 2026)
        assert kept[("year", 0, "", "")][0] >= 5                   # the writes made persons to count
        assert {k for k, _p, _d, _v in kept} == {"year", "quarter", "month"}
        cube.rebuild(s, 2026)
        assert cube.stored(s, 2026) == kept
    # the published tables read the kept counts: the same as the reference computed from episodes
    with transaction(gw.Session) as s:
        ref = R.indicators(s, 2026)
        assert dict(R.breakdown(s, 2026, "gbv_type")) == {k: v[0] for k, v in R.Stats(gw, 2026).counts(None).values("gbv_type")}
    got = R.Stats(gw, 2026).counts(None).indicators()
    assert (got.persons, got.survivors, got.sought, got.needed, got.helped, got.others) == (
        ref.persons, ref.survivors, ref.sought, ref.needed, ref.helped, ref.others)


def test_concurrent_writes_for_the_same_persons_keep_the_counts_exact(make_app, pg_url):
    """Two messages of one person folded at the same time on PostgreSQL: the person's episodes
    are locked while their summaries are compared, so no change is counted twice or lost."""
    import threading

    from webhook.stats import cube

    gw = make_app(run_dispatcher=False, database_url=pg_url).extensions["helpline"]
    convs = [pipeline.receive(gw, Inbound("web", f"race-{i}", f"r{i}", text="x")).conversation_id for i in range(3)]
    start = dt.datetime(2026, 3, 1, 3, tzinfo=dt.timezone.utc).timestamp()
    errors = []

    def writer(seed):
        rng = random.Random(seed)
        try:
            for _ in range(40):
                E.record_message(gw, rng.choice(convs), rng.choice(TEXTS), rng.choice(["low", "high", "imminent"]),
                                 "domestic_violence", at=start + rng.randrange(90) * 86400)
        except Exception as exc:            # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with transaction(gw.Session) as s:
        assert cube.check(s, 2026) == []
        assert cube.stored(s, 2026)[("year", 0, "", "")][0] == 3


def test_stats_rebuild_and_check_commands(quiet, monkeypatch, capsys):
    from bot import cli
    from webhook.models import StatCount

    synthetic(quiet)
    monkeypatch.setenv("HELPLINE_DATABASE_URL", quiet.settings.database_url)
    assert cli.main(["stats", "check"]) == 0
    assert "2026: agrees with the episodes" in capsys.readouterr().out
    with transaction(quiet.Session) as s:                                  # a count goes wrong
        row = s.get(StatCount, (2026, "year", 0, "", ""))
        row.persons += 1
    assert cli.main(["stats", "check", "--year", "2026"]) == 1
    assert "1 cells differ" in capsys.readouterr().out
    assert cli.main(["stats", "rebuild"]) == 0
    assert cli.main(["stats", "check"]) == 0
