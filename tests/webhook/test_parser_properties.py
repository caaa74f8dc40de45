"""Property-based tests of the channel parsers (hypothesis).

Whatever reaches a webhook (random JSON, random form fields, broken UTF-8, deep nesting, huge
strings, correctly signed or not), ``verify`` then ``parse`` either give well-formed ``Inbound``
items or raise the channel's ``BadRequest`` or ``Forbidden`` (400 or 403 at the edge, with a
message that never repeats the payload, since the route logs it); any other exception would be a
500. A well-formed payload keeps its text and sender exactly. The web chat has no provider: its
"parser" is the route, so it is tested through the app.

Payloads are built and signed by the fake providers' own code (tests/fakes), not the gateway's.
"""
from __future__ import annotations

import json
import logging
import string
from dataclasses import replace

import pytest
from flask import Request
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder

from bot.nlu.normalize import clean
from tests.fakes import FakeTelegram, FakeTwilio, FakeZalo
from tests.webhook.conftest import PUBLIC, TG_SECRET
from webhook.channels.base import EMPTY, EVENT, MEDIA, TEXT, BadRequest, Forbidden, Inbound
from webhook.channels.sms import SmsAdapter
from webhook.channels.telegram import TelegramAdapter
from webhook.channels.zalo import MEDIA_EVENTS, TokenStore, ZaloAdapter
from webhook.settings import Settings

FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# not started: only their payload builders and signers are used
TW, TG, ZA = FakeTwilio(), FakeTelegram(), FakeZalo()
SETTINGS = Settings(public_url=PUBLIC, twilio_account_sid=TW.account_sid, twilio_auth_token=TW.auth_token,
                    telegram_token=TG.token, telegram_secret=TG_SECRET, zalo_app_id=ZA.app_id,
                    zalo_secret_key=ZA.secret_key, zalo_oa_secret_key=ZA.oa_secret_key)
NO_TOKENS = TokenStore(lambda: (None, None, None), lambda *_: None)
ADAPTERS = {"sms": SmsAdapter(SETTINGS), "telegram": TelegramAdapter(SETTINGS),
            "zalo": ZaloAdapter(SETTINGS, NO_TOKENS)}
ZALO_MAX_AGE = ZaloAdapter(replace(SETTINGS, zalo_max_event_age=300.0), NO_TOKENS)
# a mark put in every generated text and sender, to see that no error message repeats them
MARK = "☎0905"

# --- strategies -------------------------------------------------------------------------------

# lone surrogates too: half an emoji, as a JSON escape or as broken UTF-8
any_text = st.lists(st.sampled_from(["\ud83d", "\ude22", "\udfff"]) | st.characters(exclude_categories=()),
                    max_size=20).map("".join)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-2**70, 2**70),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20), any_text)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)


def shaped(keys: list[str]):
    """JSON objects made of a provider's own field names (so parsing goes deep) and random values."""
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.sampled_from(keys) | st.text(max_size=6), inner, max_size=6),
                        max_leaves=25)


TG_KEYS = ["message_id", "date", "chat", "from", "id", "type", "text", "caption", "first_name", "is_bot",
           "photo", "sticker", "voice", "document", "file_id", "file_unique_id", "width", "height", "entities",
           "new_chat_member", "old_chat_member", "status", "user", "until_date"]
tg_updates = st.fixed_dictionaries(
    {"update_id": st.integers()},
    optional={k: shaped(TG_KEYS) for k in ("message", "edited_message", "channel_post", "my_chat_member")})
ZALO_EVENTS = ["user_send_text", "unfollow", "follow", "user_received_message", *sorted(MEDIA_EVENTS)]


@st.composite
def tg_near_updates(draw):
    """A real update with some of the fields the gateway reads replaced by anything: PTB does
    not check types, so a chat id may arrive as a list and a text as a number."""
    update = TG.make_update(draw(st.integers(0, 2**31)), 1, "xin chào")
    message = update["message"]
    for key, where in (("id", message["chat"]), ("type", message["chat"]), ("text", message),
                       ("caption", message), ("from", message)):
        if draw(st.booleans()):
            where[key] = draw(scalars | json_values)
    return update


@st.composite
def zalo_near_events(draw):
    """A real text event with some of the fields the gateway reads replaced by anything."""
    event = ZA.make_event(draw(st.sampled_from(ZALO_EVENTS)), "84001", "xin chào")
    for key, where in (("id", event.get("sender", {})), ("msg_id", event.get("message", {})),
                       ("text", event.get("message", {})), ("app_id", event), ("timestamp", event)):
        if draw(st.booleans()):
            where[key] = draw(scalars | json_values)
    return event


zalo_events = st.fixed_dictionaries({}, optional={
    "event_name": st.sampled_from(ZALO_EVENTS) | json_values,
    "app_id": st.just(ZA.app_id) | json_values,
    "sender": shaped(["id"]), "follower": shaped(["id"]), "recipient": shaped(["id"]),
    "message": shaped(["msg_id", "text", "attachments", "msg_ids"]),
    "timestamp": st.integers(0, 2**45).map(str) | json_values,
})
TWILIO_FIELDS = ["MessageSid", "SmsMessageSid", "AccountSid", "From", "To", "Body", "NumMedia", "SmsStatus"]
forms = st.dictionaries(st.sampled_from(TWILIO_FIELDS) | st.text(min_size=1, max_size=8),
                        st.text(max_size=40).map(lambda v: MARK + v), max_size=10)
