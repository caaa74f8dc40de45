"""From a model intent and a message to the public labels: topic, risk, action.

This is the single function behind every place a message is understood: the Rasa pipeline
(``bot.nlu.components.RiskAnnotator``), ``helpline classify`` and the gateway's degraded path
when Rasa is down (then ``intent`` is ``None`` and only the rules speak). Keeping it in plain
Python means the three can never disagree.

Why the dialogue intent can differ from the model's intent: the dialogue must give the emergency
numbers first whenever the *risk* is high or imminent, whatever the model thought the message was
about ("ở Tam Kỳ có chỗ nào giúp không, nó đang cầm dao" is a service question to the model, but
the person needs 113 now). So urgent messages are routed to ``emergency_danger`` (or ``self_harm``),
and a question that turns out to describe ongoing violence is routed to that topic's disclosure
intent (empathy, services, an offer of a counsellor). The model intent is kept for statistics.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

from bot import intents as I
from bot.nlu import risk as R
from bot.nlu.commands import command_for
from bot.nlu.normalize import normalize

# Below this confidence an urgent base risk from the model is not trusted on its own; the
# message is still treated as a disclosure (medium) so the person is offered a counsellor.
URGENT_BASE_MIN_CONFIDENCE = 0.25
# Topics where rules may replace the model's topic: the model had no specific subject.
_GENERIC_TOPICS = {"chitchat", "out_of_scope", "help_contact", "request_counselor", "service_command"}


@dataclass
class Understanding:
    topic: str
    risk: str
    action: str
    intent: str            # what the dialogue acts on
    model_intent: Optional[str]
    confidence: float
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def understand(text: str, intent: Optional[str], confidence: float = 0.0,
               normalized: Optional[str] = None) -> Understanding:
    norm = normalized if normalized is not None else normalize(text)
    model_intent = intent
    command = command_for(text)
    if command:
        intent, confidence = command, 1.0
    meta = I.info(intent) if intent else I.IntentInfo("out_of_scope", kind="other")
    base = meta.base_risk
    reasons: list[str] = []
    if base in I.URGENT and confidence < URGENT_BASE_MIN_CONFIDENCE:
        base = "medium"
        reasons.append("low_confidence_urgent_intent")
    if base != "none":
        reasons.append(f"intent:{intent}")

    rules = R.assess(text, normalized=norm)
    reasons.extend(rules.reasons)
    risk = I.max_risk(base, rules.risk)

    topic = meta.topic
    if rules.topic and rules.risk != "none":
        if topic in _GENERIC_TOPICS:
            topic = rules.topic
        if rules.topic == "self_harm" and rules.risk == "imminent":
            topic = "self_harm"
        if rules.topic == "child_abuse" and topic in {"domestic_violence", "emergency", "sexual_violence"}:
            topic = "child_abuse"
    if intent is None and rules.risk == "none":
        topic = "out_of_scope"

    dialogue_intent = intent or "nlu_fallback"
    if risk in I.URGENT:
        if topic == "self_harm":
            dialogue_intent = "self_harm"
        elif meta.kind != "command":
            dialogue_intent = "emergency_danger"
    elif risk == "medium" and meta.kind in ("info", "chitchat", "other"):
        # a question (or small talk) that shows ongoing violence: answer it as a disclosure;
        # topics without a disclosure flow (shelter, health, legal aid) keep their answer
        fallback = dialogue_intent if meta.kind == "info" else "disclose_dv"
        dialogue_intent = I.DISCLOSURE_FOR_TOPIC.get(topic, fallback)

    return Understanding(
        topic=topic,
        risk=risk,
        action=I.action_for(risk, dialogue_intent),
        intent=dialogue_intent,
        model_intent=model_intent,
        confidence=round(float(confidence), 4),
        reasons=reasons,
    )
