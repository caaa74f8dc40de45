"""The web chat: a safe page (notice, quick exit, tap-to-call hotlines, nothing cached, nothing
inline, no referrer), sessions held by the browser and stored only as a hash, send (202) and poll
(the person's own message with its client_id, the bot's replies), de-duplication, the ``after``
cursor, and the whole thing switched off by configuration."""
from __future__ import annotations

import re
import threading
import time

import pytest

from tests.conftest import said
from sqlalchemy import update

from tests.fakes import FakeTelegram, FakeTwilio, FakeZalo
from tests.fakes.rasa import FakeRasa
from tests.webhook.conftest import count, rows, settle
from webhook import replies
from webhook.db import transaction
from webhook.dispatcher import Worker
from webhook.models import Case, Contact, Message, Outbox, WebSession

HOTLINES = ("113", "115", "111")




def new_session(client) -> dict:
    resp = client.post("/webchat/api/session")
    assert resp.status_code == 201
    body = resp.get_json()
    assert isinstance(body["session"], str) and len(body["session"]) >= 32
    return {"X-Webchat-Session": body["session"]}


def send(client, headers, text, client_id=None):
    body = {"text": text}
    if client_id is not None:
        body["client_id"] = client_id
    return client.post("/webchat/api/messages", json=body, headers=headers)


def poll(client, headers, after=0) -> list[dict]:
    resp = client.get(f"/webchat/api/messages?after={after}", headers=headers)
    assert resp.status_code == 200
    return resp.get_json()["messages"]


def shape(messages) -> list[tuple]:
    return [(m["direction"], m["text"], m.get("client_id")) for m in messages]


# --- the page ---------------------------------------------------------------------------------------

def test_page_has_the_safety_notice_quick_exit_and_tap_to_call_hotlines(client, gw):
    resp = client.get("/")
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    notice = re.search(r'<section class="notice".*?</section>', html, re.S)
    assert notice and 'href="tel:113"' in notice.group(0)
    assert "Esc" in notice.group(0)
    exit_link = re.search(r'<a[^>]*id="quick-exit"[^>]*>', html)
    assert exit_link, "no quick exit"
    assert f'href="{gw.settings.webchat_exit_url}"' in exit_link.group(0)
    assert "noreferrer" in exit_link.group(0)
    assert f'data-exit-url="{gw.settings.webchat_exit_url}"' in html       # Esc uses it too
    tels = set(re.findall(r'href="tel:([^"]+)"', html))
    assert set(HOTLINES) == tels                  # the counselling line is not verified: not shown
    assert "mua bán người" in html                # 111 is for trafficking too, at any age
    assert 'lang="vi"' in html


def test_the_counselling_line_shows_on_the_page_once_verified_with_its_hours(client, gw):
    import datetime as dt

    from webhook.kbstate import record_check

    record_check(gw, "service", "social_work_center", dt.date.today(), "confirmed", "admin",
                 hours="mon-fri 07:30-11:30,13:30-17:00")
    html = client.get("/").get_data(as_text=True)
    assert 'href="tel:18001581"' in html and "T2-T6 7:30-11:30, 13:30-17:00" in html


def test_page_is_not_cached_leaks_no_referrer_and_runs_nothing_inline(client):
    resp = client.get("/")
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    csp = resp.headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert re.search(r"(default-src|script-src) 'self'", csp)
    assert "frame-ancestors 'none'" in csp
    html = resp.get_data(as_text=True)
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S | re.I)
    assert scripts, "the page loads its script"
    for attrs, body in scripts:
        assert "src=" in attrs and body.strip() == "", "inline <script> content"
    assert not re.search(r"\son[a-z]+\s*=", html, re.I), "inline event handler"
    assert "javascript:" not in html.lower()
    assert not re.search(r"\sstyle\s*=", html, re.I) and "<style" not in html.lower()
    # the script and the stylesheet it needs come from 'self', under the same headers
    src = re.search(r'<script[^>]*src="([^"]+)"', html).group(1)
    js = client.get(src)
    assert js.status_code == 200 and "javascript" in js.mimetype
    assert js.headers["Cache-Control"] == "no-store"


# --- sessions, send and poll ------------------------------------------------------------------------

