"""Campaign broadcasts (issue 6): subscription keywords and consent records, opt-outs from the
person and from the providers, campaigns (approval by another supervisor, the action-month
calendar, segments, idempotent planning), the bulk lane (send window, safe hours, do-not-contact,
the daily cap, Zalo's window, pacing) and exactly-once sending across a worker that dies in the
middle of a provider call."""
from __future__ import annotations

import datetime as dt
import itertools
import json
import re

import pytest

from tests.webhook.conftest import post_sms, post_telegram, rows, settle
from webhook import pipeline
from webhook.broadcast import calendar, campaigns as C, content, sender
from webhook.broadcast import subscribers as SUB
from webhook.broadcast.keywords import parse
from webhook.channels.base import Inbound
from webhook.db import transaction
from webhook.hours import TZ
from webhook.models import CampaignSend, ConsentRecord, Contact, Subscriber

_ids = itertools.count(1)


def at(y, mo, d, h=10, mi=0) -> float:
    """A Vietnam local time as a timestamp (the clock the tests freeze)."""
    return dt.datetime(y, mo, d, h, mi, tzinfo=TZ).timestamp()


NOV = at(2026, 11, 26, 10)         # inside the 15/11-15/12 action month, 10:00


def tg(chat, text, update_id):
    return {"update_id": update_id, "message": {"message_id": update_id, "date": 1_790_000_000,
            "chat": {"id": chat, "type": "private"}, "from": {"id": chat, "is_bot": False, "first_name": "A"},
            "text": text}}


# --- keywords ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,action,extra", [
    ("DK", "opt_in", {"audience": "public"}), ("ĐĂNG KÝ", "opt_in", {}), ("dang ki", "opt_in", {}),
    ("Đk hs!", "opt_in", {"audience": "student"}), ("DANG KY SINH VIEN", "opt_in", {"audience": "student"}),
    ("dk Tam Kỳ", "opt_in", {"locality": "tam_ky"}), ("DK EN", "opt_in", {"language": "en"}),
    ("đăng ký học sinh Núi Thành", "opt_in", {"audience": "student", "locality": "nui_thanh"}),
    ("HUY", "opt_out", {}), ("Hủy", "opt_out", {}), ("hủy.", "opt_out", {}), ("STOP", "opt_out", {}),
    ("stop", "opt_out", {}), ("TỪ CHỐI", "opt_out", {}), ("tu choi", "opt_out", {}), ("Ngừng nhận tin", "opt_out", {}),
    ("CÓ", "confirm", {}), ("đồng ý", "confirm", {}), ("GIỜ 19-21", "safe_hours", {"hours": (19, 21)}),
    ("gio 7h-9h", "safe_hours", {"hours": (7, 9)}), ("giờ 21 đến 6", "safe_hours", {"hours": (21, 6)}),
    ("GIO BAT KY", "safe_clear", {}), ("KLL", "pause", {}), ("không liên lạc", "pause", {}),
    ("liên lạc lại", "resume", {}), ("TIEP TUC NHAN TIN", "resume", {}), ("dừng nhắn tin", "opt_out", {}),
])
def test_keyword_variants(text, action, extra):
    cmd = parse(text)
    assert cmd is not None and cmd.action == action, (text, cmd)
    for key, value in extra.items():
        assert getattr(cmd, key) == value, (text, cmd)


@pytest.mark.parametrize("text", ["đăng ký khám thai ở đâu", "hủy vé xe", "dk tra my", "gio 25-3", "chồng tôi đánh tôi",
                                  "stop it please he hits me", "", "   ", "x" * 500,
                                  # a district alone after DK is a segment; more words make it a message
                                  "DK hoc sinh bi danh o Tam Ky", "dk tam ky chong toi danh toi",
                                  "đăng ký khám thai ở Tam Kỳ", "đăng ký kết hôn ở Điện Bàn được không",
                                  # without accents "đúng" (yes), "đừng" (don't) and "dùng" are all "dung"
                                  "Đúng", "đừng", "Dùng", "tiếp tục", "tạm dừng"])
def test_sentences_that_contain_a_keyword_are_not_commands(text):
    assert parse(text) is None


# --- subscribing ------------------------------------------------------------------------------------------

def _conv(gw, channel="telegram", address=None):
    address = address or {"telegram": str(7_100_000 + next(_ids)), "sms": f"+8490{next(_ids):07d}",
                           "zalo": f"zu{next(_ids)}", "web": f"web-{next(_ids)}"}[channel]
    return pipeline.receive(gw, Inbound(channel, address, f"p{next(_ids)}", text="xin chào")).conversation_id


