"""Telegram through python-telegram-bot 22.

Telegram does not sign updates; with ``secret_token`` set on setWebhook every update carries
X-Telegram-Bot-Api-Secret-Token, compared here in constant time. Updates are parsed with PTB's
``Update.de_json``; the de-duplication key is ``update_id`` (kept as a set, not "greater than the
last one": Telegram restarts the sequence at a random number after a week of silence).

PTB's ``Bot`` is asynchronous and its HTTP client is bound to the event loop it was initialised
on, so the gateway keeps ONE long-lived loop in a daemon thread and submits every call to it
(``asyncio.run`` per request breaks on the second call: "Event loop is closed").
"""
from __future__ import annotations

import asyncio
import hmac
import logging
import threading
from typing import Optional

from flask import Request
from telegram import Bot, Update
from telegram.error import BadRequest as TgBadRequest
from telegram.error import Forbidden as TgForbidden
from telegram.error import InvalidToken, RetryAfter
from telegram.request import HTTPXRequest

from webhook.channels.base import (EMPTY, EVENT, MEDIA, TEXT, Adapter, BadRequest, Forbidden, Inbound,
                                   SendResult, read_json)

logger = logging.getLogger(__name__)

TELEGRAM_MAX = 4096


class LoopThread:
    """One asyncio loop in a daemon thread; ``run(coro)`` blocks the caller until it finishes."""

    def __init__(self, name: str = "telegram-loop"):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 30.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=5)


class TelegramAdapter(Adapter):
    name = "telegram"
    redact_fields = ("text", "caption", "first_name", "last_name", "username", "phone_number", "id", "chat", "from")
    max_chars = TELEGRAM_MAX

    def __init__(self, settings):
        self.settings = settings
        self._secret = settings.telegram_secret.encode()
        self._bot: Optional[Bot] = None
        self._loop: Optional[LoopThread] = None
        self._lock = threading.Lock()
        # PTB logs every request with its chat id and text at DEBUG: never below INFO here
        ptb = logging.getLogger("telegram")
        ptb.setLevel(max(ptb.level, logging.INFO))

    # --- inbound ---------------------------------------------------------------------------------
    def verify(self, request: Request) -> None:
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "").encode()
        if not given or not hmac.compare_digest(given, self._secret):
            raise Forbidden("bad or missing X-Telegram-Bot-Api-Secret-Token")

    def parse(self, request: Request) -> list[Inbound]:
        _raw, data = read_json(request, self.settings.max_body_bytes)
        if not isinstance(data.get("update_id"), int):
            raise BadRequest("update_id is required")
        try:
            update = Update.de_json(data, None)
        except Exception:
            raise BadRequest("not a Telegram update") from None
        key = str(update.update_id)
        member = update.my_chat_member
        if member is not None:
            if member.chat is None:
                raise BadRequest("my_chat_member.chat is required")
            # The person blocked (or unblocked) the bot: no more messages to them until they write.
            status = member.new_chat_member.status if member.new_chat_member else None
            return [Inbound(self.name, str(member.chat.id), key, kind=EVENT,
                            event="stopped" if status == "kicked" else None)]
        msg = update.message
        if msg is None or msg.chat is None or msg.chat.type != "private":
            # edited messages, channel posts, groups: acknowledged, not answered (a group is not a
            # safe place to talk about violence, and we must not reply into one)
            return [Inbound(self.name, str(msg.chat.id) if msg and msg.chat else "", key, kind=EVENT)]
        if not isinstance(msg.text, (str, type(None))) or not isinstance(msg.caption, (str, type(None))):
            raise BadRequest("text and caption must be strings")      # PTB does not check types
        if msg.text is not None:
            kind = TEXT if msg.text.strip() else EMPTY
            return [Inbound(self.name, str(msg.chat.id), key, kind=kind, text=msg.text if kind == TEXT else None)]
        if msg.caption:
            return [Inbound(self.name, str(msg.chat.id), key, kind=TEXT, text=msg.caption)]
        if msg.effective_attachment is not None or msg.sticker or msg.voice:
            return [Inbound(self.name, str(msg.chat.id), key, kind=MEDIA)]
        return [Inbound(self.name, str(msg.chat.id), key, kind=EMPTY)]

    # --- outbound --------------------------------------------------------------------------------
    def _ensure_bot(self) -> Bot:
        with self._lock:
            if self._bot is None:
                self._loop = LoopThread()
                bot = Bot(self.settings.telegram_token, base_url=self.settings.telegram_api_base,
                          request=HTTPXRequest(connection_pool_size=32, read_timeout=10, write_timeout=10,
                                               connect_timeout=5, pool_timeout=10))
                self._loop.run(bot.initialize())
                self._bot = bot
            return self._bot

    def send(self, address: str, text: str, reply_ref: Optional[str] = None) -> SendResult:
        try:
            bot = self._ensure_bot()
            msg = self._loop.run(bot.send_message(chat_id=int(address), text=text), timeout=30)
        except TgForbidden:
            return SendResult(False, stop_contact=True, undeliverable=True, error_code="forbidden")
        except RetryAfter as exc:
            delay = exc.retry_after.total_seconds() if hasattr(exc.retry_after, "total_seconds") else exc.retry_after
            return SendResult(False, retry=True, retry_after=float(delay), error_code="retry_after")
        except InvalidToken:
            with self._lock:
                self._bot = None
            return SendResult(False, retry=True, error_code="invalid_token")
        except TgBadRequest as exc:
            logger.warning("telegram_send_rejected error=%s", type(exc).__name__)
            return SendResult(False, undeliverable=True, error_code="bad_request")
        except Exception as exc:  # NetworkError, TimedOut, concurrent timeout
            with self._lock:
                if self._bot is not None and isinstance(exc, RuntimeError):
                    self._bot = None
            # a timeout may come after Telegram took the message: perhaps sent
            return SendResult(False, retry=True, error_code=type(exc).__name__,
                              ambiguous=type(exc).__name__ in ("TimedOut", "TimeoutError"))
        return SendResult(True, provider_msg_id=str(msg.message_id))

    def set_webhook(self, url: str) -> bool:
        bot = self._ensure_bot()
        return self._loop.run(bot.set_webhook(url=url, secret_token=self.settings.telegram_secret,
                                              allowed_updates=["message", "my_chat_member"]))

    def close(self) -> None:
        with self._lock:
            if self._bot is not None and self._loop is not None:
                try:
                    self._loop.run(self._bot.shutdown(), timeout=5)
                except Exception:
                    pass
            if self._loop is not None:
                self._loop.stop()
            self._bot, self._loop = None, None
