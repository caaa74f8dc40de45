"""Custom actions. Each one reads the tracker, calls plain-Python services, and answers with
response *names* from the domain (the wording lives in bot/domain/responses.yml)."""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import gateway_client, knowledge

logger = logging.getLogger(__name__)

# Decree 282/2025/NĐ-CP replaced Decree 144/2021/NĐ-CP from this day (data/kb/legal_facts.yml).
DECREE_282_FROM = dt.date(2025, 12, 15)


def _latest(tracker: Tracker) -> Dict[str, Any]:
    return tracker.latest_message or {}


def _channel(tracker: Tracker) -> str:
    return (_latest(tracker).get("metadata") or {}).get("channel") or tracker.get_latest_input_channel() or "unknown"


def escalation_payload(tracker: Tracker, reason: str) -> dict:
    """What the counsellor's queue needs and nothing more: no message text."""
    msg = _latest(tracker)
    return {
        "conversation_id": tracker.sender_id,
        "channel": _channel(tracker),
        "topic": msg.get("topic") or "request_counselor",
        "risk": msg.get("risk") or "none",
        "reason": reason,
        "summary": {
            "reasons": list(msg.get("risk_reasons") or [])[:8],
            "intent": (msg.get("intent") or {}).get("name"),
            "locality": tracker.get_slot("locality"),
            "relationship": tracker.get_slot("relationship"),
            "person_at_risk": tracker.get_slot("person_at_risk"),
        },
    }


class ActionEscalate(Action):
    """Puts the conversation in the Social Work Center's queue. Risk decides the priority on the
    gateway side; here we only say why (risk or request)."""

    def name(self) -> Text:
        return "action_escalate"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict]:
        msg = _latest(tracker)
        reason = "risk" if msg.get("risk") in ("high", "imminent") else "request"
        delivered = gateway_client.escalate(escalation_payload(tracker, reason))
        dispatcher.utter_message(response="utter_escalated" if delivered else "utter_escalation_failed")
        return [SlotSet("escalated", True)]


class ActionFindServices(Action):
    def name(self) -> Text:
        return "action_find_services"

    def run(self, dispatcher, tracker, domain):
        locality = tracker.get_slot("locality")
        if not locality:
            if _latest(tracker).get("intent", {}).get("name") == "inform_locality":
                dispatcher.utter_message(response="utter_services_general")
            else:
                dispatcher.utter_message(response="utter_ask_locality")
            return []
        kb = knowledge.load()
        place = kb.locality(locality)
        if place is None:
            dispatcher.utter_message(response="utter_services_general")
            return []
        dispatcher.utter_message(
            response="utter_services_in_locality",
            locality=place["name_vi"],
            services=kb.services_text(place),
        )
        return []


class ActionAnswerPenalty(Action):
    """Fines for domestic violence changed on 15/12/2025 (Decree 282/2025 replaced 144/2021);
    other penalties get the general answer rather than a number we cannot source."""

    def name(self) -> Text:
        return "action_answer_penalty"

    def run(self, dispatcher, tracker, domain):
        text = knowledge.normalized(_latest(tracker).get("text") or "")
        topic = _latest(tracker).get("topic")
        other = any(w in text.split() for w in ("hiep", "quay", "roi", "xam", "dam", "buon", "tre"))
        if topic in (None, "legal_aid", "domestic_violence") and not other:
            dispatcher.utter_message(response="utter_penalty_dv")
        else:
            dispatcher.utter_message(response="utter_penalty_general")
        return []


class ActionSubscribe(Action):
    """Campaign opt-in is owned by the gateway (consent records, channels); until it exists the
    request is recorded (gateway_client.record_preference) and the bot says it was recorded."""

    def name(self) -> Text:
        return "action_subscribe"

    def run(self, dispatcher, tracker, domain):
        gateway_client.record_preference("subscribe", tracker.sender_id, _channel(tracker))
        dispatcher.utter_message(response="utter_subscribed")
        return []


class ActionUnsubscribe(Action):
    def name(self) -> Text:
        return "action_unsubscribe"

    def run(self, dispatcher, tracker, domain):
        gateway_client.record_preference("unsubscribe", tracker.sender_id, _channel(tracker))
        dispatcher.utter_message(response="utter_unsubscribed")
        return []


class ActionDeleteData(Action):
    """Erasure itself is done by the gateway, which owns the stored messages; the bot forgets
    what it holds in its slots and confirms."""

    def name(self) -> Text:
        return "action_delete_data"

    def run(self, dispatcher, tracker, domain):
        gateway_client.record_preference("delete", tracker.sender_id, _channel(tracker))
        dispatcher.utter_message(response="utter_deleted")
        return [SlotSet(s, None) for s in ("locality", "relationship", "person_at_risk", "escalated")]