deep_json = st.integers(100, 50_000).map(lambda n: ("[" * n + "]" * n).encode())
bodies = st.one_of(st.binary(max_size=300), deep_json, st.builds(lambda n: b'{"x": "' + b"a" * n + b'"}',
                                                                   st.integers(200_000, 400_000)))
messages = st.text(max_size=300).map(lambda t: MARK + t) | st.text(max_size=300)   # incl. empty, only spaces


# --- helpers ----------------------------------------------------------------------------------

def post(path: str, data, headers=None, content_type=None) -> Request:
    return Request(EnvironBuilder(path=path, method="POST", data=data, headers=headers,
                                  content_type=content_type).get_environ())


def outcome(channel: str, request: Request):
    """The parsed items, or the BadRequest/Forbidden raised; anything else fails the test."""
    adapter = ADAPTERS[channel]
    try:
        adapter.verify(request)
        items = adapter.parse(request)
    except (BadRequest, Forbidden) as exc:
        assert str(exc) and MARK not in str(exc)
        return exc
    assert isinstance(items, list) and items
    for item in items:
        assert isinstance(item, Inbound) and item.channel == channel
        assert isinstance(item.address, str) and isinstance(item.provider_msg_id, str) and item.provider_msg_id
        assert item.kind in (TEXT, MEDIA, EMPTY, EVENT) and item.event in (None, "stopped")
        if item.kind == TEXT:
            assert isinstance(item.text, str) and clean(item.text).strip()
        else:
            assert item.text is None
        assert item.reply_ref is None or isinstance(item.reply_ref, str)
        storable(item)
    return items


def storable(item: Inbound) -> None:
    """Every string can be stored and sealed: no lone surrogate (half an emoji) is left."""
    for value in (item.address, item.provider_msg_id, item.text, item.reply_ref, item.client_ref):
        if value is not None:
            value.encode("utf-8")


def sms_request(params: dict, signature: str | None = None, path: str = "/webhooks/sms") -> Request:
    sig = TW.signature(PUBLIC + path, params) if signature is None else signature
    return post(path, params, headers={"X-Twilio-Signature": sig})


def telegram_request(body, secret: str = TG_SECRET) -> Request:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return post("/webhooks/telegram", raw, {"X-Telegram-Bot-Api-Secret-Token": secret}, "application/json")


def zalo_request(event, escaped: bool = False) -> Request:
    """Signed as Zalo signs: over the raw body and the event's own timestamp. Half an emoji comes
    as broken UTF-8, or ``escaped`` as a JSON escape."""
    raw = json.dumps(event, ensure_ascii=escaped).encode("utf-8", "surrogatepass")
    timestamp = str(event.get("timestamp", "")) if isinstance(event, dict) else ""
    try:
        signature = ZA.sign(raw, timestamp)
    except UnicodeEncodeError:          # no signature is defined over half an emoji: sent unsigned
        signature = "mac=unsigned"
    return post("/webhooks/zalo", raw, {"X-ZEvent-Signature": signature}, "application/json")


# --- SMS (Twilio) -----------------------------------------------------------------------------

@FAST
@given(forms)
def test_sms_any_signed_form_parses_or_is_refused(params):
    outcome("sms", sms_request(params))


@FAST
@given(bodies, st.one_of(st.none(), st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=40)))
def test_sms_any_body_and_signature_is_refused_cleanly(body, signature):
    headers = {} if signature is None else {"X-Twilio-Signature": signature}
    result = outcome("sms", post("/webhooks/sms", body, headers, "application/x-www-form-urlencoded"))
    assert isinstance(result, Forbidden)


@FAST
@given(st.from_regex(r"\+84[35789][0-9]{8}", fullmatch=True), messages)
def test_sms_text_and_sender_round_trip(sender, body):
    params = TW.inbound_params(sender, body)
    [item] = outcome("sms", sms_request(params))
    assert item.address == sender and item.provider_msg_id == params["MessageSid"]
    assert (item.kind, item.text) == ((TEXT, body) if clean(body).strip() else (EMPTY, None))


# --- Telegram ---------------------------------------------------------------------------------

@FAST
@given(st.one_of(tg_updates, tg_near_updates(), json_values))
@example({"update_id": 1, "my_chat_member": {"date": 0, "from": {"id": 1, "is_bot": False, "first_name": "a"}}})
@example({"update_id": 2, "message": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}, "text": [1]}})
@example({"update_id": 3, "message": {"message_id": 1, "date": 0, "chat": {"id": "\udc00", "type": "private"},
                                      "text": "xin chào"}})
def test_telegram_any_update_parses_or_is_refused(update):
    result = outcome("telegram", telegram_request(update))
    if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
        assert isinstance(result, BadRequest)


