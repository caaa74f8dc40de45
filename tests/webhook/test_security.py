"""Limits on strangers and the headers every answer carries (webhook/security.py); the per-account
lockout is in test_console.py, production's refusal of weak settings in test_settings.py."""
from __future__ import annotations

import pytest

from tests.webhook.conftest import API_TOKEN, post_sms
from tests.webhook.test_console import login
from webhook.console import auth
from webhook.security import DEFAULT_LIMITS, Throttle, parse_limits
from webhook.settings import ConfigError


def _from(client, address: str):
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_console_logins_are_limited_per_address_on_top_of_the_account_lockout(make_app):
    app = make_app(limits="login=4/60")
    auth.create_staff(app.extensions["helpline"], "lan", "correct horse battery", "counsellor")
    guesser = _from(app.test_client(), "203.0.113.7")
    codes = [guesser.post("/console/login", data={"username": f"u{i}", "password": "x", "csrf": "-"}).status_code
             for i in range(6)]
    # refused for CSRF first (403), then 429 whatever the form holds: guessing costs the guesser
    assert codes[:4] == [403] * 4 and codes[4:] == [429, 429]
    resp = guesser.post("/console/login", data={})
    assert resp.status_code == 429 and 1 <= int(resp.headers["Retry-After"]) <= 60
    # a counsellor at another address logs in normally
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "198.51.100.20"
    page = client.get("/console/login")
    assert page.status_code == 200
    assert login(app, "lan").last.status_code == 302


def test_web_chat_sessions_per_address_and_messages_per_session_are_limited(make_app):
    app = make_app(limits="webchat_session=3/600,webchat_message=5/60")
    client = _from(app.test_client(), "203.0.113.8")
    tokens = [client.post("/webchat/api/session") for _ in range(4)]
    assert [r.status_code for r in tokens] == [201, 201, 201, 429]
    first, second = tokens[0].get_json()["session"], tokens[1].get_json()["session"]
    sent = [client.post("/webchat/api/messages", json={"text": f"xin chao {i}", "client_id": f"c{i}"},
                        headers={"X-Webchat-Session": first}).status_code for i in range(6)]
    assert sent == [202] * 5 + [429]
    # the refused one was not stored (the page keeps it and sends it again after Retry-After)
    gw = app.extensions["helpline"]
    gw.dispatcher.drain()
    from tests.webhook.conftest import count
    from webhook.models import Message
    assert count(gw, Message) == 5
    # another session (another tab, another person behind the same address) is not held up
    assert client.post("/webchat/api/messages", json={"text": "xin chao"},
                       headers={"X-Webchat-Session": second}).status_code == 202


def test_failed_signatures_beyond_the_limit_get_429_but_a_signed_webhook_always_passes(make_app, fakes):
    app = make_app(limits="bad_auth=3/300")
    client = _from(app.test_client(), "203.0.113.9")
    params = {"MessageSid": "SM" + "1" * 32, "AccountSid": "{account_sid}", "From": "+84905000111",
              "To": "+15005550006", "Body": "xin chao", "NumMedia": "0"}
    bad = [post_sms(client, fakes, params, signature="forged").status_code for _ in range(5)]
    assert bad == [403, 403, 403, 429, 429]
    escalation = client.post("/api/v1/escalations", json={"conversation_id": "x"},
                             headers={"Authorization": "Bearer wrong"})
    assert escalation.status_code == 429
    # the same address (a proxy in front of Twilio, say) with a real signature is never refused
    assert post_sms(client, fakes, params).status_code == 200
    assert client.post("/api/v1/escalations", json={"conversation_id": "nobody"},
                       headers={"Authorization": f"Bearer {API_TOKEN}"}).status_code == 404


def test_security_headers_on_the_web_chat_the_console_and_the_api(make_app):
    client = make_app().test_client()
    for path in ("/", "/console/login", "/healthz", "/webchat/api/messages"):
        h = client.get(path).headers
        csp = h["Content-Security-Policy"]
        for directive in ("default-src 'self'", "script-src 'self'", "object-src 'none'", "base-uri 'none'",
                          "frame-ancestors 'none'", "form-action 'self'"):
            assert directive in csp, (path, directive)
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert h["X-Frame-Options"] == "DENY" and h["X-Content-Type-Options"] == "nosniff"
        assert h["Referrer-Policy"] == "no-referrer" and h["Cache-Control"] == "no-store"
        assert h["Strict-Transport-Security"].startswith("max-age=")     # the test gateway's address is https
    plain = make_app(public_url="http://127.0.0.1:8000").test_client().get("/")
    assert "Strict-Transport-Security" not in plain.headers


def test_console_cookies_are_httponly_samesite_strict_and_secure_over_https(make_app):
    app = make_app()
    auth.create_staff(app.extensions["helpline"], "lan", "correct horse battery", "counsellor")
    client = login(app, "lan")
    cookies = client.last.headers.getlist("Set-Cookie")
    session = [c for c in cookies if not c.startswith("hl_login=")]
    assert session and all("HttpOnly" in c and "SameSite=Strict" in c and "Secure" in c and "Path=/console" in c
                           for c in session)


def test_the_client_address_behind_a_proxy_is_the_forwarded_one_only_when_configured(make_app):
    app = make_app(limits="webchat_session=1/600", proxy_hops=1)
    client = app.test_client()
    hdr = lambda ip: {"X-Forwarded-For": ip}                       # noqa: E731
    assert client.post("/webchat/api/session", headers=hdr("203.0.113.1")).status_code == 201
    assert client.post("/webchat/api/session", headers=hdr("203.0.113.2")).status_code == 201
    assert client.post("/webchat/api/session", headers=hdr("203.0.113.1")).status_code == 429
    # without proxy_hops a forged header changes nothing: the connection's address counts
    direct = make_app(limits="webchat_session=1/600").test_client()
    assert direct.post("/webchat/api/session", headers=hdr("203.0.113.3")).status_code == 201
    assert direct.post("/webchat/api/session", headers=hdr("203.0.113.4")).status_code == 429


def test_an_ipv6_subscriber_is_one_address_for_the_limits(make_app):
    """One home or phone gets a whole /64: changing the last bits must not buy new attempts."""
    app = make_app(limits="webchat_session=2/600")
    client = app.test_client()
    codes = [_from(client, f"2001:db8:1:2::{i:x}").post("/webchat/api/session").status_code for i in range(1, 4)]
    assert codes == [201, 201, 429]
    assert _from(client, "2001:db8:1:3::1").post("/webchat/api/session").status_code == 201   # another /64


def test_the_throttle_window_slides_and_forgets_idle_keys():
    now = [1000.0]
    t = Throttle({"login": (2, 60.0)}, clock=lambda: now[0])
    assert t.hit("login", "a") is None and t.hit("login", "a") is None
    assert t.hit("login", "a") == pytest.approx(60.0)
    now[0] += 30
    assert t.hit("login", "a") == pytest.approx(30.0)
    now[0] += 30.5
    assert t.hit("login", "a") is None                             # the first two left the window
    t.MAX_KEYS = 10
    for i in range(50):
        t.hit("login", f"k{i}")
    assert len(t._hits) <= 10


def test_limits_are_parsed_or_refused_with_the_variable_named():
    assert parse_limits("") == DEFAULT_LIMITS
    assert parse_limits("login=3/30")["login"] == (3, 30.0)
    for bad in ("login=3", "login=x/1", "logins=3/30"):
        with pytest.raises(ConfigError, match="HELPLINE_LIMITS"):
            parse_limits(bad)
