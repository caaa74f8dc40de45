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

import re
from dataclasses import asdict, dataclass, field
from typing import Optional

from bot import intents as I
from bot import context as C
from bot.nlu import risk as R
from bot.nlu.segments import sentences
from bot.nlu.commands import command_for
from bot.nlu.normalize import normalize

# Below this confidence an urgent base risk from the model is not trusted on its own; the
# message is still treated as a disclosure (medium) so the person is offered a counsellor.
URGENT_BASE_MIN_CONFIDENCE = 0.25
# ``imminent`` from the model alone (no rule saw danger now) needs this confidence; below it the
# message is escalated as ``high``. Chosen by cross-validation (bench/calibrate.py, 3 folds,
# 2026-12-07): the largest threshold that keeps 95% of the model's out-of-fold urgent readings
# imminent (0.962 kept; 1.9% of non-urgent examples read as urgent at or above it).
IMMINENT_MIN_CONFIDENCE = 0.30
# A sentence of a long message counts with the sentence model's reading at this probability.
PART_MIN_CONFIDENCE = 0.50
# ... and as an urgent sentence (a disclosure of child abuse, danger now) at this one.
PART_URGENT_MIN_CONFIDENCE = 0.70
# The longest training example is about 210 characters: beyond this length the whole-message
# model reads a text unlike any it learnt from, and its intent is only taken when a sentence of
# the message says the same (docs/nlu.md, "Long messages"; measured on set E: long information
# letters in Vietnamese and English were read as a question about school violence at 0.98-1.0).
WHOLE_MODEL_MAX_CHARS = 300
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
    question: Optional[str] = None        # an information question asked inside a disclosure
    conversation_risk: Optional[str] = None

    def as_dict(self) -> dict:
        return asdict(self)


def understand(text: str, intent: Optional[str], confidence: float = 0.0,
               normalized: Optional[str] = None, parts: Optional[list] = None,
               context=None, guess: bool = False) -> Understanding:
    """``parts``: the sentence model's reading of each sentence (``SentenceReader``), when the
    message has several; ``context``: the conversation so far (``bot.context.Context`` or its
    dict), when there is one."""
    sents = sentences(text) if len(text) > 40 else [text]
    u, about_subject = _single(text, intent, confidence, normalized, sents)
    if len(sents) > 1:
        u = _long(u, sents, parts or [], about_subject)
    ctx = C.Context.of(context)
    u = _in_context(u, text, ctx, guess)
    u.conversation_risk = I.max_risk(ctx.risk, u.risk)
    u.action = I.action_for(u.risk, u.intent)
    return u


def _single(text: str, intent: Optional[str], confidence: float, normalized: Optional[str],
            sents: list[str]) -> tuple[Understanding, bool]:
    """The message's reading, and whether it is about the subject rather than a person."""
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

    rules = R.assess_long(text, sents) if len(sents) > 1 else R.assess(text, normalized=norm)
    reasons.extend(rules.reasons)
    if base == "imminent" and rules.risk != "imminent" and confidence < IMMINENT_MIN_CONFIDENCE:
        base = "high"            # the model alone, not sure enough for "now": still escalated
        reasons.append("model_imminent_below_threshold")
    if base in I.URGENT and rules.about_subject:
        base = "none"            # an essay, homework, news or research question about the subject
        reasons.append("about_the_subject")
        intent = I.INFO_FOR_TOPIC.get(meta.topic, "ask_dv_info")
        meta = I.info(intent)
    risk = I.max_risk(base, rules.risk)

    topic = meta.topic
    if rules.generic_topic and topic in C.VIOLENCE_TOPICS:
        pass     # a letter whose rules only saw "someone is hurt": the model names the subject
    elif rules.topic and rules.risk != "none":
        if topic in _GENERIC_TOPICS:
            topic = rules.topic
        if rules.topic == "self_harm" and rules.risk == "imminent":
            topic = "self_harm"
        if rules.topic == "child_abuse" and topic in {"domestic_violence", "emergency", "sexual_violence"}:
            topic = "child_abuse"
    question = None
    if len(sents) > 1 and rules.risk != "none" and meta.kind == "info":
        # a letter that tells of harm and asks something: the harm is the topic, the question is
        # answered too (the dialogue reads ``question``)
        question = intent
        if not (rules.generic_topic and topic in C.VIOLENCE_TOPICS):
            topic = (rules.topic if rules.generic_topic else I.salient(topic, rules.topic)) or topic
    if intent is None and rules.risk == "none":
        topic = "out_of_scope"
    u = Understanding(topic=topic, risk=risk, action="answer", intent=_route(intent, meta, topic, risk),
                      model_intent=model_intent, confidence=round(float(confidence), 4), reasons=reasons,
                      question=question)
    if rules.generic_topic:
        u.reasons.append("generic_subject")     # the sentences name the subject (_long)
    return u, rules.about_subject


