"""The pipeline's promises, through the HTTP test client: bad input is refused with a clear 400
and nothing stored; repeats are processed once; empty, very long, broken and non-text messages
are answered politely; when Rasa, the action server or the database is down the person still
hears from us at once (with the emergency numbers when the rules see danger) and nothing is lost;
the escalation API, the health checks, and no message text or phone number in logs or on disk.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
import unicodedata
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import said
from sqlalchemy import create_engine, text, update
from sqlalchemy.exc import OperationalError

from bot.nlu.normalize import strip_diacritics
from bot.understanding import understand
from tests.fakes import FakeTelegram, FakeTwilio, FakeZalo
from tests.fakes.rasa import FakeRasa
from tests.webhook.conftest import API_TOKEN, count, post_sms, post_telegram, post_zalo, rows, settle
from webhook import pipeline, replies
from webhook.db import transaction
from webhook.dispatcher import Worker
from webhook.models import Case, Contact, Conversation, Message, Outbox

HIGH_RISK = "chong em dang cam dao doi giet em"
SELF_HARM = "em muon tu tu"




# --- helpers -----------------------------------------------------------------------------------

def nothing_stored(gw) -> None:
    assert (count(gw, Message), count(gw, Contact), count(gw, Conversation), count(gw, Outbox)) == (0, 0, 0, 0)


def error_of(resp) -> str:
    assert resp.is_json, resp.data[:200]
    body = resp.get_json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"]
    return body["error"]


def rendered(gw, channel: str, name: str) -> list[str]:
    """A gateway sentence as the channel actually sends it (SMS: unaccented, split)."""
    return gw.adapters[channel].render(said(gw, name))


def texts_to(fakes, channel: str, address) -> list[str]:
    if channel == "telegram":
        return [m["text"] for m in fakes["telegram"].sent if m["chat_id"] == int(address)]
    if channel == "sms":
        return [m["body"] for m in fakes["twilio"].sent if m["to"] == address]
    return [m["text"] for m in fakes["zalo"].sent if m["user_id"] == str(address)]


def wait_texts(fakes, channel: str, address, n: int, timeout: float = 10) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        got = texts_to(fakes, channel, address)
        if len(got) >= n or time.monotonic() > deadline:
            assert len(got) >= n, f"{channel}:{address} got {got!r}, wanted {n}"
            return got
        time.sleep(0.01)


def rasa_messages(fakes) -> list[str]:
    return [c["message"] for c in fakes["rasa"].calls]


def conversation_of(gw, channel: str, address: str) -> Conversation:
    pseudonym = gw.vault.pseudonym(channel, str(address))
    contact = rows(gw, Contact, Contact.channel == channel, Contact.pseudonym == pseudonym)[0]
    return rows(gw, Conversation, Conversation.contact_id == contact.id)[-1]


def zalo_raw_text_event(fakes, user_id: str, msg_id: str, text_bytes: bytes) -> tuple[bytes, dict]:
    """A user_send_text event whose text is ``text_bytes`` verbatim (may be broken UTF-8), signed
    over the raw bytes exactly as Zalo does."""
    za = fakes["zalo"]
    ts = str(int(time.time() * 1000))
    head = json.dumps({"app_id": za.app_id, "user_id_by_app": "9" + user_id[-17:], "event_name": "user_send_text",
                       "timestamp": ts, "sender": {"id": user_id}, "recipient": {"id": za.oa_id},
                       "message": {"msg_id": msg_id, "text": "@@TEXT@@"}}, separators=(",", ":")).encode()
    raw = head.replace(b"@@TEXT@@", text_bytes)
    return raw, {"Content-Type": "application/json", "X-ZEvent-Signature": za.sign(raw, ts)}


def web_session(client) -> dict:
    resp = client.post("/webchat/api/session")
    assert resp.status_code == 201
    return {"X-Webchat-Session": resp.get_json()["session"]}


def test_the_risk_examples_are_what_the_tests_assume():
    assert understand(HIGH_RISK, None).risk in {"high", "imminent"}
    sh = understand(SELF_HARM, None)
    assert sh.risk in {"high", "imminent"} and sh.topic == "self_harm"
    assert understand("xin chao", None).risk not in {"high", "imminent"}


# --- bad input: 400, a clear JSON error, nothing stored ---------------------------------------

def test_zalo_body_that_is_not_json_is_400(client, gw, fakes):
    raw = b"event_name=user_send_text&text=xin chao"          # signed, but not JSON
    resp = client.post("/webhooks/zalo", data=raw, headers={"Content-Type": "application/json",
                                                             "X-ZEvent-Signature": fakes["zalo"].sign(raw, "")})
    assert resp.status_code == 400
    assert "JSON" in error_of(resp)
    nothing_stored(gw)


@pytest.mark.parametrize("channel", ["zalo", "telegram"])
def test_a_json_array_instead_of_an_object_is_400(client, gw, fakes, channel):
    if channel == "zalo":
        event = fakes["zalo"].make_event("user_send_text", "2512523625412001", "xin chao")
        raw = json.dumps([event]).encode()
        resp = client.post("/webhooks/zalo", data=raw, headers={"Content-Type": "application/json",
                                                                 "X-ZEvent-Signature": fakes["zalo"].sign(raw, "")})
    else:
        resp = client.post("/webhooks/telegram", data=json.dumps([fakes["telegram"].make_update(1, 5601, "xin chao")]),
                           headers={"X-Telegram-Bot-Api-Secret-Token": "tg-secret_123"},
                           content_type="application/json")
    assert resp.status_code == 400
    assert "object" in error_of(resp)
    nothing_stored(gw)


def test_telegram_update_without_an_integer_update_id_is_400(client, gw, fakes):
    for update_id in ("missing", None, "77", 1.5):
        update = fakes["telegram"].make_update(1, 5602, "xin chao")
        if update_id == "missing":
            del update["update_id"]
        else:
            update["update_id"] = update_id
        resp = post_telegram(client, update)
        assert resp.status_code == 400, update_id
        assert "update_id" in error_of(resp)
    nothing_stored(gw)


def test_web_chat_body_that_is_not_a_json_object_with_text_is_400(client, gw):
    headers = web_session(client)
    for body in (b"text=xin chao", b"{not json", b'["xin chao"]', b'"xin chao"', b'{"text": 12}',
                 b'{"text": ["xin", "chao"]}'):
        resp = client.post("/webchat/api/messages", data=body, headers=headers, content_type="application/json")
        assert resp.status_code == 400, body
        assert "JSON" in error_of(resp)
    assert count(gw, Message) == 0 and count(gw, Contact) == 0


def test_zalo_event_without_sender_or_msg_id_is_400(client, gw, fakes):
    event = fakes["zalo"].make_event("user_send_text", "2512523625412002", "xin chao")
    no_msg_id = json.loads(json.dumps(event))
    del no_msg_id["message"]["msg_id"]
    assert post_zalo(client, fakes, no_msg_id).status_code == 400
    no_sender = json.loads(json.dumps(event))
    del no_sender["sender"]
    resp = post_zalo(client, fakes, no_sender)
    assert resp.status_code == 400 and "sender" in error_of(resp)
    not_text = json.loads(json.dumps(event))
    not_text["message"]["text"] = {"html": "<b>xin chao</b>"}
    resp = post_zalo(client, fakes, not_text)
    assert resp.status_code == 400 and "text" in error_of(resp)
    nothing_stored(gw)


# --- repeated delivery: 200, processed once -----------------------------------------------------

def test_repeated_delivery_is_acknowledged_and_processed_once(client, gw, fakes):
    tg = fakes["telegram"]
    update = tg.make_update(910000001, 5610, "cho hoi so tong dai")
    for _ in range(3):
        assert post_telegram(client, update).status_code == 200
    settle(gw)
    post_telegram(client, update)            # and again after it was answered
    settle(gw)
    assert count(gw, Message) == 1
    assert rasa_messages(fakes) == ["cho hoi so tong dai"]
    assert texts_to(fakes, "telegram", 5610) == ["bot: cho hoi so tong dai"]


def test_the_same_update_posted_concurrently_is_stored_and_answered_once(app, gw, fakes):
    tg = fakes["telegram"]
    threads_per_update = 4
    statuses: list[int] = []
    lock = threading.Lock()
    for n in range(3):                        # a new chat each round: contact creation races too
        update = tg.make_update(920000000 + n, 5620 + n, f"xin chao lan {n}")
        barrier = threading.Barrier(threads_per_update)

        def post(update=update, barrier=barrier):
            c = app.test_client()
            barrier.wait()
            code = post_telegram(c, update).status_code
            with lock:
                statuses.append(code)

        threads = [threading.Thread(target=post) for _ in range(threads_per_update)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    assert statuses == [200] * (3 * threads_per_update)
    settle(gw)
    assert count(gw, Message) == 3 and count(gw, Contact) == 3 and count(gw, Conversation) == 3
    assert sorted(rasa_messages(fakes)) == [f"xin chao lan {n}" for n in range(3)]
    tg.wait_for(3)
    settle(gw)
    assert sorted(m["text"] for m in tg.sent) == [f"bot: xin chao lan {n}" for n in range(3)]


# --- empty, long, broken, non-text ------------------------------------------------------------

@pytest.mark.parametrize("channel", ["telegram", "sms", "zalo", "web"])
def test_empty_or_whitespace_message_gets_a_polite_reply_and_rasa_is_not_called(client, gw, fakes, channel):
    blank = "  \n\t  "
    if channel == "telegram":
        address = 5630
        assert post_telegram(client, fakes["telegram"].make_update(930000001, address, blank)).status_code == 200
    elif channel == "sms":
        address = "+84905000630"
        assert post_sms(client, fakes, fakes["twilio"].inbound_params(address, blank)).status_code == 200
    elif channel == "zalo":
        address = "2512523625412630"
        assert post_zalo(client, fakes, fakes["zalo"].make_event("user_send_text", address, blank)).status_code == 200
    else:
        headers = web_session(client)
        assert client.post("/webchat/api/messages", json={"text": blank, "client_id": "c1"},
                           headers=headers).status_code == 202
    settle(gw)
    msg = rows(gw, Message)[0]
    assert (msg.kind, msg.state, msg.body_enc) == ("empty", "ignored", None)
    assert fakes["rasa"].calls == []
    if channel == "web":
        out = rows(gw, Outbox)
        assert [gw.vault.open(o.body_enc) for o in out] == [said(gw, replies.EMPTY)]
        assert out[0].state == "sent"
    else:
        assert wait_texts(fakes, channel, address, 1) == rendered(gw, channel, replies.EMPTY)


def test_very_long_message_is_stored_whole_and_rasa_gets_the_first_max_text_chars(client, gw, fakes):
    words = [f"tu{i:04d}" for i in range(900)]
    text = " ".join(words)[:5000]
    assert len(text) == 5000
    assert post_telegram(client, fakes["telegram"].make_update(940000001, 5640, text)).status_code == 200
    settle(gw)
    msg = rows(gw, Message)[0]
    assert gw.vault.open(msg.body_enc) == text                 # kept whole
    assert msg.state == "answered"
    assert gw.settings.max_text_chars == 2000
    assert rasa_messages(fakes) == [text[:2000]]               # understood from its start
    assert wait_texts(fakes, "telegram", 5640, 1) == ["bot: " + text[:40]]


def test_broken_utf8_inside_a_signed_zalo_body_is_stored_and_answered(client, gw, fakes):
    text_bytes = "xin chào ".encode() + b"\xc3\x28 \xff\xfe" + " em cần giúp".encode()
    raw, headers = zalo_raw_text_event(fakes, "2512523625412650", "broken-utf8-1", text_bytes)
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    resp = client.post("/webhooks/zalo", data=raw, headers=headers)
    assert resp.status_code == 200
    settle(gw)
    expected = text_bytes.decode("utf-8", errors="replace")
    msg = rows(gw, Message)[0]
    assert gw.vault.open(msg.body_enc) == expected and "\ufffd" in expected
    assert rasa_messages(fakes) == [expected]
    assert wait_texts(fakes, "zalo", "2512523625412650", 1) == ["bot: " + expected[:40]]


UNUSUAL = {
    "nfd": unicodedata.normalize("NFD", "Chào chị, em cần tư vấn về ly hôn"),
    "zero-width": "xin\u200b chào\u200d, em\ufeff cần\u2060 giúp",
    "emoji": "em sợ lắm 😢😢 🙏🏽 👨‍👩‍👧 giúp em với",
    "bidi-and-odd-spaces": "\u202eđảo chiều\u202c và \u00a0khoảng trắng lạ\u3000",
}


def test_unusual_unicode_is_stored_exactly_and_answered(client, gw, fakes):
    texts = list(UNUSUAL.values())
    assert unicodedata.normalize("NFC", texts[0]) != texts[0]
    for i, text in enumerate(texts):             # one chat each
        assert post_telegram(client, fakes["telegram"].make_update(950000001 + i, 5650 + i, text)).status_code == 200
    settle(gw)
    msgs = rows(gw, Message)
    assert [(m.kind, gw.vault.open(m.body_enc)) for m in msgs] == [("text", t) for t in texts]
    assert sorted(rasa_messages(fakes)) == sorted(texts)
    for i, text in enumerate(texts):
        assert wait_texts(fakes, "telegram", 5650 + i, 1) == ["bot: " + text[:40]]


def test_the_risk_rules_see_through_nfd_zero_width_and_emoji(client, gw, fakes):
    texts = [unicodedata.normalize("NFD", "Chồng em đang cầm dao đòi giết em"),
             "chong em dang cam dao doi gi\u200bet em",
             "Chồng em đang cầm dao đòi giết em 😭😭"]
    for i, text in enumerate(texts):
        assert post_telegram(client, fakes["telegram"].make_update(955000001 + i, 5655 + i, text)).status_code == 200
    settle(gw)
    cases = rows(gw, Case)
    assert [(c.source, c.risk in {"high", "imminent"}) for c in cases] == [("rules", True)] * 3
    assert len({c.conversation_id for c in cases}) == 3


@pytest.mark.parametrize("text", ["xin chao \ud83d", "\udc00 em can giup"], ids=["high-surrogate", "low-surrogate"])
def test_lone_surrogate_escape_in_json_is_stored_and_answered(client, gw, fakes, text):
    body = json.dumps(fakes["telegram"].make_update(956000001, 5656, text))      # ASCII JSON with a \ud83d escape
    assert "\\ud" in body or "\\udc" in body
    resp = client.post("/webhooks/telegram", data=body, content_type="application/json",
                       headers={"X-Telegram-Bot-Api-Secret-Token": "tg-secret_123"})
    assert resp.status_code == 200
    settle(gw)
    assert count(gw, Message) == 1
    assert wait_texts(fakes, "telegram", 5656, 1)


def test_web_chat_text_with_a_lone_surrogate_is_accepted(client, gw, fakes):
    headers = web_session(client)
    resp = client.post("/webchat/api/messages", data='{"text": "em can giup \\ud83d", "client_id": "s1"}',
                       headers=headers, content_type="application/json")
    assert resp.status_code == 202
    settle(gw)
    assert count(gw, Message) == 1


@pytest.mark.parametrize("channel,kind", [
    ("telegram", "photo"), ("telegram", "sticker"), ("telegram", "voice"),
    ("zalo", "user_send_image"), ("zalo", "user_send_sticker"), ("zalo", "user_send_audio"),
    ("sms", "mms"),
])
def test_images_stickers_and_voice_get_the_text_only_reply_and_nothing_is_stored(client, gw, fakes, channel, kind):
    if channel == "telegram":
        address = 5660
        update = fakes["telegram"].make_update(960000001, address, None, kind=kind)
        assert post_telegram(client, update).status_code == 200
    elif channel == "zalo":
        address = "2512523625412660"
        assert post_zalo(client, fakes, fakes["zalo"].make_event(kind, address)).status_code == 200
    else:
        address = "+84905000660"
        params = fakes["twilio"].inbound_params(address, "")
        params.update(NumMedia="1", MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
                      MediaContentType0="image/jpeg")
        assert post_sms(client, fakes, params).status_code == 200
    settle(gw)
    msg = rows(gw, Message)[0]
    assert (msg.kind, msg.state, msg.body_enc) == ("media", "ignored", None)
    assert fakes["rasa"].calls == []
    assert wait_texts(fakes, channel, address, 1) == rendered(gw, channel, replies.TEXT_ONLY)


@pytest.mark.parametrize("channel", ["telegram", "zalo", "sms", "web"])
def test_body_larger_than_max_body_bytes_is_413_and_nothing_stored(client, gw, fakes, channel):
    big = "a" * (gw.settings.max_body_bytes + 1024)
    if channel == "telegram":
        resp = post_telegram(client, fakes["telegram"].make_update(970000001, 5670, big))
    elif channel == "zalo":
        resp = post_zalo(client, fakes, fakes["zalo"].make_event("user_send_text", "2512523625412670", big))
    elif channel == "sms":
        resp = post_sms(client, fakes, fakes["twilio"].inbound_params("+84905000670", big))
    else:
        headers = web_session(client)
        resp = client.post("/webchat/api/messages", json={"text": big}, headers=headers)
    assert resp.status_code == 413
    error_of(resp)
    settle(gw)
    assert count(gw, Message) == 0 and count(gw, Outbox) == 0
    assert fakes["rasa"].calls == []


# --- Rasa down or slow --------------------------------------------------------------------------

def test_rasa_down_safe_reply_at_once_rules_still_work_then_replay_in_order(client, gw, fakes):
    rasa, tg = fakes["rasa"], fakes["telegram"]
    rasa.down = True

    # An ordinary message: the degraded notice at once, the message deferred.
    assert post_telegram(client, tg.make_update(980000001, 5681, "xin chao")).status_code == 200
    settle(gw)
    assert wait_texts(fakes, "telegram", 5681, 1) == [said(gw, replies.DEGRADED)]
    first = rows(gw, Message)[0]
    assert first.state == "deferred"

    # A second ordinary message within 10 minutes: no second notice.
    assert post_telegram(client, tg.make_update(980000002, 5681, "cho hoi ve ly hon")).status_code == 200
    settle(gw)
    assert texts_to(fakes, "telegram", 5681) == [said(gw, replies.DEGRADED)]

    # Danger, from someone else, while Rasa is down: emergency numbers and a rules case.
    assert post_telegram(client, tg.make_update(980000003, 5682, HIGH_RISK)).status_code == 200
    settle(gw)
    assert wait_texts(fakes, "telegram", 5682, 1) == [said(gw, replies.EMERGENCY)]
    conv = conversation_of(gw, "telegram", 5682)
    cases = rows(gw, Case, Case.conversation_id == conv.id)
    assert [(c.source, c.risk, c.status) for c in cases] == [("rules", "imminent", "open")]
    assert rows(gw, Message, Message.conversation_id == conv.id)[0].state == "deferred"

    # Self-harm: the self-harm reply, not the generic one.
    assert post_telegram(client, tg.make_update(980000004, 5683, SELF_HARM)).status_code == 200
    settle(gw)
    assert wait_texts(fakes, "telegram", 5683, 1) == [said(gw, replies.SELF_HARM)]
    conv_sh = conversation_of(gw, "telegram", 5683)
    assert [(c.source, c.topic) for c in rows(gw, Case, Case.conversation_id == conv_sh.id)] == [("rules", "self_harm")]
    assert rasa.calls == []

    # Rasa is back: the worker replays everything, in order, and the bot's replies go out.
    rasa.down = False
    stats = Worker(gw).run_once()
    assert stats["replayed"] == 4
    assert rasa_messages(fakes) == ["xin chao", "cho hoi ve ly hon", HIGH_RISK, SELF_HARM]
    senders = [c["sender"] for c in rasa.calls]
    assert senders[0] == senders[1] != senders[2]
    assert all(m.state == "answered" for m in rows(gw, Message))
    assert texts_to(fakes, "telegram", 5681) == [said(gw, replies.DEGRADED), "bot: xin chao",
                                                 "bot: cho hoi ve ly hon"]
    assert texts_to(fakes, "telegram", 5682)[-1] == "bot: " + HIGH_RISK[:40]
    assert texts_to(fakes, "telegram", 5683)[-1] == "bot: " + SELF_HARM
    assert len(rows(gw, Case)) == 2                       # the replay does not open cases again

    # Nothing is replayed twice.
    sent_before = len(tg.sent)
    again = Worker(gw).run_once()
    settle(gw)
    assert again["replayed"] == 0 and len(rasa.calls) == 4 and len(tg.sent) == sent_before


def test_rasa_down_danger_after_a_deferred_message_in_the_same_chat_gets_the_emergency_numbers(client, gw, fakes):
    """A danger message must not sit behind an ordinary one that waits for Rasa."""
    rasa, tg = fakes["rasa"], fakes["telegram"]
    rasa.down = True
    post_telegram(client, tg.make_update(981000001, 5684, "xin chao"))
    settle(gw)
    assert wait_texts(fakes, "telegram", 5684, 1) == [said(gw, replies.DEGRADED)]
    post_telegram(client, tg.make_update(981000002, 5684, HIGH_RISK))
    settle(gw)
    conv = conversation_of(gw, "telegram", 5684)
    assert [c.source for c in rows(gw, Case, Case.conversation_id == conv.id)] == ["rules"]
    assert [m.state for m in rows(gw, Message)] == ["deferred", "deferred"]
    assert wait_texts(fakes, "telegram", 5684, 2, timeout=3)[1] == said(gw, replies.EMERGENCY)
    fakes["rasa"].down = False
    Worker(gw).run_once()
    assert rasa_messages(fakes) == ["xin chao", HIGH_RISK]
    assert [m.state for m in rows(gw, Message)] == ["answered", "answered"]


def test_rasa_down_a_new_notice_only_after_ten_minutes(client, gw, fakes):
    rasa, tg = fakes["rasa"], fakes["telegram"]
    rasa.down = True
    for i in range(3):
        post_telegram(client, tg.make_update(981500001 + i, 5689, f"tin {i}"))
        settle(gw)
    assert texts_to(fakes, "telegram", 5689) == [said(gw, replies.DEGRADED)]
    with transaction(gw.Session) as s:                           # ten minutes and a bit pass
        s.execute(update(Conversation).values(degraded_notice_at=time.time() - 601))
    post_telegram(client, tg.make_update(981500010, 5689, "tin 10"))
    settle(gw)
    assert texts_to(fakes, "telegram", 5689) == [said(gw, replies.DEGRADED)] * 2
    assert [m.state for m in rows(gw, Message)] == ["deferred"] * 4


class _SilentRasa(BaseHTTPRequestHandler):
    """Rasa when the action server is down: it logs 'Bot will continue, but the actions events are
    lost' and its REST channel answers 200 with no messages."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, body: bytes):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._send(b'{"status": "ok"}')

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._send(b"[]")


