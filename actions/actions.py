"""Custom actions. Each one reads the tracker, calls plain-Python services, and answers with
response *names* from the domain (the wording lives in bot/domain/responses.yml)."""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import gateway_client
from bot.kb import local
from bot.kb import places as P
from bot.nlu.normalize import normalize

logger = logging.getLogger(__name__)

# Decree 282/2025/NĐ-CP replaced Decree 144/2021/NĐ-CP from this day (data/kb/legal_facts.yml).
DECREE_282_FROM = dt.date(2025, 12, 15)


_RISKS = ("none", "medium", "high", "imminent")


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
        # the conversation's risk when it is higher (a "yes" to the offer after a disclosure)
        "risk": max((msg.get("risk") or "none", msg.get("conversation_risk") or "none"), key=_RISKS.index),
        "reason": reason,
        "summary": {
            "reasons": list(msg.get("risk_reasons") or [])[:8],
            "intent": (msg.get("intent") or {}).get("name"),
            "locality": tracker.get_slot("locality"),
            "commune": tracker.get_slot("commune"),
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
        return [SlotSet("escalated", True), SlotSet("offer", "accepted")]


class ActionFindServices(Action):
    """Where a person can get help near them. A unit named now (or earlier in the conversation)
    gets its People's Committee, police and the places of data/kb/places.csv that may be shown;
    a former district, or a name that is both a district and a unit ("Điện Bàn", "Núi Thành"),
    gets its units and the question which one: never the same-named unit silently (xã Duy
    Xuyên is not the old district town). A name shared by several places ("Trà My") gets the
    choices."""

    def name(self) -> Text:
        return "action_find_services"

    def run(self, dispatcher, tracker, domain):
        places = P.load()
        matches = places.locator().locate(_latest(tracker).get("text") or "")
        asked = tracker.get_slot("place_question")
        named = next((m for m in matches if m.unit), None)
        if named is None and asked:
            # the person answers our question with the same shared name: they mean the unit
            again = next((m for m in matches if m.ambiguous and _same_question(m, asked)), None)
            units = [i for k, i in (again.candidates if again else ()) if k == "unit"]
            if len(units) == 1:
                return self._unit(dispatcher, units[0], None)
        if named is not None:
            return self._unit(dispatcher, named.unit, named.old_name)
        shared = next((m for m in matches if m.ambiguous or m.names_district), None)
        if shared is not None:
            if shared.district:
                return self._district(dispatcher, shared.district)
            dispatcher.utter_message(response="utter_ask_which_place", choices=local.choices(shared, places))
            return [SlotSet("place_question", _question_key(shared))]
        commune, locality = tracker.get_slot("commune"), tracker.get_slot("locality")
        if commune in places.units:
            return self._unit(dispatcher, commune, None)
        if locality in places.districts:
            return self._district(dispatcher, locality)
        if _latest(tracker).get("intent", {}).get("name") == "inform_locality":
            dispatcher.utter_message(response="utter_services_general")
        else:
            dispatcher.utter_message(response="utter_ask_locality")
        return []

    @staticmethod
    def _unit(dispatcher, unit_id: str, old_name) -> List[Dict]:
        places = P.load()
        rows = local.unit_places(unit_id, checks=gateway_client.kb_checks(), places=places)
        dispatcher.utter_message(response="utter_services_in_unit", note=local.merged_note(unit_id, old_name, places),
                                 unit=local.unit_label(unit_id, places), places="\n".join(r.line() for r in rows))
        return [SlotSet("commune", unit_id), SlotSet("locality", places.units[unit_id].district),
                SlotSet("place_question", None)]

    @staticmethod
    def _district(dispatcher, district_id: str) -> List[Dict]:
        places = P.load()
        area = local.area_places(district_id, checks=gateway_client.kb_checks(), places=places)
        dispatcher.utter_message(response="utter_ask_which_unit", district=_sentence(places.districts[district_id].label_vi),
                                 units=local.units_list(district_id, places),
                                 area="".join("\n" + r.line() for r in area))
        return [SlotSet("locality", district_id), SlotSet("commune", None), SlotSet("place_question", district_id)]


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _question_key(match: "P.Match") -> str:
    return "|".join(f"{k}:{i}" for k, i in match.candidates)


def _same_question(match: "P.Match", asked: str) -> bool:
    """The place we asked about, named the same way again."""
    if asked == _question_key(match):
        return True
    return match.district is not None and asked == match.district


class ActionAnswerPenalty(Action):
    """Fines for domestic violence changed on 15/12/2025 (Decree 282/2025 replaced 144/2021);
    other penalties get the general answer rather than a number we cannot source."""

    def name(self) -> Text:
        return "action_answer_penalty"

    def run(self, dispatcher, tracker, domain):
        text = normalize(_latest(tracker).get("text") or "")
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
        return [SlotSet(s, None) for s in ("locality", "commune", "place_question", "relationship", "person_at_risk",
                                           "escalated")]