def test_session_send_and_poll_returns_my_message_and_the_bot_reply(client, gw, fakes):
    resp = client.post("/webchat/api/session")
    assert resp.status_code == 201
    assert resp.get_json()["poll_ms"] == gw.settings.webchat_poll_ms
    headers = {"X-Webchat-Session": resp.get_json()["session"]}
    sent = send(client, headers, "toi can tu van", client_id="c-1")
    assert sent.status_code == 202
    msg_id = sent.get_json()["id"]
    assert isinstance(msg_id, int)
    settle(gw)
    got = poll(client, headers)
    assert shape(got) == [("in", "toi can tu van", "c-1"), ("out", "bot: toi can tu van", None)]
    assert got[0]["id"] < got[1]["id"]
    assert fakes["rasa"].calls[0]["input_channel"] == "web"
    assert fakes["rasa"].calls[0]["sender"].startswith("web-")
    assert rows(gw, Message)[0].client_ref == "c-1"


def test_unknown_missing_or_expired_session_is_403(client, gw):
    for headers in ({}, {"X-Webchat-Session": ""}, {"X-Webchat-Session": "not-a-session"},
                    {"X-Webchat-Session": "x" * 200}):
        assert send(client, headers, "xin chao").status_code == 403
        assert client.get("/webchat/api/messages", headers=headers).status_code == 403
    headers = new_session(client)
    with transaction(gw.Session) as s:              # a day passes
        s.execute(update(WebSession).values(last_seen_at=time.time() - 25 * 3600))
    assert send(client, headers, "xin chao").status_code == 403
    assert client.get("/webchat/api/messages", headers=headers).status_code == 403
    assert count(gw, Message) == 0 and count(gw, Contact) == 0


def test_resending_the_same_client_id_is_de_duplicated(client, gw, fakes):
    headers = new_session(client)
    first = send(client, headers, "cho hoi dia chi", client_id="same-1")
    again = send(client, headers, "cho hoi dia chi", client_id="same-1")
    assert first.status_code == again.status_code == 202
    assert first.get_json()["id"] == again.get_json()["id"]
    settle(gw)
    assert send(client, headers, "cho hoi dia chi", client_id="same-1").get_json()["id"] == first.get_json()["id"]
    settle(gw)
    assert count(gw, Message) == 1
    assert [c["message"] for c in fakes["rasa"].calls] == ["cho hoi dia chi"]
    assert shape(poll(client, headers)) == [("in", "cho hoi dia chi", "same-1"), ("out", "bot: cho hoi dia chi", None)]


def test_the_same_client_id_in_two_sessions_is_two_messages(client, gw, fakes):
    a, b = new_session(client), new_session(client)
    send(client, a, "toi la A", client_id="1")
    send(client, b, "toi la B", client_id="1")
    settle(gw)
    assert count(gw, Message) == 2
    assert shape(poll(client, a)) == [("in", "toi la A", "1"), ("out", "bot: toi la A", None)]
    assert shape(poll(client, b)) == [("in", "toi la B", "1"), ("out", "bot: toi la B", None)]


def test_empty_text_gets_a_polite_reply_without_rasa(client, gw, fakes):
    headers = new_session(client)
    for i, text in enumerate(["", "   ", "\n\t"]):
        assert send(client, headers, text, client_id=f"e{i}").status_code == 202
    assert client.post("/webchat/api/messages", json={"client_id": "e9"}, headers=headers).status_code == 202
    settle(gw)
    assert fakes["rasa"].calls == []
    got = poll(client, headers)
    assert shape(got) == [("out", said(gw, replies.EMPTY), None)] * 4
    assert {m.kind for m in rows(gw, Message)} == {"empty"}


def test_rasa_down_the_web_chat_shows_the_safe_reply_then_the_bot(client, gw, fakes):
    headers = new_session(client)
    fakes["rasa"].down = True
    send(client, headers, "xin chao", client_id="d1")
    settle(gw)
    assert shape(poll(client, headers)) == [("in", "xin chao", "d1"), ("out", said(gw, replies.DEGRADED), None)]
    fakes["rasa"].down = False
    Worker(gw).run_once()
    assert shape(poll(client, headers))[-1] == ("out", "bot: xin chao", None)


