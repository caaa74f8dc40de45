"""The REST channel the gateway calls, with one addition: the reply ends with how the message
was read (``{"custom": {"reading": {intent, topic, risk, conversation_risk, question}}}``).

The gateway keeps each conversation's context (``bot.context``: highest risk so far, topic, the
bot's last question) and sends it with every message; only Rasa's NLU knows how the message was
finally read (model, sentences, rules, context), so it is handed back in the same response
instead of a second request. Responses that ask something say so themselves
(``custom: {asks: …}`` in the domain) and arrive the same way. Same path as Rasa's own channel
(``/webhooks/rest/webhook``); Rasa's failure log lines, which quote the text, are not used.
"""
from __future__ import annotations

import logging
from asyncio import CancelledError
from typing import Any, Dict, Optional, Text

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request

logger = logging.getLogger(__name__)
READING_KEYS = ("intent", "topic", "risk", "conversation_risk", "question")


class HelplineInput(RestInput):
    @classmethod
    def name(cls) -> Text:
        return "rest"

    def blueprint(self, on_new_message) -> Blueprint:
        hook = Blueprint("helpline_rest", __name__)

        @hook.route("/", methods=["GET"])
        async def health(request: Request):
            return response.json({"status": "ok"})

        @hook.route("/webhook", methods=["POST"])
        async def receive(request: Request):
            sender_id = await self._extract_sender(request)
            text = self._extract_message(request)
            collector = CollectingOutputChannel()
            try:
                await on_new_message(UserMessage(text, collector, sender_id,
                                                 input_channel=self._extract_input_channel(request),
                                                 metadata=self.get_metadata(request)))
            except CancelledError:
                logger.error("rest_message_timeout")
            except Exception as exc:  # the text is never logged
                logger.error("rest_message_failure %s", type(exc).__name__)
            reading = await _reading(request, sender_id)
            return response.json(collector.messages + ([{"custom": {"reading": reading}}] if reading else []))

        return hook


async def _reading(request: Request, sender_id: Text) -> Optional[Dict[str, Any]]:
    """How the last user message of this conversation was read (labels only, no text)."""
    try:
        agent = request.app.ctx.agent
        tracker = await agent.tracker_store.retrieve(sender_id)
    except Exception as exc:
        logger.warning("reading_unavailable %s", type(exc).__name__)
        return None
    parse = (tracker.latest_message.parse_data if tracker and tracker.latest_message else None) or {}
    intent = (parse.get("intent") or {}).get("name")
    if not intent:
        return None
    return {"intent": intent, **{k: parse.get(k) for k in READING_KEYS[1:]}}
