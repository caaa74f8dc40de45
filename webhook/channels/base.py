"""The one interface every channel implements: verify, parse, render, send, redact.

Adding a channel is one module here and one table of recorded payloads in the tests. Adapters
know their provider's protocol and nothing about Rasa, the database or the queue; the pipeline
(``webhook.pipeline``) decides what happens to what they parse, and the sender decides what to do
with a ``SendResult``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

from flask import Request, Response

from bot.nlu.normalize import clean


class BadRequest(Exception):
    """Malformed payload: 400, nothing stored. The message says what was wrong (never echoes the
    payload, which may hold a message or a phone number)."""


class Forbidden(Exception):
    """Missing or wrong signature/secret: 403, nothing stored."""


TEXT, MEDIA, EMPTY, EVENT = "text", "media", "empty", "event"


@dataclass
class Inbound:
    channel: str
    address: str                 # where replies go: phone number, chat id, Zalo user id, web session
    provider_msg_id: str         # the provider's id for this delivery: the de-duplication key
    kind: str = TEXT             # text | media | empty | event
    text: Optional[str] = None
    reply_ref: Optional[str] = None   # Zalo: the person's message id that replies quote
    event: Optional[str] = None       # for kind=event: "stopped" (unfollow, bot blocked) or None
    client_ref: Optional[str] = None  # web chat: the browser's id for optimistic display

    def __post_init__(self):
        # an emoji cut in half cannot be stored: U+FFFD, as for broken UTF-8 (in ids too: a web
        # chat's client id or a chat id is whatever the sender put there)
        for name in ("address", "provider_msg_id", "text", "reply_ref", "client_ref"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.encode("utf-16", "surrogatepass").decode("utf-16", "replace"))
        if self.kind == TEXT and self.text is not None and not clean(self.text).strip():
            self.kind, self.text = EMPTY, None     # only invisible characters


@dataclass
class SendResult:
    ok: bool
    provider_msg_id: Optional[str] = None
    retry: bool = False          # temporary failure: try again later
    retry_after: Optional[float] = None
    stop_contact: bool = False   # the person or provider refuses messages (21610, bot blocked)
    undeliverable: bool = False  # cannot be delivered on this channel now: flag to a counsellor
    error_code: Optional[str] = None
    ambiguous: bool = False      # the request may have reached the provider (timeout, connection lost)


class Adapter:
    name = "base"
    #: payload fields that identify a person or carry their words: never logged
    redact_fields: tuple[str, ...] = ()
    #: longest text one outbound message may carry on this channel
    max_chars = 2000

    def verify(self, request: Request) -> None:
        raise NotImplementedError

    def parse(self, request: Request) -> list[Inbound]:
        raise NotImplementedError

    def ack(self, inbound: list[Inbound]) -> Response:
        """The fast answer to the provider once the messages are stored."""
        return Response("ok", status=200, mimetype="text/plain")

    def render(self, text: str) -> list[str]:
        """One reply as the messages this channel will actually send (split at word boundaries)."""
        return split_words(text, self.max_chars)

    def send(self, address: str, text: str, reply_ref: Optional[str] = None) -> SendResult:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def redact(self, payload: dict) -> dict:
        """A copy safe for logs and error reports."""
        return redact(payload, self.redact_fields)


def redact(payload, fields: tuple[str, ...]):
    if isinstance(payload, dict):
        return {k: ("[redacted]" if k in fields else redact(v, fields)) for k, v in payload.items()}
    if isinstance(payload, list):
        return [redact(v, fields) for v in payload]
    return payload


def split_words(text: str, limit: int) -> list[str]:
    """Split at spaces so no word is cut; a single word longer than ``limit`` is cut hard."""
    text = " ".join(text.split(" ")) if text else ""
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    current = ""
    for word in text.split(" "):
        while len(word) > limit:
            if current:
                parts.append(current)
                current = ""
            parts.append(word[:limit])
            word = word[limit:]
        candidate = f"{current} {word}" if current else word
        if len(candidate) <= limit:
            current = candidate
        else:
            parts.append(current)
            current = word
    if current:
        parts.append(current)
    return [p for p in parts if p]


def read_json(request: Request, max_bytes: int) -> tuple[bytes, dict]:
    """The raw body (signatures are computed over it) and its JSON, tolerant of broken UTF-8."""
    raw = request.get_data(cache=True)
    if len(raw) > max_bytes:
        raise BadRequest("payload too large")
    if not raw:
        raise BadRequest("empty body")
    try:
        data = json.loads(raw.decode("utf-8", errors="replace"))
    except ValueError:
        raise BadRequest("body is not valid JSON") from None
    except RecursionError:
        raise BadRequest("body is nested too deeply") from None
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
    return raw, data