def subscribe(gw, channel="telegram", text="DK", now=NOV):
    conv = _conv(gw, channel)
    assert SUB.handle(gw, conv, text, now=now - 60) is not None
    assert SUB.handle(gw, conv, "có", now=now - 30) is not None
    return conv




def test_opting_in_takes_the_consent_text_and_a_yes_both_recorded(client, gw, fakes):
    chat = 7_012_345
    post_telegram(client, tg(chat, "ĐĂNG KÝ HS", 1))
    settle(gw)
    consent_msg = fakes["telegram"].wait_for(1)[0]["text"]
    assert "CO" in consent_msg and "HUY" in consent_msg and "3" in consent_msg
    (sub,) = rows(gw, Subscriber)
    assert (sub.status, sub.audience) == ("pending", "student")
    post_telegram(client, tg(chat, "Có", 2))
    settle(gw)
    assert "HUY" in fakes["telegram"].wait_for(2)[1]["text"]
    (sub,) = rows(gw, Subscriber)
    assert sub.status == "subscribed" and sub.consent_version == content.CONSENT_VERSION and sub.self_opted_in
    records = rows(gw, ConsentRecord)
    assert [(r.action, r.channel, r.method, r.version) for r in records] == [
        ("asked", "telegram", "keyword", content.CONSENT_VERSION), ("opt_in", "telegram", "keyword", content.CONSENT_VERSION)]
    dump = json.dumps([[str(getattr(r, c.name)) for c in ConsentRecord.__table__.columns] for r in records])
    assert str(chat) not in dump and "ĐĂNG" not in dump                # labels only


def test_silence_is_not_consent_and_a_late_yes_is_the_bots(quiet):
    conv = _conv(quiet)
    SUB.handle(quiet, conv, "DK", now=NOV)
    assert SUB.handle(quiet, conv, "có", now=NOV + 25 * 3600) is None       # a day later: not an answer to DK
    (sub,) = rows(quiet, Subscriber)
    assert sub.status == "pending" and sub.consent_at is None
    assert SUB.handle(quiet, _conv(quiet), "có", now=NOV) is None           # never asked: the bot's turn


def test_consent_text_cannot_change_without_a_new_version():
    assert content.CONSENT_VERSIONS[content.CONSENT_VERSION] == content.consent_digest()


def test_huy_by_sms_unsubscribes_at_once_and_for_good(client, gw, fakes):
    number = "+84905550101"
    for i, text in enumerate(["DK", "CO"]):
        post_sms(client, fakes, fakes["twilio"].inbound_params(number, text, message_sid=f"SMa{i}"))
        settle(gw)
    assert rows(gw, Subscriber)[0].status == "subscribed"
    post_sms(client, fakes, fakes["twilio"].inbound_params(number, "Hủy", message_sid="SMa9"))
    settle(gw)
    (sub,) = rows(gw, Subscriber)
    assert sub.status == "unsubscribed" and sub.opt_out_reason == "keyword"
    assert rows(gw, Contact)[0].status == "stopped"
    replies = [m["body"] for m in fakes["twilio"].wait_for(3)]
    assert "113" in replies[-1] and all(ord(ch) < 128 for ch in replies[-1])   # SMS without diacritics
    # a campaign planned now leaves them out; a new DK + CO brings them back
    post_sms(client, fakes, fakes["twilio"].inbound_params(number, "xin chào", message_sid="SMa10"))
    settle(gw)
    assert rows(gw, Subscriber)[0].status == "unsubscribed"                  # writing again is not opting in


@pytest.mark.parametrize("how", ["twilio_21610_on_send", "twilio_21610_callback", "telegram_blocked", "zalo_unfollow"])
def test_the_providers_opt_outs_unsubscribe(client, gw, fakes, how):
    channel = {"twilio_21610_on_send": "sms", "twilio_21610_callback": "sms", "telegram_blocked": "telegram",
               "zalo_unfollow": "zalo"}[how]
    conv = subscribe(gw, channel)
    (sub,) = rows(gw, Subscriber)
    contact = rows(gw, Contact)[0]
    address = gw.vault.open(bytes(contact.address_enc))
    if how == "twilio_21610_on_send":
        fakes["twilio"].unsubscribed.add(address)
        from webhook.queue import _send
        _send(gw, conv, "bot", "tin nhắn")
    elif how == "twilio_21610_callback":
        from webhook.models import Outbox
        from webhook.queue import _send
        _send(gw, conv, "bot", "tin nhắn")
        sid = rows(gw, Outbox)[-1].provider_msg_id
        post_sms(client, fakes, fakes["twilio"].status_callback_params(sid, "undelivered", 21610),
                 path="/webhooks/sms/status")
    elif how == "telegram_blocked":
        fakes["telegram"].blocked.add(int(address))
        from webhook.queue import _send
        _send(gw, conv, "bot", "tin nhắn")
    else:
        pipeline.receive(gw, Inbound("zalo", address, "ev-unfollow", kind="event", event="stopped"))
    (sub,) = rows(gw, Subscriber)
    assert sub.status == "unsubscribed", how
    assert rows(gw, ConsentRecord)[-1].method == "provider"


