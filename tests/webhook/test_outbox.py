"""The outbox's rules that the channel tests do not reach: per-channel rate limits, conversation
traffic before bulk traffic, and redaction of what adapters would put in an error report."""
import time

from tests.webhook.conftest import post_telegram, rows, settle
from webhook.db import transaction
from webhook.dispatcher import Worker
from webhook.models import Outbox
from webhook.pipeline import RateLimiter


class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_rate_limiter_spaces_sends_per_channel_and_not_across_channels():
    clock = FakeClock()
    limiter = RateLimiter({"sms": 4.0, "telegram": 0}, clock=clock, sleep=clock.sleep)
    waits = [limiter.wait("sms") for _ in range(5)]
    assert waits == [0.0, 0.25, 0.25, 0.25, 0.25]
    assert limiter.wait("telegram") == 0.0 and limiter.wait("web") == 0.0     # no limit configured
    clock.now += 10                                                           # idle time is not banked
    assert limiter.wait("sms") == 0.0 and limiter.wait("sms") == 0.25


def test_conversation_replies_go_before_bulk(client, gw, fakes):
    tg = fakes["telegram"]
    post_telegram(client, tg.make_update(910000001, 5601, "xin chao"))
    post_telegram(client, tg.make_update(910000002, 5602, "xin chao"))
    settle(gw)
    first, second = rows(gw, Outbox)[:2]
    with transaction(gw.Session) as s:        # a campaign message queued first, then a reply
        s.add(Outbox(conversation_id=first.conversation_id, contact_id=first.contact_id, channel="telegram", seq=0,
                     kind="bulk", body_enc=gw.vault.seal("campaign"), priority=10, state="queued",
                     created_at=time.time() - 60, next_attempt_at=0))
        s.add(Outbox(conversation_id=second.conversation_id, contact_id=second.contact_id, channel="telegram", seq=0,
                     kind="counsellor", body_enc=gw.vault.seal("reply"), priority=0, state="queued",
                     next_attempt_at=0))
    before = len(tg.sent)
    Worker(gw).run_once()
    assert [m["text"] for m in tg.sent[before:]] == ["reply", "campaign"]


def test_bulk_is_not_sent_to_a_stopped_contact(client, gw, fakes):
    tg = fakes["telegram"]
    post_telegram(client, tg.make_update(910000011, 5611, "xin chao"))
    settle(gw)
    row = rows(gw, Outbox)[0]
    from sqlalchemy import update

    from webhook.models import Contact
    with transaction(gw.Session) as s:
        s.execute(update(Contact).values(status="stopped", stopped_reason="keyword"))
        s.add(Outbox(conversation_id=row.conversation_id, contact_id=row.contact_id, channel="telegram", seq=0,
                     kind="bulk", body_enc=gw.vault.seal("campaign"), priority=10, state="queued", next_attempt_at=0))
    before = len(tg.sent)
    Worker(gw).run_once()
    assert len(tg.sent) == before
    bulk = rows(gw, Outbox)[-1]
    assert bulk.state == "undeliverable" and bulk.error_code == "stopped" and not bulk.flagged


def test_adapters_redact_people_and_their_words(gw, fakes):
    sms = gw.adapters["sms"].redact(fakes["twilio"].inbound_params("+84905000099", "chong em danh em"))
    assert sms["From"] == sms["Body"] == "[redacted]" and sms["MessageSid"].startswith("SM")
    tg = gw.adapters["telegram"].redact(fakes["telegram"].make_update(1, 5699, "chong em danh em"))
    assert "5699" not in str(tg) and "chong em" not in str(tg) and tg["update_id"] == 1
    za = gw.adapters["zalo"].redact(fakes["zalo"].make_event("user_send_text", "2512523625419999", "chong em"))
    assert "2512523625419999" not in str(za) and "chong em" not in str(za) and za["event_name"] == "user_send_text"


def _sms_conversation(client, gw, fakes, phone: str) -> Outbox:
    """A person who wrote by SMS and got the first reply: that reply's row."""
    from tests.webhook.conftest import post_sms

    post_sms(client, fakes, fakes["twilio"].inbound_params(phone, "xin chao"))
    settle(gw)
    return rows(gw, Outbox)[0]