def _route(intent: Optional[str], meta: I.IntentInfo, topic: str, risk: str) -> str:
    """The intent the dialogue acts on: urgent messages to the urgent flows, a question that shows
    ongoing violence to its topic's disclosure."""
    dialogue_intent = intent or "nlu_fallback"
    if risk in I.URGENT:
        if topic == "self_harm":
            return "self_harm"
        if meta.kind != "command":
            return "emergency_danger"
    elif risk == "medium" and meta.kind in ("info", "chitchat", "other"):
        # topics without a disclosure flow (shelter, health, legal aid) keep their answer
        fallback = dialogue_intent if meta.kind == "info" else "disclose_dv"
        return I.DISCLOSURE_FOR_TOPIC.get(topic, fallback)
    return dialogue_intent


def _long(u: Understanding, sents: list[str], parts: list, about_subject: bool) -> Understanding:
    """What the sentence model read in each sentence (``parts``): a sentence that discloses harm
    makes the message at least ``medium`` (a letter that tells of violence is never answered as a
    question) and gives the topic when nothing else did; the last question asked is kept."""
    if len(parts) != len(sents):
        return u
    about_subject = about_subject or "about_the_subject" in u.reasons
    question, harm = None, []
    confident = [p for p in parts if _confident(p)]
    for k, part in enumerate(parts, 1):
        if not _confident(part):
            continue
        meta = I.info(part.get("intent") or "")
        if meta.kind == "info":
            question = part["intent"]          # the last question asked is the one to answer
        elif meta.kind == "disclosure" and not about_subject:
            harm.append(meta.topic)
            if any(r.startswith((f"s{k}:", f"s{k}+:")) for r in u.reasons):
                harm.append(meta.topic)       # a sentence the rules saw harm in counts twice
            u.reasons.append(f"s{k}:part:{part['intent']}")
    if u.risk == "none" and not harm and len(" ".join(sents)) > WHOLE_MODEL_MAX_CHARS and u.model_intent == u.intent \
            and not any(I.info(p["intent"]).topic == u.topic for p in confident):
        _sentences_decide(u, confident)
    if not harm:
        if u.topic in _GENERIC_TOPICS and question:
            u.topic = I.info(question).topic
        if question and u.risk != "none" and not u.question:
            u.question = question
        return u
    if question and not u.question:
        u.question = question
    if u.risk == "none":
        u.risk = "medium"
        u.topic = max(set(harm), key=lambda t: (harm.count(t), -I.SALIENCE.index(t)))
        meta = I.info(u.intent)
        if meta.kind in ("info", "chitchat", "other"):
            u.intent = I.DISCLOSURE_FOR_TOPIC.get(u.topic, "disclose_dv")
    elif u.topic in _GENERIC_TOPICS or u.topic in ("legal_aid", "shelter", "health_support") \
            or ("generic_subject" in u.reasons and u.risk == "medium"):
        # the whole-letter model read no subject, or the rules only saw that someone is hurt:
        # the subject most sentences tell of
        u.topic = max(set(harm), key=lambda t: (harm.count(t), -I.SALIENCE.index(t)))
        if I.info(u.intent).kind == "disclosure":
            u.intent = I.DISCLOSURE_FOR_TOPIC.get(u.topic, u.intent)
    return u


def _confident(part) -> bool:
    """A sentence the sentence model read at ``PART_MIN_CONFIDENCE`` or more."""
    return isinstance(part, dict) and float(part.get("confidence") or 0) >= PART_MIN_CONFIDENCE


