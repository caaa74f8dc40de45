"""The Social Work Center's queue: order by risk then age, atomic claims under contention (SQLite
and the real PostgreSQL), hand-back, and unclaimed alerts against a frozen clock."""
import threading

import pytest

from tests.conftest import said
from sqlalchemy import update

from tests.webhook.conftest import API_TOKEN, rows, settle
from webhook import pipeline, queue
from webhook.channels.base import Inbound
from webhook.db import transaction
from webhook.models import Case, Conversation, Message


def conversation(gw, n: int) -> int:
    return pipeline.receive(gw, Inbound("web", f"addr-{n}", f"p-{n}", text="xin chao")).conversation_id


def case(gw, n, risk, requested=False, created=None):
    conv = conversation(gw, n)
    case_id = pipeline.open_case(gw, conv, risk, None, reason="test", source="rules", requested=requested)
    if created is not None:
        with transaction(gw.Session) as s:
            s.execute(update(Case).where(Case.id == case_id).values(created_at=created))
    return case_id




def test_order_is_imminent_high_requested_medium_then_oldest(quiet):
    gw = quiet
    ids = {
        "medium_old": case(gw, 1, "medium", created=100),
        "requested": case(gw, 2, "none", requested=True, created=300),
        "high_new": case(gw, 3, "high", created=500),
        "imminent": case(gw, 4, "imminent", created=600),
        "high_old": case(gw, 5, "high", created=200),
        "medium_new": case(gw, 6, "medium", created=50),
    }
    order = [c.id for c in queue.waiting(gw)]
    assert order == [ids[k] for k in ("imminent", "high_old", "high_new", "requested", "medium_new", "medium_old")]