def _left_sending(gw, first: Outbox, *bodies: str) -> None:
    """Rows a dead worker left "sending" (its claim over) in ``first``'s conversation."""
    now = time.time()
    with transaction(gw.Session) as s:
        for body in bodies:
            s.add(Outbox(conversation_id=first.conversation_id, contact_id=first.contact_id, channel="sms", seq=0,
                         kind="counsellor", body_enc=gw.vault.seal(body), priority=0, state="sending",
                         claimed_by="dead-worker", claimed_until=now - 1, created_at=now - 5, next_attempt_at=0,
                         attempts=1))


def test_a_reply_left_sending_is_asked_of_twilio_recorded_when_it_has_it_sent_when_not(client, gw, fakes):
    """A send that ended without an answer (timeout, process killed mid-call) leaves the row
    "sending". For SMS the sweep asks Twilio: one row Twilio has is recorded with Twilio's sid and
    not sent again; one it has not is sent, once; a sid already recorded for another row with the
    same text is not taken for this one."""
    tw, phone = fakes["twilio"], "+84905000771"
    first = _sms_conversation(client, gw, fakes, phone)
    sent_before = [m for m in tw.sent if m["to"] == phone]
    assert sent_before and first.provider_msg_id == sent_before[0]["sid"]
    taken = gw.adapters["sms"].send(phone, "the reply Twilio took").provider_msg_id   # it went, the answer was lost
    _left_sending(gw, first, "the reply Twilio took", "the reply Twilio never got", sent_before[0]["body"])
    count = len(tw.sent)
    stats = Worker(gw).run_once()
    assert stats["reconciled"] == 3
    by_body = {gw.vault.open(r.body_enc): r for r in rows(gw, Outbox)[1:]}
    assert by_body["the reply Twilio took"].state == "sent"
    assert by_body["the reply Twilio took"].provider_msg_id == taken
    # not at Twilio: back in the queue with backoff (the first reply's sid belongs to the first
    # row, so the third, with the same text, was not sent either)
    for body in ("the reply Twilio never got", sent_before[0]["body"]):
        assert by_body[body].state == "queued" and by_body[body].next_attempt_at > time.time()
    assert len(tw.sent) == count
    with transaction(gw.Session) as s:
        s.query(Outbox).filter(Outbox.state == "queued").update({"next_attempt_at": 0})
    Worker(gw).run_once()
    by_body = {gw.vault.open(r.body_enc): r for r in rows(gw, Outbox)[1:]}
    assert all(r.state == "sent" for r in by_body.values())
    assert by_body[sent_before[0]["body"]].provider_msg_id != first.provider_msg_id
    new = [m["body"] for m in tw.sent[count:]]
    assert sorted(new) == sorted(["the reply Twilio never got", sent_before[0]["body"]])
    Worker(gw).run_once()
    assert len(tw.sent) == count + 2


def test_two_sweeps_never_settle_the_same_row_and_the_blind_reset_skips_sms(client, gw, fakes):
    """Worker A is asking Twilio about a row: worker B's sweep neither asks again nor puts it back
    in the queue (SMS rows are only ever settled by asking)."""
    import threading

    _left_sending(gw, _sms_conversation(client, gw, fakes, "+84905000773"), "asked once")
    asking, release, asked = threading.Event(), threading.Event(), []
    real = gw.adapters["sms"].lookup_sent

    def slow_lookup(*a, **k):
        asked.append(1)
        asking.set()
        release.wait(10)
        return real(*a, **k)

    gw.adapters["sms"].lookup_sent = slow_lookup
    try:
        a = threading.Thread(target=lambda: Worker(gw).run_once())
        a.start()
        assert asking.wait(10)
        stats = Worker(gw).run_once()                     # worker B while A waits for Twilio
        assert stats["reconciled"] == 0 and stats["reset"] == 0 and len(asked) == 1
        assert rows(gw, Outbox)[-1].state == "sending"
        release.set()
        a.join(10)
    finally:
        gw.adapters["sms"].lookup_sent = real
    assert rows(gw, Outbox)[-1].state == "queued" and len(asked) == 1


def test_a_twilio_that_cannot_be_asked_leaves_the_row_for_the_next_pass(client, gw, fakes, monkeypatch):
    tw = fakes["twilio"]
    _left_sending(gw, _sms_conversation(client, gw, fakes, "+84905000772"), "maybe sent")

    def down(*a, **k):
        raise ConnectionError("twilio unreachable")

    monkeypatch.setattr(gw.adapters["sms"], "lookup_sent", down)
    count = len(tw.sent)
    Worker(gw).run_once()
    row = rows(gw, Outbox)[-1]
    assert row.state == "sending" and row.claimed_until > time.time() and len(tw.sent) == count