def _sentences_decide(u: Understanding, confident: list) -> None:
    """A calm letter longer than the whole-message model knows, whose reading no sentence backs:
    the sentences decide. The subject most of them (weighted by probability) speak of, and its
    most probable sentence's intent for the answer; with no sentence read confidently, the letter
    is out of scope (the dialogue then asks what the person needs)."""
    weight: dict[str, float] = {}
    for p in confident:
        if I.info(p["intent"]).kind in ("info", "disclosure", "request", "other"):
            topic = I.info(p["intent"]).topic
            weight[topic] = weight.get(topic, 0.0) + float(p["confidence"])
    if weight:
        topic = max(weight, key=lambda t: (weight[t], -I.SALIENCE.index(t) if t in I.SALIENCE else -len(I.SALIENCE)))
        best = max((p for p in confident if I.info(p["intent"]).topic == topic), key=lambda p: float(p["confidence"]))
        u.topic, u.intent = topic, best["intent"]
    else:
        u.topic, u.intent = "out_of_scope", "out_of_scope"
    u.reasons.append("long:sentences_decide")


def _in_context(u: Understanding, text: str, ctx: C.Context, guess: bool = False) -> Understanding:
    """The message read in its conversation (``bot.context``). ``guess``: the intent is the
    model's best guess below the fallback threshold (the model could not place the message)."""
    answer = C.short_answer(text)
    model_only = all(r.startswith("intent:") or r in ("fear", "model_imminent_below_threshold") for r in u.reasons)
    opening = C.short_answer(re.split(r"[,.;!?]", text, maxsplit=1)[0]) if ctx.asked == "safe_now" else None
    if ctx.asked == "safe_now" and "yes" in (answer, opening) and u.risk in I.URGENT and model_only:
        # "có, mình đang ở cơ quan" answers "are you safe to write now?": yes. The model's urgent
        # guess (no rule saw danger) does not outweigh the person's own answer.
        u.risk, u.topic, u.intent = "none", "chitchat", "affirm"
        u.reasons.append("context:answer_yes")
        return u
    if u.risk not in I.URGENT and (
            (ctx.asked == "safe_now" and (answer == "no" or C.not_safe(text))) or C.says_unsafe(text)):
        u.risk = "high"
        u.topic = u.topic if u.topic in C.VIOLENCE_TOPICS else (ctx.topic if ctx.topic in C.VIOLENCE_TOPICS else "emergency")
        u.intent = "emergency_danger"
        u.reasons.append("context:not_safe")
        return u
    if ctx.asked in ("safe_now", "counsellor") and answer and u.risk == "none":
        u.intent = "affirm" if answer == "yes" else "deny"
        u.topic = ctx.topic if ctx.asked == "counsellor" and ctx.topic else "chitchat"
        u.reasons.append(f"context:answer_{answer}")
        return u
    if ctx.disclosing and u.risk in I.URGENT and u.topic == "self_harm" and model_only \
            and ctx.topic in C.VIOLENCE_TOPICS and ctx.topic != "self_harm":
        # the model alone, with no word of self-harm, read "mai đi học chắc lại bị như hôm trước"
        # as self-harm in a conversation about bullying: the subject holds, still escalated
        u.risk, u.topic = "high", ctx.topic
        u.intent = "emergency_danger"
        u.reasons.append("context:same_subject")
        return u
    if not ctx.disclosing or u.risk in I.URGENT:
        return u
    if u.risk == "medium" and u.topic != ctx.topic and u.topic in C.VIOLENCE_TOPICS and model_only:
        # the model alone moved the subject ("em không dám nói với cô giáo" read as violence at
        # home in a conversation about bullying): the conversation's subject holds
        u.topic = ctx.topic
        u.intent = I.DISCLOSURE_FOR_TOPIC.get(ctx.topic, u.intent)
        u.reasons.append("context:same_subject")
    if C.returns(text):
        u.risk = "high"
        if u.topic not in C.VIOLENCE_TOPICS:
            u.topic = ctx.topic
        u.intent = "self_harm" if u.topic == "self_harm" else "emergency_danger"
        u.reasons.append("context:returns")
    elif u.risk == "none" and u.topic in ("chitchat", "out_of_scope") \
            and (u.intent in ("nlu_fallback", "out_of_scope") or guess) and answer is None:
        # words the model cannot place, inside a disclosure, continue it
        u.risk = "medium"
        u.topic = ctx.topic
        u.intent = I.DISCLOSURE_FOR_TOPIC.get(ctx.topic, "disclose_dv")
        u.reasons.append("context:continues")
    return u