# --- campaigns -------------------------------------------------------------------------------------------

@pytest.fixture
def staff(quiet):
    from webhook.console.auth import create_staff
    for name, role in (("lan", "supervisor"), ("minh", "supervisor"), ("hoa", "counsellor")):
        create_staff(quiet, name, "password-" + name * 3, role)
    return quiet


def ready(gw, key="gbv_action_month", now=NOV, **kw) -> int:
    cid = C.create(gw, "lan", "Tháng hành động", key, now=now, **kw)
    C.approve(gw, cid, "minh", now=now)
    C.schedule(gw, cid, "lan", start_at=now, now=now)
    return cid


def test_approval_needs_another_supervisor_and_the_calendar(staff):
    gw = staff
    cid = C.create(gw, "lan", "Tháng hành động 2026", "gbv_action_month", now=NOV)
    with pytest.raises(C.CampaignError, match="author"):
        C.approve(gw, cid, "lan", now=NOV)
    with pytest.raises(C.CampaignError, match="supervisor or admin"):
        C.approve(gw, cid, "hoa", now=NOV)
    with pytest.raises(C.CampaignError, match="draft|approved|cannot"):
        C.schedule(gw, cid, "lan", start_at=NOV, now=NOV)                      # not approved yet
    C.approve(gw, cid, "minh", now=NOV)
    with pytest.raises(C.CampaignError, match="action months"):
        C.schedule(gw, cid, "lan", start_at=at(2027, 3, 2), now=NOV)            # March: no action month
    C.schedule(gw, cid, "lan", start_at=at(2026, 12, 1, 9), now=NOV)
    C.pause(gw, cid, "minh", now=NOV)
    C.resume(gw, cid, "minh", now=NOV)
    assert C.cancel(gw, cid, "lan", now=NOV) == 0
    from webhook.models import Event
    actions = [e.action for e in rows(gw, Event) if e.action.startswith("campaign_")]
    assert actions == ["campaign_created", "campaign_approved", "campaign_scheduled", "campaign_paused",
                       "campaign_resumed", "campaign_cancelled"]
    assert calendar.allowed(dt.date(2026, 6, 12), "june_dv_month") and not calendar.allowed(dt.date(2026, 7, 1), None)
    assert calendar.allowed(dt.date(2026, 11, 25), "nov25") and not calendar.allowed(dt.date(2026, 11, 26), "nov25")


def test_segments_and_idempotent_planning(staff):
    gw = staff
    subscribe(gw, "telegram", "DK")
    subscribe(gw, "sms", "DK HS")
    subscribe(gw, "telegram", "DK HS TAM KY")
    subscribe(gw, "zalo", "DK EN")
    pending = _conv(gw)
    SUB.handle(gw, pending, "DK", now=NOV)                                       # never confirmed
    gone = subscribe(gw, "telegram", "DK")
    SUB.handle(gw, gone, "STOP", now=NOV)
    paused = subscribe(gw, "telegram", "DK")
    SUB.handle(gw, paused, "KLL", now=NOV)
    everyone = ready(gw)
    students = ready(gw, audience="student")
    tam_ky = ready(gw, audience="student", locality="tam_ky")
    english_tg = ready(gw, language="en", channels=["zalo"])
    assert C.plan(gw, everyone, now=NOV) == 5                                     # 4 + the paused one (skipped at send)
    assert C.plan(gw, everyone, now=NOV) == 5                                     # again: nothing added
    assert C.plan(gw, students, now=NOV) == 2 and C.plan(gw, tam_ky, now=NOV) == 1
    assert C.plan(gw, english_tg, now=NOV) == 1
    p = C.preview(gw, everyone)
    assert p.total == 4 and p.paused == 1 and p.recipients == {"telegram": 2, "sms": 1, "zalo": 1}
    sms_text = p.texts[("sms", "vi")]
    assert all(ord(ch) < 128 for ch in sms_text) and p.sms_segments["vi"] == content.sms_segments(sms_text)


