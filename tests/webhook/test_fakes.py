"""Self-test of tests/fakes/providers.py, driven by the real client libraries.

* Twilio: twilio 8.2.2 ``Client(sid, token)`` with ``client.api.base_url = fake.url``. That is
  enough for ``client.messages.create``: ``Domain.absolute_url`` joins ``base_url`` with
  ``/2010-04-01/Accounts/{sid}/Messages.json`` and ``get_hostname`` leaves the URL alone when no
  edge/region is set, so no custom ``TwilioHttpClient`` is needed.
* Telegram: PTB 22.8 ``telegram.Bot(token, base_url=fake.url + "/bot")`` on an asyncio loop
  (PTB appends the token to ``base_url``; it POSTs form-encoded parameters).
* Zalo: ``requests``.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import requests

from tests.fakes import FakeTelegram, FakeTwilio, FakeZalo
from tests.fakes.providers import sms_segments

# -------------------------------------------------------------------------------------------------
# Twilio
# -------------------------------------------------------------------------------------------------


@pytest.fixture
def twilio_fake():
    with FakeTwilio(auth_token="secret-token") as fake:
        yield fake


def _twilio_client(fake, token=None):
    from twilio.rest import Client

    client = Client(fake.account_sid, token or fake.auth_token)
    client.api.base_url = fake.url
    return client


def test_twilio_send_success(twilio_fake):
    client = _twilio_client(twilio_fake)
    msg = client.messages.create(to="+84901234567", from_="+15005550006", body="Xin chào, chúng tôi ở đây",
                                 status_callback="https://gw.example/twilio/status")
    assert msg.sid.startswith("SM") and len(msg.sid) == 34
    assert msg.status == "queued" and msg.to == "+84901234567" and msg.from_ == "+15005550006"
    assert msg.num_segments == "1" and msg.date_created is not None and msg.error_code is None
    (sent,) = twilio_fake.wait_for(1)
    assert sent["to"] == "+84901234567" and sent["from_"] == "+15005550006" and sent["sid"] == msg.sid
    assert sent["body"] == "Xin chào, chúng tôi ở đây"
    assert sent["status_callback"] == "https://gw.example/twilio/status"
    call = twilio_fake.calls[-1]
    assert call.path == f"/2010-04-01/Accounts/{twilio_fake.account_sid}/Messages.json"
    assert call.form["To"] == "+84901234567" and call.headers["authorization"].startswith("Basic ")

    svc = client.messages.create(to="+84900000001", messaging_service_sid="MG" + "0" * 32, body="hi")
    assert svc.status == "accepted" and svc.messaging_service_sid == "MG" + "0" * 32
    assert twilio_fake.sent[-1]["messaging_service_sid"] == "MG" + "0" * 32
    assert client.messages(svc.sid).fetch().body == "hi"

    params = twilio_fake.status_callback_params(msg.sid, "undelivered", error_code=30003)
    assert params["MessageSid"] == msg.sid and params["MessageStatus"] == "undelivered"
    assert params["ErrorCode"] == "30003" and params["To"] == "+84901234567"


def test_twilio_unsubscribed_21610_and_auth(twilio_fake):
    from twilio.base.exceptions import TwilioRestException

    twilio_fake.unsubscribed.add("+84909999999")
    client = _twilio_client(twilio_fake)
    with pytest.raises(TwilioRestException) as err:
        client.messages.create(to="+84909999999", from_="+15005550006", body="x")
    assert err.value.code == 21610 and err.value.status == 400
    assert "unsubscribed recipient" in err.value.msg
    assert err.value.uri.endswith("/Messages.json")
    assert twilio_fake.sent == []

    with pytest.raises(TwilioRestException) as err:
        _twilio_client(twilio_fake, token="wrong").messages.create(to="+84901", from_="+1500", body="x")
    assert err.value.status == 401 and err.value.code == 20003


def test_twilio_fail_next_then_recovers(twilio_fake):
    from twilio.base.exceptions import TwilioRestException

    client = _twilio_client(twilio_fake)
    twilio_fake.fail_next(2, status=503)
    for _ in range(2):
        with pytest.raises(TwilioRestException) as err:
            client.messages.create(to="+84901", from_="+1500", body="x")
        assert err.value.status == 503
    assert client.messages.create(to="+84901", from_="+1500", body="x").status == "queued"
    assert len(twilio_fake.sent) == 1 and len(twilio_fake.calls) == 3


def test_twilio_signature_matches_request_validator(twilio_fake):
    from twilio.request_validator import RequestValidator

    url = "https://gw.example/twilio/sms"
    params = twilio_fake.inbound_params(from_="+84901234567", body="cứu tôi")
    assert RequestValidator(twilio_fake.auth_token).validate(url, params, twilio_fake.signature(url, params))


def test_sms_segments_gsm_vs_ucs2():
    assert sms_segments("a" * 160) == 1 and sms_segments("a" * 161) == 2
    assert sms_segments("ư" * 70) == 1 and sms_segments("ư" * 71) == 2  # Vietnamese -> UCS-2


# -------------------------------------------------------------------------------------------------
# Telegram
# -------------------------------------------------------------------------------------------------


@pytest.fixture
def tg_fake():
    with FakeTelegram() as fake:
        yield fake


def _run(coro):
    return asyncio.run(coro)


def test_telegram_send_blocked_and_webhook(tg_fake):
    import telegram
    from telegram.error import Forbidden

    tg_fake.blocked.add(777)

    async def scenario():
        async with telegram.Bot(tg_fake.token, base_url=tg_fake.url + "/bot") as bot:
            assert bot.username == "test_helpline_bot"
            m1 = await bot.send_message(chat_id=555, text="Xin chào")
            m2 = await bot.send_message(chat_id=555, text="Bạn an toàn không?")
            with pytest.raises(Forbidden, match="bot was blocked by the user"):
                await bot.send_message(chat_id=777, text="x")
            assert await bot.set_webhook("https://gw.example/telegram", secret_token="s3cr3t",
                                         allowed_updates=["message"])
            info = await bot.get_webhook_info()
            assert await bot.delete_webhook()
            return m1, m2, info

    m1, m2, info = _run(scenario())
    assert m2.message_id == m1.message_id + 1 and m1.chat.id == 555 and m1.text == "Xin chào"
    assert m1.chat.type == "private" and m1.from_user.is_bot
    assert info.url == "https://gw.example/telegram"
    sent = tg_fake.wait_for(2)
    assert [(s["chat_id"], s["text"]) for s in sent] == [(555, "Xin chào"), (555, "Bạn an toàn không?")]
    set_call = tg_fake.calls_to("/setWebhook")[0]
    assert set_call.form["secret_token"] == "s3cr3t"  # PTB 22.8 posts form-encoded parameters
    assert tg_fake.webhook is None


def test_telegram_wrong_token_and_fail_next(tg_fake):
    import telegram
    from telegram.error import InvalidToken, NetworkError, RetryAfter

    async def scenario():
        with pytest.raises(InvalidToken):
            async with telegram.Bot("999:WRONG", base_url=tg_fake.url + "/bot"):
                pass
        async with telegram.Bot(tg_fake.token, base_url=tg_fake.url + "/bot") as bot:
            tg_fake.fail_next(1, status=500)
            with pytest.raises(NetworkError):
                await bot.send_message(chat_id=1, text="x")
            tg_fake.fail_next(1, status=429)
            with pytest.raises(RetryAfter):
                await bot.send_message(chat_id=1, text="x")
            await bot.send_message(chat_id=1, text="ok")

    _run(scenario())
    assert [s["text"] for s in tg_fake.sent] == ["ok"]
    # JSON bodies are accepted too (what a plain requests/httpx sender would post)
    r = requests.post(f"{tg_fake.url}/bot{tg_fake.token}/sendMessage", json={"chat_id": 42, "text": "json"}, timeout=5)
    assert r.json()["ok"] and tg_fake.sent[-1]["chat_id"] == 42
    r = requests.post(f"{tg_fake.url}/botBAD/getMe", timeout=5)
    assert r.status_code == 401 and r.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}


def test_telegram_make_update_parses():
    from telegram import Update

    fake = FakeTelegram()  # helpers work without starting the server
    for kind in ("text", "photo", "sticker", "voice"):
        data = fake.make_update(10, 555, text="chồng em đánh em" if kind in ("text", "photo") else None, kind=kind)
        update = Update.de_json(json.loads(json.dumps(data)), None)
        assert update.update_id == 10 and update.effective_chat.id == 555
        assert update.effective_user.id == 555 and update.message.chat.type == "private"
        if kind == "text":
            assert update.message.text == "chồng em đánh em"
        elif kind == "photo":
            assert update.message.photo and update.message.caption == "chồng em đánh em"
        else:
            assert getattr(update.message, kind) is not None and update.message.text is None


# -------------------------------------------------------------------------------------------------
# Zalo
# -------------------------------------------------------------------------------------------------


@pytest.fixture
def zalo_fake():
    with FakeZalo(app_id="111", secret_key="app-secret", oa_secret_key="oa-secret",
                  access_token="AT0", refresh_token="RT0") as fake:
        yield fake


def _zalo_send(fake, user_id, text, token=None):
    return requests.post(
        fake.url + "/v3.0/oa/message/cs",
        headers={"access_token": token or fake.access_token},
        json={"recipient": {"user_id": user_id}, "message": {"text": text}},
        timeout=5,
    )


def _zalo_refresh(fake, refresh_token, secret="app-secret"):
    return requests.post(
        fake.url + "/v4/oa/access_token",
        headers={"secret_key": secret},
        data={"refresh_token": refresh_token, "app_id": "111", "grant_type": "refresh_token"},
        timeout=5,
    ).json()


def test_zalo_send_success_and_errors(zalo_fake):
    r = _zalo_send(zalo_fake, "u1", "Xin chào")
    body = r.json()
    assert r.status_code == 200 and body["error"] == 0 and body["message"] == "Success"
    assert body["data"]["user_id"] == "u1" and body["data"]["message_id"]
    (sent,) = zalo_fake.wait_for(lambda m: m["user_id"] == "u1")
    assert sent["text"] == "Xin chào" and sent["message_id"] == body["data"]["message_id"]

    assert _zalo_send(zalo_fake, "u1", "x", token="bogus").json()["error"] == -216
    zalo_fake.outside_window.add("u2")
    assert _zalo_send(zalo_fake, "u2", "x").json()["error"] == -230
    zalo_fake.not_followers.add("u3")
    assert _zalo_send(zalo_fake, "u3", "x").json()["error"] == -213
    zalo_fake.fail_next(1, status=502)
    assert _zalo_send(zalo_fake, "u1", "x").status_code == 502
    assert len(zalo_fake.sent) == 1


def test_zalo_refresh_rotation_and_reuse_rejected(zalo_fake):
    zalo_fake.expire_access_token()
    assert _zalo_send(zalo_fake, "u1", "x", token="AT0").json()["error"] == -216

    bad = _zalo_refresh(zalo_fake, "RT0", secret="wrong")
    assert bad["error"] < 0 and "error_description" in bad and zalo_fake.refresh_count == 0

    tokens = _zalo_refresh(zalo_fake, "RT0")
    assert tokens["access_token"] != "AT0" and tokens["refresh_token"] != "RT0" and tokens["expires_in"] == "90000"
    assert zalo_fake.refresh_count == 1
    reused = _zalo_refresh(zalo_fake, "RT0")  # single-use: the old refresh token is dead
    assert reused["error"] < 0 and "used" in reused["error_description"] and "access_token" not in reused
    assert _zalo_send(zalo_fake, "u1", "x", token="AT0").json()["error"] == -216  # old token retired
    assert _zalo_send(zalo_fake, "u1", "ok", token=tokens["access_token"]).json()["error"] == 0
    assert _zalo_refresh(zalo_fake, tokens["refresh_token"])["refresh_token"] != tokens["refresh_token"]
    assert zalo_fake.refresh_count == 2


def test_zalo_event_and_signature():
    import hashlib

    fake = FakeZalo(app_id="111", oa_secret_key="oa-secret")
    event = fake.make_event("user_send_text", "u1", text="cứu", msg_id="m1", timestamp_ms=1718000000000)
    assert event["timestamp"] == "1718000000000" and event["sender"]["id"] == "u1"
    assert event["recipient"]["id"] == fake.oa_id and event["message"] == {"msg_id": "m1", "text": "cứu"}
    raw, headers = fake.signed_webhook(event)
    expected = hashlib.sha256(b"111" + raw + b"1718000000000" + b"oa-secret").hexdigest()
    assert headers["X-ZEvent-Signature"] == "mac=" + expected == fake.sign(raw, "1718000000000")
    assert fake.make_event("follow", "u1")["follower"] == {"id": "u1"}
    assert fake.make_event("user_send_image", "u1")["message"]["attachments"][0]["type"] == "image"


# -------------------------------------------------------------------------------------------------
# Base behaviour
# -------------------------------------------------------------------------------------------------


def test_wait_for_timeout_raises_helpfully(zalo_fake):
    t0 = time.monotonic()
    with pytest.raises(AssertionError, match="FakeZalo: timed out after 0.2s waiting for 1 sent"):
        zalo_fake.wait_for(1, timeout=0.2)
    with pytest.raises(AssertionError, match="matching"):
        zalo_fake.wait_for(lambda m: m["user_id"] == "nobody", timeout=0.1)
    assert time.monotonic() - t0 < 2


def test_wait_for_wakes_up_on_send_from_another_thread(zalo_fake):
    import threading

    zalo_fake.delay = 0.05
    worker = threading.Thread(target=lambda: [_zalo_send(zalo_fake, f"u{i}", "x") for i in range(3)])
    worker.start()
    got = zalo_fake.wait_for(lambda m: m["user_id"] in ("u1", "u2"), count=2, timeout=5)
    worker.join()
    assert [m["user_id"] for m in got] == ["u1", "u2"]
    zalo_fake.reset()
    assert zalo_fake.sent == [] and zalo_fake.calls == [] and zalo_fake.delay == 0.0


def test_keepalive_many_requests_and_restart():
    fake = FakeTelegram().start()
    try:
        with requests.Session() as s:  # one keep-alive connection
            for i in range(200):
                r = s.post(f"{fake.url}/bot{fake.token}/sendMessage", data={"chat_id": str(i), "text": "t"}, timeout=5)
                assert r.status_code == 200
        assert len(fake.wait_for(200, timeout=5)) == 200
        assert fake.errors == []
    finally:
        fake.stop()
    fake.stop()  # idempotent