def test_an_empty_answer_from_rasa_still_gets_the_person_a_reply(make_app, tmp_path, fakes):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SilentRasa)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        app = make_app(rasa_url=f"http://127.0.0.1:{server.server_address[1]}")
        gw = app.extensions["helpline"]
        gw.spool.dir = tmp_path / "spool"
        post_telegram(app.test_client(), fakes["telegram"].make_update(981600001, 5692, "cho hoi dia chi tro giup"))
        settle(gw)
        assert rows(gw, Message)[0].state in {"answered", "deferred"}
        assert texts_to(fakes, "telegram", 5692) == [said(gw, replies.DEGRADED)]   # settled: all sent
    finally:
        server.shutdown()
        server.server_close()


def test_rasa_slow_gets_the_safe_reply_deferred_and_replayed(make_app, tmp_path, fakes):
    app = make_app(rasa_timeout=0.3)
    gw = app.extensions["helpline"]
    gw.spool.dir = tmp_path / "spool"
    client = app.test_client()
    rasa = fakes["rasa"]
    rasa.delay = 1.5
    started = time.monotonic()
    assert post_telegram(client, fakes["telegram"].make_update(982000001, 5685, "toi can giup")).status_code == 200
    assert time.monotonic() - started < 0.3          # the provider never waits for the bot
    settle(gw)
    assert wait_texts(fakes, "telegram", 5685, 1) == [said(gw, replies.DEGRADED)]
    assert time.monotonic() - started < 1.2          # the safe reply did not wait for the slow bot
    assert rows(gw, Message)[0].state == "deferred"
    rasa.delay = 0.0
    stats = Worker(gw).run_once()
    assert stats["replayed"] == 1
    assert rows(gw, Message)[0].state == "answered"
    assert texts_to(fakes, "telegram", 5685) == [said(gw, replies.DEGRADED), "bot: toi can giup"]
    # The request that timed out still reached Rasa, so Rasa sees the message twice (at least once
    # delivery). Wait for it here so it does not land in the next test's recording.
    deadline = time.monotonic() + 3
    while len(rasa.calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert rasa_messages(fakes) == ["toi can giup", "toi can giup"]


def test_high_risk_rules_case_does_not_depend_on_rasa_or_the_action_server(make_app, tmp_path, fakes):
    closed = _free_port()
    app = make_app(actions_url=f"http://127.0.0.1:{closed}")        # the action server is down
    gw = app.extensions["helpline"]
    gw.spool.dir = tmp_path / "spool"
    client = app.test_client()
    assert post_telegram(client, fakes["telegram"].make_update(983000001, 5686, HIGH_RISK)).status_code == 200
    settle(gw)
    cases = rows(gw, Case)
    assert [(c.source, c.risk, c.status) for c in cases] == [("rules", "imminent", "open")]
    assert rows(gw, Message)[0].risk == "imminent"
    assert rasa_messages(fakes) == [HIGH_RISK]            # Rasa up: it answers as usual
    assert wait_texts(fakes, "telegram", 5686, 1) == ["bot: " + HIGH_RISK[:40]]
    assert rows(gw, Conversation)[0].mode == "queued"        # in the counsellors' queue


# --- the database down: the spool -------------------------------------------------------------

def _database_down(monkeypatch):
    def broken(gw, inbound):
        raise OperationalError("INSERT INTO messages ...", {}, Exception("database is locked"))
    monkeypatch.setattr(pipeline, "receive", broken)


def test_database_down_spools_sealed_replies_from_the_adapter_then_ingests(client, gw, fakes, monkeypatch, tmp_path):
    phone, text = "+84905771234", "Spoolcanary4471 toi can giup"
    _database_down(monkeypatch)
    resp = post_sms(client, fakes, fakes["twilio"].inbound_params(phone, text))
    assert resp.status_code == 200 and b"<Response/>" in resp.data
    files = sorted(gw.spool.dir.glob("*.msg"))
    assert len(files) == 1
    sealed = files[0].read_bytes()
    for secret in (text, "Spoolcanary4471", phone, "905771234"):
        assert secret.encode() not in sealed
    assert json.loads(gw.vault.open(sealed))["text"] == text          # sealed, not lost
    # The safe reply straight from the adapter, without the database.
    sent = fakes["twilio"].wait_for(1)
    assert [s["body"] for s in sent] == rendered(gw, "sms", replies.DEGRADED) and sent[0]["to"] == phone
    assert count(gw, Message) == 0

    monkeypatch.undo()                                                   # the database is back
    stats = Worker(gw).run_once()
    settle(gw)
    assert stats["spooled"] == 1
    assert list(gw.spool.dir.glob("*")) == []
    msg = rows(gw, Message)[0]
    assert gw.vault.open(msg.body_enc) == text and msg.state == "answered"
    assert rasa_messages(fakes) == [text]
    sent = fakes["twilio"].wait_for(2)
    assert sent[1]["to"] == phone and sent[1]["body"] == strip_diacritics("bot: " + text[:40])
    assert Worker(gw).run_once()["spooled"] == 0


def test_database_down_danger_gets_the_emergency_numbers_and_a_case_once_stored(client, gw, fakes, monkeypatch):
    _database_down(monkeypatch)
    assert post_telegram(client, fakes["telegram"].make_update(984000001, 5687, HIGH_RISK)).status_code == 200
    assert wait_texts(fakes, "telegram", 5687, 1) == [said(gw, replies.EMERGENCY)]
    monkeypatch.undo()
    Worker(gw).run_once()
    settle(gw)
    assert [c.source for c in rows(gw, Case)] == ["rules"]
    assert wait_texts(fakes, "telegram", 5687, 2)[1] == "bot: " + HIGH_RISK[:40]


def test_gateways_on_different_databases_do_not_share_a_spool(make_app, tmp_path):
    a = make_app().extensions["helpline"]
    b = make_app(database_url=f"sqlite:///{tmp_path / 'other.db'}").extensions["helpline"]
    assert a.spool.dir != b.spool.dir


# --- ordering -----------------------------------------------------------------------------------

def test_messages_from_one_chat_reach_rasa_and_the_person_in_order(client, gw, fakes):
    tg, rasa = fakes["telegram"], fakes["rasa"]
    rasa.delay = 0.03                     # slow enough that the dispatcher threads overlap
    texts = [f"tin nhan so {i}" for i in range(1, 6)]
    for i, text in enumerate(texts):
        assert post_telegram(client, tg.make_update(985000000 + i, 5688, text)).status_code == 200
    settle(gw)
    assert rasa_messages(fakes) == texts
    assert wait_texts(fakes, "telegram", 5688, 5) == [f"bot: {t}" for t in texts]


# --- the escalation API -----------------------------------------------------------------------------

def _known_conversation(client, gw, fakes, chat: int = 5690) -> Conversation:
    post_telegram(client, fakes["telegram"].make_update(986000000 + chat, chat, "xin chao"))
    settle(gw)
    return conversation_of(gw, "telegram", chat)


def test_escalation_without_the_right_bearer_token_is_403(client, gw, fakes):
    conv = _known_conversation(client, gw, fakes)
    for auth in (None, "", "Bearer", "Bearer ", "Bearer wrong-token", API_TOKEN, f"Token {API_TOKEN}",
                 f"Bearer {API_TOKEN}x", f"Bearer {API_TOKEN[:-1]}"):
        headers = {} if auth is None else {"Authorization": auth}
        resp = client.post("/api/v1/escalations", json={"conversation_id": conv.rasa_sender, "risk": "high"},
                           headers=headers)
        assert resp.status_code == 403, auth
        error_of(resp)
    assert count(gw, Case) == 0


def test_escalation_with_a_bad_body_is_400(client, gw):
    for body in (b"not json", b"[]", b"{}", b'{"conversation_id": 12}', b'{"conversation_id": null}',
                 b'{"conversation_id": ["x"]}'):
        resp = client.post("/api/v1/escalations", data=body, content_type="application/json",
                           headers={"Authorization": f"Bearer {API_TOKEN}"})
        assert resp.status_code == 400, body
        assert "conversation_id" in error_of(resp)
    assert count(gw, Case) == 0


def test_escalation_for_an_unknown_conversation_is_404(client, gw):
    resp = client.post("/api/v1/escalations", json={"conversation_id": "telegram-0000", "risk": "high"},
                       headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert resp.status_code == 404
    error_of(resp)
    assert count(gw, Case) == 0


def test_escalation_opens_one_case_per_conversation_raised_never_lowered(client, gw, fakes):
    conv = _known_conversation(client, gw, fakes)
    auth = {"Authorization": f"Bearer {API_TOKEN}"}

    def escalate(risk, topic=None, reason="bot"):
        return client.post("/api/v1/escalations", headers=auth,
                           json={"conversation_id": conv.rasa_sender, "risk": risk, "topic": topic, "reason": reason})

    first = escalate("medium", "domestic_violence", "asked_for_counsellor")
    assert first.status_code == 201
    case_id = first.get_json()["case_id"]
    case = rows(gw, Case)[0]
    assert (case.id, case.conversation_id, case.risk, case.source, case.status, case.topic, case.reason) == \
        (case_id, conv.id, "medium", "bot", "open", "domestic_violence", "asked_for_counsellor")
    assert rows(gw, Conversation)[0].mode == "queued"

    raised = escalate("high")
    assert raised.status_code == 201 and raised.get_json()["case_id"] == case_id
    assert rows(gw, Case)[0].risk == "high"

    for lower in ("low", "medium", "none", "bogus"):           # bogus is read as medium
        resp = escalate(lower)
        assert resp.status_code == 201 and resp.get_json()["case_id"] == case_id
    assert [(c.id, c.risk) for c in rows(gw, Case)] == [(case_id, "high")]

    assert escalate("imminent", "emergency").get_json()["case_id"] == case_id
    assert [(c.risk, c.topic) for c in rows(gw, Case)] == [("imminent", "emergency")]






@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_concurrent_escalations_open_one_case(make_app, request, fakes, tmp_path, database):
    over = {"database_url": request.getfixturevalue("pg_url")} if database == "postgresql" else {}
    app = make_app(**over)
    gw = app.extensions["helpline"]
    gw.spool.dir = tmp_path / "spool"
    conv = _known_conversation(app.test_client(), gw, fakes, chat=5693)
    barrier, codes, lock = threading.Barrier(8), [], threading.Lock()

    def escalate():
        c = app.test_client()
        barrier.wait()
        code = c.post("/api/v1/escalations", json={"conversation_id": conv.rasa_sender, "risk": "high"},
                      headers={"Authorization": f"Bearer {API_TOKEN}"}).status_code
        with lock:
            codes.append(code)

    threads = [threading.Thread(target=escalate) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert codes == [201] * 8
    assert [(c.status, c.risk) for c in rows(gw, Case)] == [("open", "high")]


def test_escalation_after_a_rules_case_joins_it(client, gw, fakes):
    post_telegram(client, fakes["telegram"].make_update(987000001, 5691, HIGH_RISK))
    settle(gw)
    conv = conversation_of(gw, "telegram", 5691)
    rules_case = rows(gw, Case)[0]
    resp = client.post("/api/v1/escalations", json={"conversation_id": conv.rasa_sender, "risk": "medium"},
                       headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert resp.status_code == 201 and resp.get_json()["case_id"] == rules_case.id
    assert [(c.source, c.risk) for c in rows(gw, Case)] == [("rules", "imminent")]


# --- health ---------------------------------------------------------------------------------------

class _Health(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        body = b'{"status": "ok"}'
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def actions_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_healthz_is_200(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.get_json() == {"status": "ok"}


def test_readyz_without_an_action_server_checks_the_database_and_rasa(client, fakes):
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ready", "checks": {"database": True, "rasa": True}}
    fakes["rasa"].down = True
    resp = client.get("/readyz")
    assert resp.status_code == 503
    assert resp.get_json() == {"status": "degraded", "checks": {"database": True, "rasa": False}}


def test_readyz_checks_the_action_server(make_app, fakes, actions_server):
    client = make_app(actions_url=actions_server).test_client()
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.get_json()["checks"] == {"database": True, "rasa": True, "actions": True}
    fakes["rasa"].down = True
    assert client.get("/readyz").status_code == 503


def test_readyz_is_503_when_the_action_server_is_down(make_app):
    client = make_app(actions_url=f"http://127.0.0.1:{_free_port()}").test_client()
    resp = client.get("/readyz")
    assert resp.status_code == 503
    assert resp.get_json()["checks"] == {"database": True, "rasa": True, "actions": False}


# --- privacy: logs and the database file ------------------------------------------------------------

def _log_text(caplog) -> str:
    parts = [caplog.text]
    for rec in caplog.records:
        parts.append(rec.getMessage())
        parts.append(repr(rec.args))
        parts.append(repr(getattr(rec, "__dict__", {})))
    return "\n".join(parts)


def _database_bytes(tmp_path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(tmp_path.glob("gw.db*")))


def test_no_message_text_or_phone_number_in_logs_or_in_the_database_file(client, gw, fakes, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    tw, rasa = fakes["twilio"], fakes["rasa"]
    phone = "+84912873645"
    texts = ["Hoacanary9137 chong toi danh toi", "Quangcanary5519 toi so lam"]
    rasa.down = True
    post_sms(client, fakes, tw.inbound_params(phone, texts[0]))
    settle(gw)
    tw.wait_for(1)
    post_sms(client, fakes, tw.inbound_params(phone, texts[1]))
    settle(gw)
    # a forged and a malformed request carrying the same words
    post_sms(client, fakes, tw.inbound_params(phone, texts[0]), signature="Zm9yZ2Vk")
    bad = tw.inbound_params(phone, texts[1])
    del bad["MessageSid"], bad["SmsMessageSid"]
    assert post_sms(client, fakes, bad).status_code == 400
    rasa.down = False
    Worker(gw).run_once()
    settle(gw)
    sent = tw.wait_for(3)
    params = tw.status_callback_params(sent[-1]["sid"], "delivered")
    assert post_sms(client, fakes, params, path="/webhooks/sms/status").status_code == 204
    assert rasa_messages(fakes) == texts

    logged = _log_text(caplog)
    assert caplog.records, "the flow logged nothing at all: the check would be empty"
    for secret in ("Hoacanary9137", "Quangcanary5519", "chong toi danh toi", phone, "912873645", "84912873645"):
        assert secret not in logged, f"{secret!r} leaked into the logs"

    gw.engine.dispose()
    raw = _database_bytes(tmp_path)
    assert len(raw) > 10_000
    for secret in ("Hoacanary9137", "Quangcanary5519", phone, "912873645"):
        for encoding in ("utf-8", "utf-16-le"):
            assert secret.encode(encoding) not in raw, f"{secret!r} stored in clear"


def test_no_telegram_chat_id_in_the_logs_at_debug(client, gw, fakes, caplog):
    caplog.set_level(logging.DEBUG)
    chat = 6912873645
    post_telegram(client, fakes["telegram"].make_update(988000001, chat, "xin chao"))
    settle(gw)
    wait_texts(fakes, "telegram", chat, 1)
    assert str(chat) not in _log_text(caplog)


@pytest.mark.parametrize("topic", ["self_harm", "emergency", "domestic_violence", "sexual_violence", "child_abuse",
                                   "forced_marriage_trafficking"])
@pytest.mark.parametrize("risk", ["high", "imminent"])
def test_every_first_reply_to_danger_carries_the_emergency_numbers(gw, risk, topic):
    """The non-negotiable rule: 113, 115 and 111 at once, the self-harm reply too; the counselling
    line only while it is verified (not yet: nobody has confirmed it answers since the merger)."""
    body = gw.kb.render(replies.text(replies.safe_reply(risk, topic)))
    for number in ("113", "115", "111"):
        assert number in body, (risk, topic, number)
    assert "1800 1581" not in body and "[[" not in body


def test_the_counselling_line_reaches_people_only_once_verified_and_open(client, gw, fakes):
    """Through the whole path: danger on SMS gets the verified numbers, unaccented; once a
    supervisor records that the line answers around the clock, the same reply carries it; a later
    'no answer' takes it out again at once (a check clears the cache)."""
    import datetime as dt

    from webhook.kbstate import record_check

    tw = fakes["twilio"]
    fakes["rasa"].down = True                  # the gateway's own safe reply (Rasa's says the same)
    post_sms(client, fakes, tw.inbound_params("+84905000601", HIGH_RISK, message_sid="SM" + "6" * 32))
    settle(gw)
    first = " ".join(wait_texts(fakes, "sms", "+84905000601", 1))
    assert all(n in first for n in ("113", "115", "111")) and "1800" not in first and first.isascii()
    record_check(gw, "service", "social_work_center", dt.date.today(), "confirmed", "admin", hours="24/7")
    post_sms(client, fakes, tw.inbound_params("+84905000602", HIGH_RISK, message_sid="SM" + "7" * 32))
    settle(gw)
    body = " ".join(wait_texts(fakes, "sms", "+84905000602", 1))
    assert "Tu van: 1800 1581 (24/7)." in body and body.index("1800") > body.index("111")
    record_check(gw, "service", "social_work_center", dt.date.today(), "no_answer", "admin", note="rang 10 times")
    post_sms(client, fakes, tw.inbound_params("+84905000603", HIGH_RISK, message_sid="SM" + "8" * 32))
    settle(gw)
    assert "1800" not in " ".join(wait_texts(fakes, "sms", "+84905000603", 1))
