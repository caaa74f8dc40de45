"""The knowledge base in the gateway: supervisors see what is unverified and record checks
(audited, in effect at once), the action server reads the checks through the API, a person's
request to see their data gets its legal deadlines and a case, and the statistics show a target
only while a plan in force sets one."""
import datetime as dt
import re
import time

import pytest
import sqlalchemy as sa

from tests.webhook.conftest import API_TOKEN, post_telegram, rows, settle
from tests.webhook.test_console import PASSWORD, csrf, login
from webhook import data_requests, pipeline
from webhook.channels.base import Inbound
from webhook.console import auth
from webhook.db import transaction
from webhook.models import Case, DataRequest, Event, KbCheck


@pytest.fixture
def console(make_app, fakes, tmp_path):
    app = make_app()
    gw = app.extensions["helpline"]
    gw.spool.dir = tmp_path / "spool"
    for name, role in (("lan", "counsellor"), ("hoa", "supervisor")):
        auth.create_staff(gw, name, PASSWORD, role, name.title())
    return app, gw


def test_supervisors_see_every_unverified_item_and_the_lines_state(console):
    app, _gw = console
    assert login(app, "lan").get("/console/kb").status_code == 403          # counsellors do not
    html = login(app, "hoa").get("/console/kb").get_data(as_text=True)
    assert "1800 1581" in html and "Not offered in replies" in html or "Không đưa vào câu trả lời" in html
    assert "social_work_center" in html and "dv_definition" in html          # an unverified fact, with its note
    assert "decree_13_consent" in html and "pdpl_consent" in html            # kept for history, with its successor
    assert 'id="kb-errors"' not in html                                      # no reply states an expired fact


def test_a_check_recorded_in_the_console_takes_effect_at_once_and_is_audited(console):
    app, gw = console
    hoa = login(app, "hoa")
    token = csrf(hoa)
    form = {"csrf": token, "kind": "service", "item_id": "social_work_center", "checked_on": dt.date.today().isoformat(),
            "result": "confirmed", "hours": "mon-fri 07:30-11:30,13:30-17:00", "note": "called, a counsellor answered"}
    assert hoa.post("/console/kb/check", data=form).status_code == 302
    assert gw.kb.line().usable and gw.kb.line().hours == "mon-fri 07:30-11:30,13:30-17:00"
    html = hoa.get("/console/kb").get_data(as_text=True)
    assert "T2-T6 7:30-11:30, 13:30-17:00" in html
    with transaction(gw.Session) as s:
        (check,) = s.execute(sa.select(KbCheck)).scalars().all()
        assert (check.staff, check.result, check.note) == ("hoa", "confirmed", "called, a counsellor answered")
        assert s.execute(sa.select(Event).where(Event.action == "kb_checked", Event.actor == "hoa")).first()
    # bad input is refused, and nothing is recorded
    for bad in ({"item_id": "no_such_service"}, {"result": "maybe"}, {"checked_on": "2099-01-01"},
                {"checked_on": "7/12/2026"}, {"hours": "every day"}):
        assert hoa.post("/console/kb/check", data={**form, **bad}).status_code == 400, bad
    assert hoa.post("/console/kb/check", data={**form, "csrf": "wrong"}).status_code == 403
    assert len(rows(gw, KbCheck)) == 1


