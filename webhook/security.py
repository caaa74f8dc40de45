"""Limits on what strangers can make the gateway do, and the headers every answer carries.

What is limited, per client address (kept only as a keyed hash, in memory, never logged):
- console log-ins (on top of the per-account lockout in console/auth.py);
- new web-chat sessions, and messages per web-chat session;
- requests to the webhooks and the action server's API that fail their signature or token:
  beyond the limit they get 429 instead of 403.

What is never limited: a correctly signed provider webhook or a request with the right token,
whatever came before it from the same address. Twilio does not retry an SMS webhook that was
refused, so a limit there could drop a message from someone in danger (and behind a proxy every
request has the proxy's address: a stranger's bad requests must not block Twilio's).

The counts are per gateway process: behind N processes an address gets up to N times the limit,
which still stops guessing and flooding. Behind a reverse proxy set ``HELPLINE_PROXY_HOPS`` so the
client address is the one the proxy saw.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import threading
import time
from collections import deque
from typing import Optional

from flask import Flask, jsonify, request

from webhook.settings import ConfigError

# name -> (requests, per seconds); HELPLINE_LIMITS="login=10/60,webchat_message=30/60" overrides
DEFAULT_LIMITS = {
    "login": (10, 60.0),                 # log-in attempts per address
    "webchat_session": (20, 600.0),      # new web-chat sessions per address
    "webchat_message": (30, 60.0),       # messages per web-chat session
    "bad_auth": (30, 300.0),             # failed signatures / tokens per address
}


def parse_limits(spec: str) -> dict[str, tuple[int, float]]:
    limits = dict(DEFAULT_LIMITS)
    for item in filter(None, (p.strip() for p in spec.split(","))):
        try:
            name, value = item.split("=", 1)
            count, seconds = value.split("/", 1)
            limits[name.strip()] = (int(count), float(seconds))
        except ValueError:
            raise ConfigError("HELPLINE_LIMITS must look like login=10/60,webchat_message=30/60") from None
        if name.strip() not in DEFAULT_LIMITS:
            raise ConfigError(f"HELPLINE_LIMITS: unknown limit {name.strip()!r} "
                              f"(known: {', '.join(DEFAULT_LIMITS)})")
    return limits


class Throttle:
    """Sliding windows of recent hits per (limit, key). Memory stays bounded: a key's window only
    holds hits younger than its period, and idle keys are dropped as they are met."""

    MAX_KEYS = 100_000

    def __init__(self, limits: dict[str, tuple[int, float]], clock=time.monotonic):
        self.limits = limits
        self._hits: dict[tuple[str, str], deque] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def _window(self, name: str, key: str, now: float) -> deque:
        window = self._hits.get((name, key))
        if window is None:
            if len(self._hits) >= self.MAX_KEYS:
                self._prune(now)
            window = self._hits[(name, key)] = deque()
        period = self.limits[name][1]
        while window and window[0] <= now - period:
            window.popleft()
        return window

    def _prune(self, now: float) -> None:
        for (name, key), window in list(self._hits.items()):
            if not window or window[-1] <= now - self.limits[name][1]:
                del self._hits[(name, key)]
        if len(self._hits) >= self.MAX_KEYS:        # a flood of distinct keys: forget the oldest half
            for k in list(self._hits)[: self.MAX_KEYS // 2]:
                del self._hits[k]

    def hit(self, name: str, key: str) -> Optional[float]:
        """Count one request; None when allowed, else the seconds until it would be."""
        count, period = self.limits[name]
        now = self._clock()
        with self._lock:
            window = self._window(name, key, now)
            if len(window) >= count:
                return max(1.0, window[0] + period - now)
            window.append(now)
            return None


def too_many(retry_after: float):
    resp = jsonify({"error": "too many requests"})
    resp.status_code = 429
    resp.headers["Retry-After"] = str(int(retry_after + 0.999))
    return resp


def install(app: Flask, secret: str, limits: dict[str, tuple[int, float]], proxy_hops: int, https: bool) -> Throttle:
    """Wire the limits and the security headers into ``app``; returns its throttle (tests)."""
    if proxy_hops:
        from werkzeug.middleware.proxy_fix import ProxyFix
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxy_hops, x_proto=proxy_hops)
    throttle = Throttle(limits)
    app.extensions["helpline_throttle"] = throttle
    salt = hashlib.sha256(("throttle:" + secret).encode()).digest()

    def client() -> str:
        address = request.remote_addr or "-"
        if ":" in address:              # IPv6: one subscriber holds a whole /64
            try:
                address = str(ipaddress.ip_network(f"{address}/64", strict=False))
            except ValueError:
                pass
        return hmac.new(salt, address.encode(), "sha256").hexdigest()[:24]

    def guarded() -> bool:
        return request.path.startswith(("/webhooks/", "/api/"))

    @app.before_request
    def _limits():
        if request.method != "POST":
            return None
        if request.path == "/console/login":
            wait = throttle.hit("login", client())
        elif request.path == "/webchat/api/session":
            wait = throttle.hit("webchat_session", client())
        elif request.path == "/webchat/api/messages":
            session = request.headers.get("X-Webchat-Session", "")[:128]
            wait = throttle.hit("webchat_message", hashlib.sha256(session.encode()).hexdigest()) if session else None
        else:
            wait = None
        return too_many(wait) if wait else None

    @app.after_request
    def _after(resp):
        if resp.status_code in (401, 403) and guarded():
            wait = throttle.hit("bad_auth", client())
            if wait:
                resp = too_many(wait)
        # Nothing the helpline serves may be cached, framed, or leak where the person came from.
        h = resp.headers
        h["Cache-Control"] = "no-store"
        h["Referrer-Policy"] = "no-referrer"
        h["X-Content-Type-Options"] = "nosniff"
        h["X-Frame-Options"] = "DENY"
        h["Cross-Origin-Opener-Policy"] = "same-origin"
        h["Cross-Origin-Resource-Policy"] = "same-origin"
        h["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
        h.setdefault("Content-Security-Policy",
                     "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                     "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
                     "frame-ancestors 'none'")
        if https:
            h["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        return resp

    return throttle
