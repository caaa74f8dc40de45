"""The dialogue that listens: what is said after a disclosure (docs/nlu.md, "A dialogue that listens").

``action_disclosure`` answers every disclosure intent:

1. the empathy text for the subject the first time it comes up in the conversation; after that a
   short "I am listening" text, never the one sent just before (nobody hears the same words twice
   in a row);
2. the answer to a question asked inside the disclosure ("… có được nuôi con không ạ?"): the NLU
   keeps it as ``question`` (``bot.understanding``), answered with the response its own rule uses;
3. the offer of a counsellor once per conversation; its answer is remembered (slot ``offer``), so a
   later "ok" is not taken for a yes to an offer that was already answered.

Who is writing (slot ``who``) and the language (slot ``language``) choose the variation of each
response (conditional variations in ``bot/domain/responses.yml``); the texts live there.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.context import rule_replies
from bot.intents import DISCLOSURE_FOR_TOPIC

EMPATHY = {
    "disclose_dv": "utter_empathy_dv",
    "disclose_sexual_violence": "utter_empathy_sexual_violence",
    "disclose_harassment": "utter_empathy_harassment",
    "disclose_child_abuse": "utter_empathy_child",
    "disclose_school_violence": "utter_empathy_school",
    "disclose_online_violence": "utter_empathy_online",
    "disclose_trafficking": "utter_empathy_trafficking",
}
LISTENING = ("utter_listening", "utter_listening_more")


@lru_cache(maxsize=1)
def answers() -> Dict[str, str]:
    """Information intent → the response its rule answers with (data/dialogue/rules.yml), so a
    question inside a disclosure gets the same answer as on its own."""
    table: Dict[str, str] = {}
    for intent, actions in rule_replies():
        if actions and actions[0].startswith("utter_"):
            table.setdefault(intent, actions[0])
    return table


def _bot_utterances(tracker: Tracker) -> List[str]:
    """Names of the responses the bot sent in this conversation, oldest first."""
    return [(e.get("metadata") or {}).get("utter_action") for e in tracker.events
            if e.get("event") == "bot" and (e.get("metadata") or {}).get("utter_action")]


def _said_since_last_user(tracker: Tracker) -> Optional[str]:
    """The last response the bot sent before the current message."""
    last_user = max((i for i, e in enumerate(tracker.events) if e.get("event") == "user"), default=-1)
    for e in reversed(tracker.events[:last_user]):
        if e.get("event") == "bot":
            return (e.get("metadata") or {}).get("utter_action")
        if e.get("event") == "user":
            return None
    return None


def offer(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[Dict[Text, Any]]:
    """The counsellor offer, once per conversation (and never after a person was escalated)."""
    if tracker.get_slot("offer") or tracker.get_slot("escalated"):
        return []
    dispatcher.utter_message(response="utter_offer_counselor")
    return [SlotSet("offer", "asked")]


class ActionDisclosure(Action):
    def name(self) -> Text:
        return "action_disclosure"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict]:
        msg = tracker.latest_message or {}
        intent = (msg.get("intent") or {}).get("name") or ""
        sent = _bot_utterances(tracker)
        empathy = EMPATHY.get(intent) or EMPATHY.get(DISCLOSURE_FOR_TOPIC.get(msg.get("topic") or "", ""), "utter_empathy_dv")
        if empathy not in sent:
            dispatcher.utter_message(response=empathy)
        else:
            last = _said_since_last_user(tracker)
            dispatcher.utter_message(response=next(r for r in LISTENING if r != last))
        question = msg.get("question")
        answer = answers().get(question or "")
        if answer and answer != empathy:
            dispatcher.utter_message(response=answer)
        return offer(dispatcher, tracker)


class ActionOfferCounselor(Action):
    def name(self) -> Text:
        return "action_offer_counselor"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict]:
        return offer(dispatcher, tracker)


class ActionOfferDeclined(Action):
    def name(self) -> Text:
        return "action_offer_declined"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict]:
        dispatcher.utter_message(response="utter_counselor_declined")
        return [SlotSet("offer", "declined")]