def test_the_send_window_safe_hours_dnc_and_the_daily_cap(staff, fakes):
    gw = staff
    plain = subscribe(gw, "telegram")
    evening = subscribe(gw, "telegram")
    SUB.handle(gw, evening, "GIO 19-21", now=NOV)
    paused = subscribe(gw, "telegram")
    SUB.handle(gw, paused, "KLL", now=NOV)
    ids = [ready(gw) for _ in range(4)]
    early = at(2026, 11, 26, 6, 30)
    out = sender.run_once(gw, now=early, budget=2)
    assert out["sent"] == 0 and fakes["telegram"].sent == []                   # 06:30: nothing goes out
    out = sender.run_once(gw, now=NOV, budget=5)
    subs = {s.contact_id: s.id for s in rows(gw, Subscriber)}

    def states(conv):
        from webhook.models import Conversation
        contact_id = rows(gw, Conversation, Conversation.id == conv)[0].contact_id
        return sorted((r.state, r.reason) for r in rows(gw, CampaignSend, CampaignSend.subscriber_id == subs[contact_id]))
    assert states(plain) == [("planned", "daily_cap")] + [("sent", None)] * 3     # 3 a day, the 4th waits
    assert states(evening) == [("planned", "safe_hours")] * 4                   # waits for 19:00
    assert states(paused) == [("skipped", "do_not_contact")] * 4
    assert len(fakes["telegram"].sent) == 3
    first_line = fakes["telegram"].sent[0]["text"].split("\n")[0]
    assert first_line == content.message("gbv_action_month", "vi").split("\n")[0]
    sender.run_once(gw, now=at(2026, 11, 26, 19, 5), budget=5)                  # evening: their 3
    assert sorted(states(evening)) == [("planned", "daily_cap")] + [("sent", None)] * 3
    sender.run_once(gw, now=at(2026, 11, 27, 10), budget=5)                     # next day: the rest
    assert all(s == "sent" for s, _ in states(plain)) and ("sent", None) in states(evening)
    r = C.report(gw, ids[0])
    assert r["by_state"].get("skipped") == 1 and r["by_reason"] == {"skipped:do_not_contact": 1}


def test_opting_out_during_a_campaign_stops_the_rest(staff, fakes):
    gw = staff
    convs = [subscribe(gw, "telegram") for _ in range(6)]
    cid = ready(gw)
    C.plan(gw, cid, now=NOV)
    first = rows(gw, CampaignSend)[:3]
    with transaction(gw.Session) as s:                                           # only the first 3 are due now
        for r in s.query(CampaignSend).filter(CampaignSend.id > first[-1].id):
            r.next_attempt_at = NOV + 3600
    fakes["telegram"].reset()
    sender.run_once(gw, now=NOV, budget=5)
    assert len(fakes["telegram"].sent) == 3
    SUB.handle(gw, convs[4], "HUY", now=NOV + 60)                                # opts out mid-campaign
    sender.run_once(gw, now=NOV + 3700, budget=5)
    r = C.report(gw, cid)
    assert r["by_state"] == {"sent": 5, "opted_out": 1} and r["state"] == "done"
    assert len(fakes["telegram"].sent) == 5


def test_zalo_outside_its_window_is_skipped_with_the_reason(staff, fakes):
    gw = staff
    conv = subscribe(gw, "zalo")
    from sqlalchemy import update

    from webhook.models import Conversation
    with transaction(gw.Session) as s:
        contact_id = s.get(Conversation, conv).contact_id
        s.execute(update(Contact).where(Contact.id == contact_id).values(last_inbound_at=NOV - 50 * 3600))
    cid = ready(gw)
    sender.run_once(gw, now=NOV, budget=3)
    assert C.report(gw, cid)["by_reason"] == {"skipped:zalo_outside_window": 1}
    assert fakes["zalo"].sent == [] or all("HUY" not in m.get("text", "") for m in fakes["zalo"].sent)


def test_pacer_spaces_sends_at_the_bulk_rate():
    t = [0.0]
    slept = []
    pacer = sender.Pacer({"sms": 100.0}, clock=lambda: t[0], sleep=lambda d: (slept.append(d), t.__setitem__(0, t[0] + d)))
    for _ in range(101):
        pacer.wait("sms")
    assert abs(t[0] - 1.0) < 1e-6                                               # 101 sends: 100 gaps of 10 ms


# --- exactly once across a dying worker ------------------------------------------------------------------

class Died(BaseException):
    """The worker process died (nothing after this line of the sender runs)."""


