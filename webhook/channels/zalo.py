"""Zalo Official Account (Open API v3).

Inbound: Zalo POSTs JSON events to /webhooks/zalo with
``X-ZEvent-Signature: mac=<sha256 hex of app_id + raw body + timestamp + OA secret key>``, where
timestamp is the event's own ``timestamp`` field. ``user_send_text`` is understood; images,
stickers, voice and files get the "text only" reply; ``unfollow`` stops the contact; every other
event (delivery/seen receipts, the OA's own echoes) is acknowledged and dropped.

Outbound: the consultation ("cs") endpoint with the OA access token. Access tokens last about a
day; the refresh token is single-use and rotates, so the new pair is stored (sealed) before it is
used. A reply is free only inside the reply window: within 48 hours of the person's last message
and at most 8 replies per message from them. A reply that cannot fit the window is not sent as a
paid proactive message and is not dropped: it is marked undeliverable and flagged to a counsellor.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from typing import Callable, Optional

import requests
from flask import Request

from webhook.channels.base import (EMPTY, EVENT, MEDIA, TEXT, Adapter, BadRequest, Forbidden, Inbound,
                                   SendResult, read_json)

logger = logging.getLogger(__name__)

REPLY_WINDOW_SECONDS = 48 * 3600
REPLIES_PER_INBOUND = 8
# -216: invalid or expired access token (chatwoot refreshes on it); -220: reported "expired" variant.
INVALID_TOKEN_CODES = {-216, -220}
# -230: outside the reply window; -213: not a follower; -211: out of quota (docs/channels.md).
WINDOW_CODES = {-230, -213, -211}
MEDIA_EVENTS = {"user_send_image", "user_send_sticker", "user_send_audio", "user_send_video",
                "user_send_file", "user_send_gif", "user_send_location", "user_send_link",
                "user_send_business_card"}


def signature(app_id: str, raw_body: bytes, timestamp: str, oa_secret_key: str) -> str:
    # a timestamp may hold half an emoji ("\ud83d" in the JSON): it must fail the check, not crash it
    stamp = str(timestamp).encode("utf-8", "surrogatepass")
    digest = hashlib.sha256(app_id.encode() + raw_body + stamp + oa_secret_key.encode())
    return "mac=" + digest.hexdigest()


class TokenStore:
    """Where the rotating tokens live (the gateway's database, sealed). ``load`` returns
    (access_token, refresh_token, expires_at); ``save`` must be durable before returning."""

    def __init__(self, load: Callable[[], tuple], save: Callable[[str, str, float], None]):
        self.load, self.save = load, save


class ZaloAdapter(Adapter):
    name = "zalo"
    redact_fields = ("sender", "recipient", "user_id_by_app", "text", "message", "follower")

    def __init__(self, settings, tokens: TokenStore, session: Optional[requests.Session] = None):
        self.settings = settings
        self.tokens = tokens
        self.http = session or requests.Session()
        self._refresh_lock = threading.Lock()

    # --- inbound ---------------------------------------------------------------------------------
    def verify(self, request: Request) -> None:
        given = request.headers.get("X-ZEvent-Signature", "")
        if not given:
            raise Forbidden("missing X-ZEvent-Signature")
        raw = request.get_data(cache=True)
        try:
            import json

            timestamp = str(json.loads(raw.decode("utf-8", errors="replace")).get("timestamp", ""))
        except (ValueError, AttributeError, RecursionError):
            timestamp = ""
        expected = signature(self.settings.zalo_app_id, raw, timestamp, self.settings.zalo_oa_secret_key)
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise Forbidden("bad X-ZEvent-Signature")
        # isdecimal, not isdigit: "²" is a digit that int() refuses; float() makes 5000 digits inf
        if self.settings.zalo_max_event_age and timestamp.isdecimal():
            if abs(time.time() - float(timestamp) / 1000) > self.settings.zalo_max_event_age:
                raise Forbidden("event too old")

    def parse(self, request: Request) -> list[Inbound]:
        _raw, data = read_json(request, self.settings.max_body_bytes)
        event = data.get("event_name")
        if not isinstance(event, str):
            raise BadRequest("event_name is required")
        if data.get("app_id") and str(data.get("app_id")) != self.settings.zalo_app_id:
            raise Forbidden("event for another app")
        sender = (data.get("sender") or {}).get("id") if isinstance(data.get("sender"), dict) else None
        message = data.get("message") if isinstance(data.get("message"), dict) else {}
        if event == "unfollow":
            follower = (data.get("follower") or {}).get("id") if isinstance(data.get("follower"), dict) else sender
            return [Inbound(self.name, str(follower or ""), f"unfollow:{follower}:{data.get('timestamp')}",
                            kind=EVENT, event="stopped")]
        if event == "user_send_text" or event in MEDIA_EVENTS:
            if not sender:
                raise BadRequest("sender.id is required")
            msg_id = message.get("msg_id")
            if not msg_id:
                raise BadRequest("message.msg_id is required")
            if event == "user_send_text":
                text = message.get("text")
                if text is not None and not isinstance(text, str):
                    raise BadRequest("message.text must be a string")
                kind = TEXT if text and text.strip() else EMPTY
                return [Inbound(self.name, str(sender), str(msg_id), kind=kind,
                                text=text if kind == TEXT else None, reply_ref=str(msg_id))]
            return [Inbound(self.name, str(sender), str(msg_id), kind=MEDIA, reply_ref=str(msg_id))]
        return [Inbound(self.name, str(sender or ""), f"{event}:{data.get('timestamp')}:{sender}", kind=EVENT)]

    # --- tokens ----------------------------------------------------------------------------------
    def _access_token(self) -> Optional[str]:
        access, refresh, expires_at = self.tokens.load()
        if access and (not expires_at or expires_at > time.time() + 60):
            return access
        return self._refresh(access)

    def _refresh(self, stale: Optional[str]) -> Optional[str]:
        with self._refresh_lock:
            access, refresh, expires_at = self.tokens.load()
            if access and access != stale and (not expires_at or expires_at > time.time() + 60):
                return access           # another thread refreshed while we waited
            if not refresh:
                return None
            try:
                resp = self.http.post(
                    self.settings.zalo_oauth_base.rstrip("/") + "/v4/oa/access_token",
                    headers={"secret_key": self.settings.zalo_secret_key},
                    data={"refresh_token": refresh, "app_id": self.settings.zalo_app_id,
                          "grant_type": "refresh_token"}, timeout=10)
                body = resp.json()
            except (requests.RequestException, ValueError) as exc:
                logger.warning("zalo_refresh_failed error=%s", type(exc).__name__)
                return None
            if not body.get("access_token") or not body.get("refresh_token"):
                logger.error("zalo_refresh_rejected error=%s", body.get("error"))
                return None
            expires = time.time() + float(body.get("expires_in") or 3600)
            self.tokens.save(body["access_token"], body["refresh_token"], expires)
            return body["access_token"]

    # --- outbound --------------------------------------------------------------------------------
    def send(self, address: str, text: str, reply_ref: Optional[str] = None) -> SendResult:
        token = self._access_token()
        if not token:
            return SendResult(False, retry=True, error_code="no_token")
        for attempt in range(2):
            try:
                resp = self.http.post(
                    self.settings.zalo_api_base.rstrip("/") + "/v3.0/oa/message/cs",
                    headers={"access_token": token, "Content-Type": "application/json"},
                    json={"recipient": {"user_id": address}, "message": {"text": text}}, timeout=10)
                body = resp.json()
            except (requests.RequestException, ValueError) as exc:
                # a read timeout or an unreadable answer may come after Zalo took the message
                return SendResult(False, retry=True, error_code=type(exc).__name__,
                                  ambiguous=isinstance(exc, (requests.ReadTimeout, ValueError)))
            code = body.get("error", -1)
            if code == 0:
                return SendResult(True, provider_msg_id=str((body.get("data") or {}).get("message_id") or ""))
            if code in INVALID_TOKEN_CODES and attempt == 0:
                token = self._refresh(token)
                if not token:
                    return SendResult(False, retry=True, error_code="no_token")
                continue
            if resp.status_code >= 500 or resp.status_code == 429:
                return SendResult(False, retry=True, error_code=str(code))
            # outside the window, not following, out of quota, bad request: retrying will not help;
            # the reply is flagged to a counsellor instead
            return SendResult(False, undeliverable=True, error_code=str(code))
        return SendResult(False, retry=True, error_code="token")


def within_window(last_inbound_at: Optional[float], replies_since_inbound: int, now: Optional[float] = None) -> bool:
    """Zalo's free reply window: 48 h after the person's last message, 8 replies at most."""
    if last_inbound_at is None:
        return False
    now = time.time() if now is None else now
    return now - last_inbound_at < REPLY_WINDOW_SECONDS and replies_since_inbound < REPLIES_PER_INBOUND
