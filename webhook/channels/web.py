"""The web chat: a page at / for people without SMS credit, Telegram or Zalo, and for demos.

There is no provider: the browser polls the gateway for replies, so "sending" a reply means marking
its outbox row sent. The browser's session token is random; the database keeps only its hash, and
the hash is the contact's address.
"""
from __future__ import annotations

from typing import Optional

from webhook.channels.base import Adapter, SendResult


class WebAdapter(Adapter):
    name = "web"
    redact_fields = ("text", "session")
    max_chars = 4000

    def send(self, address: str, text: str, reply_ref: Optional[str] = None) -> SendResult:
        return SendResult(True, provider_msg_id=None)