def _die_during_call(gw, channel, after_provider: bool):
    adapter = gw.adapters[channel]
    real = adapter.send
    calls = {"n": 0}

    lock = __import__("threading").Lock()

    def send(*a, **k):
        with lock:
            calls["n"] += 1
            mine = calls["n"]
        if mine == 2:
            if after_provider:
                real(*a, **k)                                                    # the provider took it...
            raise Died()                                                         # ...and the worker died
        return real(*a, **k)
    adapter.send = send
    return lambda: setattr(adapter, "send", real)


@pytest.mark.parametrize("after_provider", [True, False])
def test_a_worker_dying_in_a_provider_call_causes_no_duplicate_and_no_gap(staff, fakes, after_provider):
    gw = staff
    numbers = []
    for _ in range(4):
        subscribe(gw, "sms")
    for contact in rows(gw, Contact):
        numbers.append(gw.vault.open(bytes(contact.address_enc)))
    cid = ready(gw)
    fakes["twilio"].reset()
    restore = _die_during_call(gw, "sms", after_provider)
    with pytest.raises(Died):
        sender.run_once(gw, now=NOV, budget=5, owner="worker-1")
    restore()
    assert [r.state for r in rows(gw, CampaignSend)].count("sending") == 1
    # a new worker: the dead one's claim and lease are still fresh, nothing happens twice
    sender.run_once(gw, now=NOV + 1, budget=5, owner="worker-2")
    assert [r.state for r in rows(gw, CampaignSend)].count("sending") == 1
    # after the claim expires the provider is asked what it got
    sender.run_once(gw, now=NOV + sender.CLAIM_SECONDS + sender.LEASE_SECONDS + 1, budget=5, owner="worker-2")
    got = sorted(m["to"] for m in fakes["twilio"].sent)
    assert got == sorted(numbers)                                               # each exactly once
    r = C.report(gw, cid)
    assert r["by_state"] == {"sent": 4} and r["state"] == "done"


def test_a_provider_that_cannot_be_asked_gets_unknown_never_a_second_copy(staff, fakes):
    gw = staff
    for _ in range(3):
        subscribe(gw, "telegram")
    cid = ready(gw)
    fakes["telegram"].reset()
    restore = _die_during_call(gw, "telegram", after_provider=True)
    with pytest.raises(Died):
        sender.run_once(gw, now=NOV, budget=5, owner="worker-1")
    restore()
    sender.run_once(gw, now=NOV + sender.CLAIM_SECONDS + sender.LEASE_SECONDS + 1, budget=5, owner="worker-2")
    chats = [m["chat_id"] for m in fakes["telegram"].sent]
    assert len(chats) == len(set(chats)) == 3
    r = C.report(gw, cid)
    assert r["by_state"] == {"sent": 2, "unknown": 1} and r["by_reason"] == {"unknown:worker_died_in_call": 1}


# --- content --------------------------------------------------------------------------------------------

SENSITIVE = re.compile(r"bao luc|bạo lực|violence|danh|đánh|xam hai|xâm hại|abuse|rape|hiep|hiếp|chong|chồng|113|111",
                       re.IGNORECASE)


@pytest.mark.parametrize("language", content.LANGUAGES)
@pytest.mark.parametrize("key", sorted(content.MESSAGES))
def test_campaign_texts_are_discreet_sourced_and_stoppable(key, language):
    body = content.message(key, language)
    first, *rest = body.split("\n")
    assert rest and not SENSITIVE.search(first), first                         # a neutral lock-screen line
    assert "HUY" in body.split("\n")[-1]
    numbers = set(re.findall(r"\d[\d ]{1,}\d", body)) - {"15", "25", "30", "1 8"}
    for n in numbers:
        if len(n.replace(" ", "")) >= 3:
            assert n.replace(" ", "") in {"18001581", "111", "113", "115"} or re.fullmatch(r"\d{1,2}", n), (key, n)
    if language == "vi":
        assert body != content.MESSAGES[key][2]                                 # translated in locale/vi
    sms = C.render(key, language, "sms")
    assert content.sms_segments(sms) <= 3 and all(ord(ch) < 128 for ch in sms)