@FAST
@given(bodies, st.sampled_from([TG_SECRET, "", "wrong", TG_SECRET + "x"]))
def test_telegram_any_body_is_refused_cleanly(body, secret):
    result = outcome("telegram", telegram_request(body, secret))
    assert isinstance(result, BadRequest if secret == TG_SECRET else Forbidden)


@FAST
@given(st.integers(1, 2**52), messages, st.integers(0, 2**31))
def test_telegram_text_and_chat_round_trip(chat_id, text, update_id):
    [item] = outcome("telegram", telegram_request(TG.make_update(update_id, chat_id, text)))
    assert item.address == str(chat_id) and item.provider_msg_id == str(update_id)
    assert (item.kind, item.text) == ((TEXT, text) if clean(text).strip() else (EMPTY, None))


# --- Zalo -------------------------------------------------------------------------------------

@FAST
@given(st.one_of(zalo_events, zalo_near_events(), json_values), st.booleans())
@example(ZA.make_event("user_send_text", "84\ud83d", "xin chào", msg_id="\ude22"), True)
@example({"timestamp": "\ud83d"}, True)
def test_zalo_any_signed_event_parses_or_is_refused(event, escaped):
    outcome("zalo", zalo_request(event, escaped))


@FAST
@given(bodies, st.one_of(st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=70),
                        st.just("mac=" + "0" * 64)))
def test_zalo_any_body_and_signature_is_refused_cleanly(body, signature):
    result = outcome("zalo", post("/webhooks/zalo", body, {"X-ZEvent-Signature": signature}, "application/json"))
    assert isinstance(result, Forbidden)


@FAST
@given(st.one_of(st.text(max_size=30), st.text(string.digits, min_size=15, max_size=5000),
                 st.sampled_from(["²", "٣٤", "1e9", "-5", " 7", "1" * 4301])))
def test_zalo_any_timestamp_is_fresh_or_refused(timestamp):
    """With a maximum event age set, the signed timestamp is checked: any value is either fresh
    or refused, never a crash (Unicode digits, 5000 digits)."""
    adapter = ZALO_MAX_AGE
    event = ZA.make_event("user_send_text", "84001", "xin chào", timestamp_ms=timestamp)
    raw, headers = ZA.signed_webhook(event)
    request = post("/webhooks/zalo", raw, headers, "application/json")
    try:
        adapter.verify(request)
    except Forbidden:
        return
    assert adapter.parse(request)[0].text == "xin chào"


@FAST
@given(st.text(string.digits, min_size=1, max_size=19), messages, st.text(string.hexdigits, min_size=1, max_size=32))
def test_zalo_text_and_sender_round_trip(user_id, text, msg_id):
    [item] = outcome("zalo", zalo_request(ZA.make_event("user_send_text", user_id, text, msg_id=msg_id)))
    assert (item.address, item.provider_msg_id, item.reply_ref) == (user_id, msg_id, msg_id)
    assert (item.kind, item.text) == ((TEXT, text) if clean(text).strip() else (EMPTY, None))


# --- the web chat (through the app: its parser is the route) ----------------------------------

APP_TEST = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture
def web(make_app, tmp_path):
    """The app and a maker of fresh web chat sessions (one per example; limits out of the way)."""
    app = make_app(run_dispatcher=False, limits="webchat_session=100000/1,webchat_message=100000/1")
    app.extensions["helpline"].spool.dir = tmp_path / "spool"
    client = app.test_client()

    def session() -> dict:
        return {"X-Webchat-Session": client.post("/webchat/api/session").get_json()["session"]}

    return client, session


web_bodies = st.fixed_dictionaries({}, optional={"text": scalars, "client_id": scalars | json_values})


@APP_TEST
@given(st.one_of(json_values, web_bodies).map(lambda v: json.dumps(v).encode()) | bodies)
@example(b"[" * 5000)
@example(json.dumps({"text": "xin chào", "client_id": "x\udc00"}).encode())
def test_web_any_body_is_taken_or_refused(web, body):
    client, session = web
    resp = client.post("/webchat/api/messages", data=body, headers=session(), content_type="application/json")
    assert resp.status_code in (202, 400, 413), resp.status_code
    assert resp.is_json and (resp.status_code == 202) == ("id" in resp.get_json())


@APP_TEST
@given(messages, st.one_of(st.none(), st.text(min_size=1, max_size=100)))
def test_web_text_and_client_id_round_trip(web, caplog, text, client_id):
    caplog.set_level(logging.DEBUG)
    client, session = web
    headers = session()
    body = {"text": text} if client_id is None else {"text": text, "client_id": client_id}
    assert client.post("/webchat/api/messages", json=body, headers=headers).status_code == 202
    shown = client.get("/webchat/api/messages", headers=headers).get_json()["messages"]
    if not clean(text).strip():
        assert shown == []
        return
    [item] = shown
    assert (item["direction"], item["text"]) == ("in", text)
    if client_id is not None:
        assert item["client_id"] == client_id[:64]
    assert MARK not in caplog.text                  # a log line can be a disclosure