def test_risk_only_rises_and_a_request_is_remembered(quiet):
    gw = quiet
    conv = conversation(gw, 10)
    first = pipeline.open_case(gw, conv, "medium", None, "r", "rules")
    assert pipeline.open_case(gw, conv, "high", None, "r", "rules") == first
    assert pipeline.open_case(gw, conv, "medium", None, "r", "bot", requested=True) == first
    (c,) = rows(gw, Case)
    assert (c.risk, c.requested, c.priority) == ("high", True, 1)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_exactly_one_of_twenty_counsellors_gets_a_case(make_app, request, database):
    over = {"database_url": request.getfixturevalue("pg_url")} if database == "postgresql" else {}
    gw = make_app(run_dispatcher=False, **over).extensions["helpline"]
    target = case(gw, 20, "imminent")
    barrier, wins, lock = threading.Barrier(20), [], threading.Lock()

    def grab(i):
        barrier.wait()
        if queue.claim(gw, target, f"counsellor-{i}"):
            with lock:
                wins.append(i)

    threads = [threading.Thread(target=grab, args=(i,)) for i in range(20)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(wins) == 1
    (c,) = rows(gw, Case)
    assert c.status == "claimed" and c.claimed_by == f"counsellor-{wins[0]}"
    with transaction(gw.Session) as s:
        assert s.get(Conversation, c.conversation_id).mode == "with_counsellor"


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_take_next_hands_out_every_case_once(make_app, request, database):
    over = {"database_url": request.getfixturevalue("pg_url")} if database == "postgresql" else {}
    gw = make_app(run_dispatcher=False, **over).extensions["helpline"]
    for n in range(40):
        case(gw, 100 + n, ["imminent", "high", "medium", "none"][n % 4], requested=(n % 4 == 3))
    got, lock = [], threading.Lock()

    def work(i):
        while (cid := queue.claim_next(gw, f"c{i}")) is not None:
            with lock:
                got.append(cid)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(10)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(got) == 40 and len(set(got)) == 40
    assert all(c.status == "claimed" for c in rows(gw, Case))


def test_with_a_counsellor_messages_are_held_not_sent_to_rasa_and_hand_back_resumes(client, gw, fakes):
    from tests.webhook.conftest import post_telegram

    tg = fakes["telegram"]
    post_telegram(client, tg.make_update(920000001, 5701, "toi muon gap tu van vien"))
    settle(gw)
    conv_id = rows(gw, Message)[0].conversation_id
    case_id = pipeline.open_case(gw, conv_id, "none", None, "request", "bot", requested=True)
    assert queue.claim(gw, case_id, "lan")
    with transaction(gw.Session) as s:
        sender = s.get(Conversation, conv_id).rasa_sender
    assert fakes["rasa"].events == [(sender, [{"event": "pause"}])]
    calls = len(fakes["rasa"].calls)
    post_telegram(client, tg.make_update(920000002, 5701, "chi oi em so lam"))
    settle(gw)
    assert len(fakes["rasa"].calls) == calls                 # the counsellor has it, not the bot
    assert rows(gw, Message)[-1].state == "held"
    assert not queue.hand_back(gw, case_id, "someone-else")  # only the holder
    assert queue.reply(gw, case_id, "someone-else", "chao em") is None
    assert queue.reply(gw, case_id, "lan", "Chào em, chị là tư vấn viên. Em đang ở đâu?")
    assert tg.sent[-1]["text"] == "Chào em, chị là tư vấn viên. Em đang ở đâu?" and tg.sent[-1]["chat_id"] == 5701
    assert queue.hand_back(gw, case_id, "lan", outcome="referred_police")
    assert fakes["rasa"].events[-1] == (sender, [{"event": "resume"}])
    from webhook import replies
    assert tg.sent[-1]["text"] == said(gw, replies.HANDED_BACK)       # the person is told
    with transaction(gw.Session) as s:
        assert s.get(Conversation, conv_id).mode == "bot"
        c = s.get(Case, case_id)
        assert (c.status, c.outcome) == ("closed", "referred_police")
    post_telegram(client, tg.make_update(920000003, 5701, "cam on"))
    settle(gw)
    assert len(fakes["rasa"].calls) == calls + 1             # the bot answers again


def test_unclaimed_alerts_fire_once_after_their_delay(quiet):
    gw = quiet
    t0 = 1_000_000.0
    imminent = case(gw, 30, "imminent", created=t0)
    high = case(gw, 31, "high", created=t0)
    case(gw, 32, "medium", created=t0)
    seen = []
    notify = lambda c, waited: seen.append((c.id, round(waited)))  # noqa: E731
    assert queue.due_alerts(gw, now=t0 + 119, notify=notify) == []
    assert [c.id for c in queue.due_alerts(gw, now=t0 + 121, notify=notify)] == [imminent]
    assert queue.due_alerts(gw, now=t0 + 300, notify=notify) == []
    assert [c.id for c in queue.due_alerts(gw, now=t0 + 601, notify=notify)] == [high]
    assert seen == [(imminent, 121), (high, 601)]
    assert queue.claim(gw, imminent, "lan")
    assert queue.due_alerts(gw, now=t0 + 10_000) == []      # claimed or already alerted: silent


def test_escalation_api_marks_requests_and_keeps_only_a_machine_summary(client, gw, fakes):
    from tests.webhook.conftest import post_telegram

    post_telegram(client, fakes["telegram"].make_update(930000001, 5801, "toi muon gap tu van vien"))
    settle(gw)
    with transaction(gw.Session) as s:
        sender = s.get(Conversation, rows(gw, Message)[0].conversation_id).rasa_sender
    resp = client.post("/api/v1/escalations", headers={"Authorization": f"Bearer {API_TOKEN}"}, json={
        "conversation_id": sender, "risk": "none", "reason": "request", "topic": "request_counselor",
        "summary": {"intent": "request_counselor", "locality": "Tam Kỳ", "reasons": ["request"],
                    "relationship": "x" * 500}})
    assert resp.status_code == 201
    (c,) = rows(gw, Case)
    assert c.requested and c.priority == 2
    assert c.summary == "intent=request_counselor; locality=Tam Kỳ; reasons=request"


def test_worker_alerts_the_supervisor_on_call_once_without_personal_data(make_app, fakes):
    from webhook.dispatcher import Worker

    gw = make_app(run_dispatcher=False, oncall="telegram:777001").extensions["helpline"]
    import time as _time

    case_id = case(gw, 40, "imminent", created=_time.time() - 180)
    Worker(gw).run_once()
    Worker(gw).run_once()
    alerts = [m for m in fakes["telegram"].sent if m["chat_id"] == 777001]
    assert len(alerts) == 1
    assert str(case_id) in alerts[0]["text"] and "imminent" in alerts[0]["text"] and "3" in alerts[0]["text"]
    assert "addr-40" not in alerts[0]["text"] and "xin chao" not in alerts[0]["text"]
