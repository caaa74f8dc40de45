"""The one place where Rasa intents meet the public taxonomy (../shared/spec/TAXONOMY.md).

Intents are the project's own business and may change with the training data; topics and
risk levels are the stable contract used by routing, statistics and evaluation. Every intent
the NLU model can predict is listed here with the topic it belongs to and the *base* risk it
carries. The risk rules (``bot.nlu.risk``) may raise that base, never lower it.

Why disclosures carry a base risk: a person who tells us violence is happening to them (or to
someone they know) is at least ``medium`` even when they use no alarming word; child abuse,
sexual violence and trafficking are ``high`` by the taxonomy whatever the wording.
"""
from __future__ import annotations

from dataclasses import dataclass

RISK_LEVELS = ("none", "medium", "high", "imminent")
URGENT = frozenset({"high", "imminent"})


def risk_rank(level: str) -> int:
    return RISK_LEVELS.index(level)


def max_risk(*levels: str) -> str:
    return max(levels, key=risk_rank)


@dataclass(frozen=True)
class IntentInfo:
    topic: str
    base_risk: str = "none"
    # the disclosure intent the dialogue uses when a message on this topic shows ongoing
    # violence (risk medium) although the model read it as a question
    kind: str = "info"  # info | disclosure | urgent | chitchat | command | other


INTENTS: dict[str, IntentInfo] = {
    # chitchat
    "greet": IntentInfo("chitchat", kind="chitchat"),
    "goodbye": IntentInfo("chitchat", kind="chitchat"),
    "thank": IntentInfo("chitchat", kind="chitchat"),
    "affirm": IntentInfo("chitchat", kind="chitchat"),
    "deny": IntentInfo("chitchat", kind="chitchat"),
    "bot_challenge": IntentInfo("chitchat", kind="chitchat"),
    # "e la hs lop 8": who is writing, before what happened (the bot asks what is happening)
    "inform_self": IntentInfo("chitchat", kind="chitchat"),
    "out_of_scope": IntentInfo("out_of_scope", kind="other"),
    "nlu_fallback": IntentInfo("out_of_scope", kind="other"),
    # where to get help
    "ask_hotline": IntentInfo("help_contact"),
    "find_services": IntentInfo("help_contact"),
    "inform_locality": IntentInfo("help_contact"),
    # domestic violence
    "ask_dv_info": IntentInfo("domestic_violence"),
    "ask_victim_rights": IntentInfo("domestic_violence"),
    "ask_no_contact_order": IntentInfo("domestic_violence"),
    "disclose_dv": IntentInfo("domestic_violence", "medium", "disclosure"),
    # sexual violence, harassment
    "ask_sexual_violence": IntentInfo("sexual_violence"),
    "disclose_sexual_violence": IntentInfo("sexual_violence", "high", "disclosure"),
    "ask_harassment": IntentInfo("sexual_harassment"),
    "disclose_harassment": IntentInfo("sexual_harassment", "medium", "disclosure"),
    # children and school
    "ask_child_protection": IntentInfo("child_abuse"),
    "disclose_child_abuse": IntentInfo("child_abuse", "high", "disclosure"),
    "ask_school_violence": IntentInfo("school_violence"),
    "disclose_school_violence": IntentInfo("school_violence", "medium", "disclosure"),
    # online
    "ask_online_violence": IntentInfo("online_violence"),
    "disclose_online_violence": IntentInfo("online_violence", "medium", "disclosure"),
    # forced marriage and trafficking
    "ask_trafficking": IntentInfo("forced_marriage_trafficking"),
    # a suspicious job offer is a disclosure to take seriously (medium); held papers, being sold,
    # a missing daughter or a child bride are raised to high by the rules
    "disclose_trafficking": IntentInfo("forced_marriage_trafficking", "medium", "disclosure"),
    # legal
    "ask_legal_aid": IntentInfo("legal_aid"),
    "ask_penalty": IntentInfo("legal_aid"),
    "ask_divorce_custody": IntentInfo("legal_aid"),
    "ask_how_to_report": IntentInfo("legal_aid"),
    # shelter and health
    "ask_shelter": IntentInfo("shelter"),
    "ask_health": IntentInfo("health_support"),
    "ask_psych_support": IntentInfo("health_support"),
    # urgent
    "emergency_danger": IntentInfo("emergency", "imminent", "urgent"),
    "self_harm": IntentInfo("self_harm", "imminent", "urgent"),
    # asking how to help others or for a school project: information, not a crisis
    "ask_suicide_prevention": IntentInfo("self_harm"),
    # people
    "request_counselor": IntentInfo("request_counselor", kind="request"),
    # service commands
    "subscribe": IntentInfo("service_command", kind="command"),
    "unsubscribe": IntentInfo("service_command", kind="command"),
    "delete_data": IntentInfo("service_command", kind="command"),
}

# The disclosure intent for each topic: a question that turns out to describe ongoing violence is
# answered as a disclosure (empathy, services, an offer of a counsellor).
DISCLOSURE_FOR_TOPIC = {
    "domestic_violence": "disclose_dv",
    "sexual_violence": "disclose_sexual_violence",
    "sexual_harassment": "disclose_harassment",
    "child_abuse": "disclose_child_abuse",
    "school_violence": "disclose_school_violence",
    "online_violence": "disclose_online_violence",
    "forced_marriage_trafficking": "disclose_trafficking",
}

# The information intent for each topic: a question *about* a subject (an essay, the news) that the
# model read as a crisis is answered with information on it.
INFO_FOR_TOPIC = {
    "emergency": "ask_dv_info",
    "domestic_violence": "ask_dv_info",
    "self_harm": "ask_suicide_prevention",
    "sexual_violence": "ask_sexual_violence",
    "sexual_harassment": "ask_harassment",
    "child_abuse": "ask_child_protection",
    "school_violence": "ask_school_violence",
    "online_violence": "ask_online_violence",
    "forced_marriage_trafficking": "ask_trafficking",
}

TOPICS = (
    "help_contact", "domestic_violence", "sexual_violence", "sexual_harassment", "child_abuse",
    "school_violence", "online_violence", "forced_marriage_trafficking", "legal_aid", "shelter",
    "health_support", "emergency", "self_harm", "request_counselor", "service_command",
    "chitchat", "out_of_scope",
)


# The order in which topics claim a message that touches several (a long letter about money, in-laws,
# a beating and one line of despair): danger now first, information questions last. Documented in
# docs/nlu.md ("Long messages").
SALIENCE = (
    "emergency", "self_harm", "child_abuse", "sexual_violence", "forced_marriage_trafficking",
    "domestic_violence", "online_violence", "sexual_harassment", "school_violence", "shelter",
    "health_support", "legal_aid", "help_contact", "request_counselor", "service_command",
    "chitchat", "out_of_scope",
)


def salient(*topics) -> str | None:
    """The most salient of the topics given (None ignored)."""
    found = [t for t in topics if t in SALIENCE]
    return min(found, key=SALIENCE.index) if found else None


def info(intent: str) -> IntentInfo:
    """Unknown intents (a model trained on other data) are treated as out of scope, not as safe:
    the risk rules still run on the text."""
    return INTENTS.get(intent, IntentInfo("out_of_scope", kind="other"))


def action_for(risk: str, intent: str) -> str:
    """Taxonomy: escalate for high/imminent and for an explicit request for a human;
    offer a counsellor for medium; otherwise answer."""
    if risk in URGENT or intent == "request_counselor":
        return "escalate"
    if risk == "medium":
        return "offer_counselor"
    return "answer"