def test_broadcast_command(staff, monkeypatch, capsys):
    from bot import cli

    gw = staff
    subscribe(gw, "telegram")
    monkeypatch.setenv("HELPLINE_DATABASE_URL", gw.settings.database_url)
    monkeypatch.setenv("HELPLINE_SECRET_KEY", gw.settings.secret_key)
    assert cli.main(["broadcast", "create", "--name", "25/11", "--content", "nov25", "--as", "lan"]) == 0
    cid = C.listing(gw)[0].id
    assert cli.main(["broadcast", "preview", str(cid)]) == 0
    out = capsys.readouterr().out
    assert "recipients: 1" in out and "SMS vi:" in out
    assert cli.main(["broadcast", "approve", str(cid), "--as", "lan"]) == 2   # the author
    assert "author" in capsys.readouterr().err
    assert cli.main(["broadcast", "approve", str(cid), "--as", "minh"]) == 0
    assert "approve done" in capsys.readouterr().out
    assert cli.main(["broadcast", "report", str(cid), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "approved"
    assert cli.main(["broadcast", "calendar"]) == 0
    assert "gbv_action_month" in capsys.readouterr().out


# --- the console ------------------------------------------------------------------------------------------

def test_console_campaign_flow_and_contact_preferences(make_app, fakes, tmp_path):
    """Over HTTP, as staff use it: a supervisor drafts, the same supervisor cannot approve, a
    second one approves and schedules; counsellors cannot see campaigns; the report is JSON; a
    counsellor records "do not contact" and safe hours from a case."""
    from tests.webhook.test_console import PASSWORD, csrf, login, telegram_case
    from webhook.console.auth import create_staff

    app = make_app()
    gw = app.extensions["helpline"]
    gw.spool.dir = tmp_path / "spool"
    for name, role in (("lan", "supervisor"), ("minh", "supervisor"), ("hoa", "counsellor")):
        create_staff(gw, name, PASSWORD, role)
    subscribe(gw, "telegram")
    lan, minh, hoa = login(app, "lan"), login(app, "minh"), login(app, "hoa")
    assert hoa.get("/console/campaigns").status_code in (302, 403)
    token = csrf(lan)
    r = lan.post("/console/campaigns", data={"csrf": token, "name": "25/11", "content": "nov25", "audience": "all",
                                            "channels": ["telegram", "sms"]})
    assert r.status_code == 302
    cid = int(r.headers["Location"].rstrip("/").split("/")[-1])
    page = lan.get(f"/console/campaigns/{cid}").get_data(as_text=True)
    assert "Another supervisor" in page or "người giám sát khác" in page.lower() or "needs-approver" in page
    assert 'id="recipients-total">1<' in page
    r = lan.post(f"/console/campaigns/{cid}/approve", data={"csrf": token})
    assert "error=" in r.headers["Location"]                                       # the author cannot
    m_token = csrf(minh)
    assert minh.post(f"/console/campaigns/{cid}/approve", data={"csrf": m_token}).status_code == 302
    r = minh.post(f"/console/campaigns/{cid}/schedule", data={"csrf": m_token, "start": "2027-03-01T10:00"})
    assert "error=" in r.headers["Location"]                                       # outside the action months
    assert C.listing(gw)[0].state == "approved"
    assert minh.post(f"/console/campaigns/{cid}/approve", data={}).status_code in (400, 403)   # no CSRF token
    report = minh.get(f"/console/campaigns/{cid}/report").get_json()
    assert report["state"] == "approved" and report["planned"] == 0
    # a counsellor records what a person asked for, from their case
    case_id = telegram_case(app, gw, chat_id=5551234).id
    h_token = csrf(hoa)
    r = hoa.post(f"/console/cases/{case_id}/contact", data={"csrf": h_token, "do_not_contact": "on",
                                                            "safe_hours": "19-21"})
    assert r.status_code == 302 and "error" not in r.headers["Location"]
    sub = [s for s in rows(gw, Subscriber) if s.do_not_contact]
    assert len(sub) == 1 and (sub[0].safe_start, sub[0].safe_end, sub[0].status) == (19, 21, "none")
    assert [r.method for r in rows(gw, ConsentRecord, ConsentRecord.subscriber_id == sub[0].id)] == ["counsellor"] * 2
    page = hoa.get(f"/console/cases/{case_id}").get_data(as_text=True)
    assert 'id="pref-dnc" checked' in page and 'value="19-21"' in page


def test_a_dead_local_workers_lease_is_not_waited_out():
    import socket
    import subprocess
    import sys

    host = socket.gethostname()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    try:
        assert sender.owner_dead(f"{host}:{gone.pid}:1")
        assert not sender.owner_dead(f"{host}:{alive.pid}:1")
        assert not sender.owner_dead(f"another-machine:{gone.pid}:1")          # only its lease expiry tells
        assert not sender.owner_dead("garbage") and not sender.owner_dead(None)
    finally:
        alive.kill()
        alive.wait()


def test_a_real_worker_killed_mid_campaign_and_restarted_sends_each_message_once(make_app, fakes, tmp_path):
    """``helpline worker`` as a real process, SIGKILLed while it sends a 300-message SMS campaign,
    then a new one: every number gets the message exactly once (the new worker settles the dead
    one's in-flight rows by asking Twilio)."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from collections import Counter

    from sqlalchemy import update

    from bot import runner
    from tests.webhook.conftest import gateway_config
    from webhook.console.auth import create_staff
    from webhook.models import Campaign

    app = make_app(run_dispatcher=False)
    gw = app.extensions["helpline"]
    gw.spool.dir = tmp_path / "spool"
    for name in ("lan", "minh"):
        create_staff(gw, name, "password-" + name * 3, "supervisor")
    n = 300
    for _ in range(n):
        subscribe(gw, "sms")
    numbers = {gw.vault.open(bytes(c.address_enc)) for c in rows(gw, Contact)}
    cid = ready(gw)
    with transaction(gw.Session) as s:                                   # start now, whatever today is
        s.execute(update(Campaign).where(Campaign.id == cid).values(start_at=time.time()))
    cfg = gateway_config(tmp_path, fakes)
    env = runner._env({
        "HELPLINE_DATABASE_URL": cfg["database_url"], "HELPLINE_SECRET_KEY": cfg["secret_key"],
        "HELPLINE_RASA_URL": cfg["rasa_url"], "HELPLINE_RASA_TOKEN": cfg["rasa_token"], "HELPLINE_ACTIONS_URL": "",
        "TWILIO_ACCOUNT_SID": cfg["twilio_account_sid"], "TWILIO_AUTH_TOKEN": cfg["twilio_auth_token"],
        "TWILIO_FROM": cfg["twilio_from"], "TWILIO_API_BASE": cfg["twilio_api_base"],
        "HELPLINE_PUBLIC_URL": cfg["public_url"], "HELPLINE_BULK_RATES": "sms=60", "HELPLINE_SEND_WINDOW": "0-24",
        "HELPLINE_ESCALATION_JOURNAL": str(tmp_path / "esc.jsonl"), "HELPLINE_STATS": "0",
    })
    fakes["twilio"].reset()

    def worker():
        return subprocess.Popen([sys.executable, "-m", "bot.cli", "worker", "--interval", "0.5"], cwd=str(runner.paths.ROOT),
                                env=env, stdout=open(tmp_path / "worker.log", "ab"), stderr=subprocess.STDOUT,
                                start_new_session=True)
    first = worker()
    try:
        deadline = time.monotonic() + 60
        while len([m for m in fakes["twilio"].sent if m["body"].startswith("Chao ban")]) < 100 \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-2000:]
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        at_kill = len([m for m in fakes["twilio"].sent if m["body"].startswith("Chao ban")])
        assert at_kill < n                                                 # killed in the middle
        second = worker()
        try:
            deadline = time.monotonic() + 90
            while C.report(gw, cid)["state"] != "done" and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            os.killpg(second.pid, signal.SIGTERM)
            second.wait(20)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    # the subscribers' own first messages ("xin chào") are answered by the worker's sweep too:
    # count the campaign message only
    body = C.render("gbv_action_month", "vi", "sms")
    got = Counter(m["to"] for m in fakes["twilio"].sent if m["body"] == body)
    assert set(got) == numbers and max(got.values()) == 1                 # no gap, no duplicate
    assert C.report(gw, cid)["by_state"] == {"sent": n}


def test_asking_twilio_what_it_got_logs_no_phone_number(gw, fakes, caplog):
    """The lookup after a crash has the number in its URL; twilio-python logs every request at
    INFO. None of it may reach the logs."""
    import logging

    caplog.set_level(logging.DEBUG)
    adapter = gw.adapters["sms"]
    assert adapter.send("+84905551234", "Chao ban").ok
    assert adapter.lookup_sent("+84905551234", "Chao ban", since=0) is not None
    assert adapter.lookup_sent("+84905559999", "Chao ban", since=0) is None
    assert "84905551234" not in caplog.text and "84905559999" not in caplog.text


def test_pausing_stops_the_lane_within_a_second_and_resume_goes_on(staff, fakes):
    import threading
    import time

    gw = staff
    for _ in range(60):
        subscribe(gw, "telegram")
    cid = ready(gw)
    fakes["telegram"].reset()
    pacer = sender.Pacer({"telegram": 20.0})                                  # 60 messages: 3 s
    t = threading.Thread(target=lambda: sender.run_once(gw, now=NOV, budget=10, pacer=pacer))
    t.start()
    while len(fakes["telegram"].sent) < 10:
        time.sleep(0.01)
    C.pause(gw, cid, "minh", now=NOV)
    paused_at = len(fakes["telegram"].sent)
    t.join(10)
    assert len(fakes["telegram"].sent) <= paused_at + 15 < 60                # within ~0.5 s of sends
    assert C.report(gw, cid)["by_state"].get("sending", 0) == 0
    C.resume(gw, cid, "minh", now=NOV)
    sender.run_once(gw, now=NOV, budget=10, pacer=pacer)
    got = [m["chat_id"] for m in fakes["telegram"].sent]
    assert len(got) == len(set(got)) == 60 and C.report(gw, cid)["state"] == "done"


# --- review findings, as tests ------------------------------------------------------------------------------

def test_a_yes_to_something_else_is_not_consent(client, gw, fakes):
    """DK, then another message, then "có" (e.g. the bot's "do you want a counsellor?" button):
    the "có" goes to the bot and no one is subscribed."""
    chat = 7_023_456
    for i, text in enumerate(["DK", "tôi muốn hỏi về luật", "Có"]):
        post_telegram(client, tg(chat, text, 100 + i))
        settle(gw)
    (sub,) = rows(gw, Subscriber)
    assert sub.status == "pending" and [r.action for r in rows(gw, ConsentRecord)] == ["asked"]
    assert fakes["rasa"].calls and fakes["rasa"].calls[-1]["message"] == "Có"          # the bot got it


def test_no_campaign_message_lands_in_a_counsellor_conversation(staff, fakes):
    from sqlalchemy import update

    from webhook.models import Conversation
    gw = staff
    conv = subscribe(gw, "telegram")
    with transaction(gw.Session) as s:
        s.execute(update(Conversation).where(Conversation.id == conv).values(mode="with_counsellor"))
    cid = ready(gw)
    sender.run_once(gw, now=NOV, budget=3)
    assert [(r.state, r.reason) for r in rows(gw, CampaignSend)] == [("planned", "in_conversation")]
    with transaction(gw.Session) as s:
        s.execute(update(Conversation).where(Conversation.id == conv).values(mode="bot"))
    sender.run_once(gw, now=NOV + 601, budget=3)
    assert C.report(gw, cid)["by_state"] == {"sent": 1}


def test_hours_that_never_meet_the_window_are_skipped_not_deferred_forever(staff):
    gw = staff
    conv = subscribe(gw, "telegram")
    SUB.handle(gw, conv, "GIO 23 6", now=NOV)
    cid = ready(gw)
    sender.run_once(gw, now=NOV, budget=3)
    assert C.report(gw, cid)["by_reason"] == {"skipped:safe_hours_outside_window": 1}


@pytest.mark.parametrize("channel,expected", [("sms", {"sent": 2}), ("telegram", {"sent": 1, "unknown": 1})])
def test_a_timeout_after_the_provider_took_it_is_not_resent_blindly(staff, fakes, channel, expected):
    from webhook.channels.base import SendResult

    gw = staff
    for _ in range(2):
        subscribe(gw, channel)
    cid = ready(gw)
    adapter = gw.adapters[channel]
    real, calls = adapter.send, {"n": 0}

    import threading
    lock = threading.Lock()

    def send(*a, **k):
        with lock:                                          # the lane sends from several threads
            calls["n"] += 1
            mine = calls["n"]
        result = real(*a, **k)
        if mine == 1:                                       # it went, but the answer timed out
            return SendResult(False, retry=True, ambiguous=True, error_code="ReadTimeout")
        return result
    adapter.send = send
    try:
        sender.run_once(gw, now=NOV, budget=3)
        sender.run_once(gw, now=NOV + 5, budget=3)          # reconcile: asks Twilio / cannot ask Telegram
    finally:
        adapter.send = real
    fake = fakes["twilio" if channel == "sms" else "telegram"]
    to = [m["to"] if channel == "sms" else m["chat_id"] for m in fake.sent]
    assert len(to) == len(set(to)) == 2                    # each once, never a second copy
    assert C.report(gw, cid)["by_state"] == expected


def test_a_campaign_is_not_resumed_after_its_action_period(staff):
    gw = staff
    subscribe(gw, "telegram")
    cid = ready(gw)
    C.plan(gw, cid, now=NOV)
    C.pause(gw, cid, "minh", now=NOV)
    with pytest.raises(C.CampaignError, match="over"):
        C.resume(gw, cid, "minh", now=at(2026, 12, 20))
    C.resume(gw, cid, "minh", now=at(2026, 12, 1))