def test_the_action_server_reads_the_checks_with_its_token_only(console):
    app, gw = console
    client = app.test_client()
    assert client.get("/api/v1/kb/checks").status_code == 403
    assert client.get("/api/v1/kb/checks", headers={"Authorization": "Bearer wrong"}).status_code == 403
    from webhook.kbstate import record_check
    record_check(gw, "place", "xã Gò Nổi|peoples_committee|UBND xã Gò Nổi", dt.date(2026, 12, 1), "confirmed", "hoa")
    resp = client.get("/api/v1/kb/checks", headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    assert resp.get_json() == {"checks": [{"kind": "place", "item_id": "xã Gò Nổi|peoples_committee|UBND xã Gò Nổi",
                                           "checked_on": "2026-12-01", "result": "confirmed", "hours": None}]}


def test_canned_responses_show_the_line_only_while_verified(console):
    app, gw = console
    case = _danger_case(app, gw, 5570001)
    lan = login(app, "lan")
    html = lan.get(f"/console/cases/{case.id}").get_data(as_text=True)
    assert "[[line:" not in html and "1800 1581" not in html and "mua bán người (mọi lứa tuổi): gọi 111" in html
    from webhook.kbstate import record_check
    record_check(gw, "service", "social_work_center", dt.date.today(), "confirmed", "hoa", hours="24/7")
    assert "Trung tâm Công tác xã hội: 1800 1581 (24/7)." in lan.get(f"/console/cases/{case.id}").get_data(as_text=True)


def _danger_case(app, gw, chat_id):
    update = {"update_id": chat_id, "message": {"message_id": 1, "date": int(time.time()),
                                                "chat": {"id": chat_id, "type": "private"},
                                                "from": {"id": chat_id, "is_bot": False, "first_name": "A"},
                                                "text": "chồng tôi đang cầm dao dọa giết tôi"}}
    assert post_telegram(app.test_client(), update).status_code == 200
    settle(gw)
    return [c for c in rows(gw, Case) if c.status != "closed"][-1]


# --- a person's request to see their data ------------------------------------------------------------

def _write(gw, chat: int, update_id: int, text: str):
    got = pipeline.receive(gw, Inbound("telegram", str(chat), f"t-{update_id}", text=text))
    gw.submit(got.conversation_id)
    settle(gw)
    return got


def test_deadlines_are_two_working_days_and_ten_days():
    tz = dt.timezone(dt.timedelta(hours=7))
    friday = dt.datetime(2026, 12, 4, 16, 0, tzinfo=tz).timestamp()
    reply_due, due = data_requests.deadlines(friday)
    assert dt.datetime.fromtimestamp(reply_due, tz).date() == dt.date(2026, 12, 8)      # Mon, Tue
    assert dt.datetime.fromtimestamp(due, tz).date() == dt.date(2026, 12, 14)
    reply_due, _due = data_requests.deadlines(friday, holidays="2026-12-07")
    assert dt.datetime.fromtimestamp(reply_due, tz).date() == dt.date(2026, 12, 9)      # a holiday does not count


@pytest.mark.parametrize("text", ["XEM DU LIEU", "xem dữ liệu của tôi", "  xin ban sao du lieu "])
def test_asking_for_ones_data_gets_the_deadlines_and_a_case_once(console, fakes, text):
    app, gw = console
    got = _write(gw, 5580001, 1, text)
    sent = [m["text"] for m in fakes["telegram"].sent if m["chat_id"] == 5580001]
    assert sent == ["Mình đã nhận yêu cầu xem dữ liệu của bạn. Tư vấn viên sẽ nhắn cho bạn ở đây trong 2 ngày làm việc "
                    "để xác nhận, và gửi bản sao trong 10 ngày, theo cách an toàn bạn chọn."]
    (req,) = rows(gw, DataRequest)
    (case,) = rows(gw, Case)
    assert (req.state, req.kind, req.case_id, case.reason, case.requested) == ("open", "access", case.id, "data_access", True)
    assert req.due - req.asked_at <= 11 * 86400 and req.reply_due > req.asked_at
    _write(gw, 5580001, 2, text)               # asking again: the same request
    assert len(rows(gw, DataRequest)) == 1 and len(rows(gw, Case)) == 1
    assert got.conversation_id == case.conversation_id


def test_a_sentence_about_data_is_not_a_request():
    assert not data_requests.is_request("em muốn xem dữ liệu của bạn trai em trên điện thoại")
    assert data_requests.is_request("Xem dữ liệu của tôi")


def test_the_request_shows_on_the_case_page_and_a_supervisor_closes_it(console, fakes):
    app, gw = console
    _write(gw, 5580002, 3, "XEM DU LIEU")
    (case,) = rows(gw, Case)
    hoa = login(app, "hoa")
    html = hoa.get(f"/console/cases/{case.id}").get_data(as_text=True)
    assert 'id="data-request"' in html and "Nghị định 356/2025, Điều 5" in html
    (req,) = rows(gw, DataRequest)
    token = csrf(hoa)
    assert login(app, "lan").post(f"/console/cases/{case.id}/data-request",
                                  data={"csrf": token, "request_id": req.id, "state": "done"}).status_code in (403, 401)
    assert hoa.post(f"/console/cases/{case.id}/data-request",
                    data={"csrf": token, "request_id": req.id, "state": "replied"}).status_code == 302
    assert hoa.post(f"/console/cases/{case.id}/data-request",
                    data={"csrf": token, "request_id": req.id, "state": "done"}).status_code == 302
    (req,) = rows(gw, DataRequest)
    assert req.state == "done" and req.actor == "hoa" and req.done_at >= req.replied_at
    assert hoa.post(f"/console/cases/{case.id}/data-request",
                    data={"csrf": token, "request_id": req.id, "state": "done"}).status_code == 400
    assert data_requests.overdue(gw) == []
    with transaction(gw.Session) as s:
        actions = [e.action for e in s.execute(sa.select(Event).where(Event.case_id == case.id)).scalars()]
    assert {"data_request", "data_request_replied", "data_request_done"} <= set(actions)


def test_a_late_request_is_listed_as_overdue(console):
    _app, gw = console
    _write(gw, 5580003, 4, "XEM DU LIEU")
    (req,) = rows(gw, DataRequest)
    assert data_requests.overdue(gw, now=req.asked_at + 60) == []
    assert [r.id for r in data_requests.overdue(gw, now=req.reply_due + 1)] == [req.id]


# --- statistics ----------------------------------------------------------------------------------------

def test_the_statistics_page_claims_no_target_for_a_year_no_plan_covers(console):
    app, _gw = console
    hoa = login(app, "hoa")
    later = hoa.get("/console/stats?year=2026").get_data(as_text=True)
    assert "không có chương trình hay kế hoạch đang có hiệu lực" in later
    chart = hoa.get("/console/stats/chart/trend.svg?year=2026").get_data(as_text=True)
    assert "d ≥" not in chart and "đ =" not in chart
    earlier = hoa.get("/console/stats?year=2025").get_data(as_text=True)
    assert re.search(r"ít nhất 50%.*2232/QĐ-TTg", earlier)
    assert "d ≥ 50%" in hoa.get("/console/stats/chart/trend.svg?year=2025").get_data(as_text=True)


def test_the_migration_moves_old_canned_texts_to_the_line_marker(tmp_path):
    from webhook.db import make_engine, upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0007")
    engine = make_engine(url)
    old = ("Cảm ơn bạn đã tin tưởng chia sẻ. Bạn có thể nhắn lại đây bất cứ lúc nào. Khi nguy hiểm, hãy gọi 113; "
           "Trung tâm Công tác xã hội: 1800 1581.")
    with engine.begin() as c:
        c.execute(sa.text("insert into canned_responses (key, title, body, updated_at) values ('closing', 't', :b, 0)"),
                  {"b": old})
    upgrade(url)
    with engine.begin() as c:
        body = c.execute(sa.text("select body from canned_responses")).scalar_one()
    engine.dispose()
    assert body.endswith("hãy gọi 113.[[line: Trung tâm Công tác xã hội: @line (@hours).]]") and "1800" not in body