def test_danger_in_the_web_chat_opens_a_rules_case(client, gw, fakes):
    headers = new_session(client)
    send(client, headers, "chong em dang cam dao doi giet em", client_id="h1")
    settle(gw)
    assert [(c.source, c.risk) for c in rows(gw, Case)] == [("rules", "imminent")]


def test_after_cursor_returns_only_newer_messages(client, gw, fakes):
    headers = new_session(client)
    send(client, headers, "mot", client_id="m1")
    settle(gw)
    first = poll(client, headers)
    assert shape(first) == [("in", "mot", "m1"), ("out", "bot: mot", None)]
    cursor = first[-1]["id"]
    assert poll(client, headers, after=cursor) == []
    send(client, headers, "hai", client_id="m2")
    settle(gw)
    newer = poll(client, headers, after=cursor)
    assert shape(newer) == [("in", "hai", "m2"), ("out", "bot: hai", None)]
    assert all(m["id"] > cursor for m in newer)
    assert poll(client, headers, after=newer[-1]["id"]) == []
    assert shape(poll(client, headers)) == shape(first) + shape(newer)          # ids are stable
    assert [m["id"] for m in poll(client, headers)] == [m["id"] for m in first + newer]
    assert client.get("/webchat/api/messages?after=abc", headers=headers).status_code == 400


def test_a_reply_sent_after_a_newer_message_was_polled_is_still_shown(make_app, tmp_path, fakes):
    # One web reply per second: the window between a reply's creation and its "sent" (in production a
    # few ms of sending and waiting for the write lock) is widened so the race is deterministic.
    app = make_app(rate_limits={"web": 1.0})
    gw = app.extensions["helpline"]
    gw.spool.dir = tmp_path / "spool"
    client = app.test_client()
    headers = new_session(client)
    send(client, headers, "mot", client_id="m1")
    settle(gw)
    send(client, headers, "hai", client_id="m2")
    deadline = time.monotonic() + 5
    while count(gw, Outbox) < 2 and time.monotonic() < deadline:     # the reply to "hai" exists ...
        time.sleep(0.005)
    assert rows(gw, Outbox)[1].state != "sent"                        # ... and waits for its turn
    send(client, headers, "ba", client_id="m3")                       # the person writes again,
    seen = poll(client, headers)                                      # and the page polls at once
    assert shape(seen) == [("in", "mot", "m1"), ("out", "bot: mot", None), ("in", "hai", "m2"), ("in", "ba", "m3")]
    settle(gw)
    assert count(gw, Outbox, Outbox.state == "sent") == 3
    later = poll(client, headers, after=seen[-1]["id"])
    assert [m["text"] for m in later if m["direction"] == "out"] == ["bot: hai", "bot: ba"]


def test_the_session_token_is_never_stored(client, gw, fakes, tmp_path):
    token = new_session(client)["X-Webchat-Session"]
    headers = {"X-Webchat-Session": token}
    send(client, headers, "xin chao", client_id="t1")
    settle(gw)
    poll(client, headers)
    gw.engine.dispose()
    raw = b"".join(p.read_bytes() for p in sorted(tmp_path.glob("gw.db*")))
    assert count(gw, WebSession) == 1 and count(gw, Message) == 1
    assert token.encode() not in raw
    assert token[:16].encode() not in raw
    assert b"xin chao" not in raw


def test_web_chat_disabled_is_404(make_app, tmp_path):
    app = make_app(webchat_enabled=False)
    client = app.test_client()
    assert "web" not in app.extensions["helpline"].adapters
    for resp in (client.get("/"), client.post("/webchat/api/session")):
        assert resp.status_code == 404
        assert resp.get_json()["error"]
    assert client.get("/healthz").status_code == 200          # the rest of the gateway is there


def test_web_chat_disabled_refuses_sessions_from_before(make_app, tmp_path, fakes):
    on = make_app()
    on.extensions["helpline"].spool.dir = tmp_path / "spool"
    headers = new_session(on.test_client())
    off = make_app(webchat_enabled=False)
    gw = off.extensions["helpline"]
    gw.spool.dir = tmp_path / "spool"
    client = off.test_client()
    assert send(client, headers, "xin chao", client_id="x1").status_code == 404
    assert client.get("/webchat/api/messages", headers=headers).status_code == 404
    settle(gw)
    assert count(gw, Message) == 0 and count(gw, Case) == 0
