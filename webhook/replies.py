"""The few sentences the gateway sends on its own (Rasa down, media, empty message). Their wording
lives in the Rasa domain like every other bot sentence (bot/domain/responses.yml), read once at
start-up, so translators and counsellors edit one place."""
from __future__ import annotations

from functools import lru_cache

import yaml

from bot.paths import DOMAIN

DEGRADED = "utter_gateway_degraded"
TEXT_ONLY = "utter_gateway_text_only"
EMPTY = "utter_gateway_empty"
EMERGENCY = "utter_emergency_numbers"
SELF_HARM = "utter_self_harm"
HANDED_BACK = "utter_gateway_handed_back"
OUT_OF_HOURS = "utter_gateway_out_of_hours"
FOLLOWUP = "utter_gateway_followup"
FOLLOWUP_YES = "utter_gateway_followup_yes"
FOLLOWUP_NO = "utter_gateway_followup_no"
DELETE_ASK = "utter_delete_confirm_ask"
DELETED = "utter_deleted"
DELETE_CANCELLED = "utter_delete_cancelled"
ACCESS_REQUESTED = "utter_gateway_access_requested"
ALL = (DEGRADED, TEXT_ONLY, EMPTY, EMERGENCY, SELF_HARM, HANDED_BACK, OUT_OF_HOURS, FOLLOWUP, FOLLOWUP_YES, FOLLOWUP_NO,
       DELETE_ASK, DELETED, DELETE_CANCELLED, ACCESS_REQUESTED)


@lru_cache(maxsize=1)
def load() -> dict[str, dict[str, str]]:
    """name → {"vi": text, "en": text}: the variation without a condition is Vietnamese, the one
    with ``language: en`` English (the same variations Rasa chooses from)."""
    found: dict[str, dict[str, str]] = {}
    for path in sorted(DOMAIN.glob("*.yml")):
        data = yaml.safe_load(path.read_text("utf-8")) or {}
        for name, variants in (data.get("responses") or {}).items():
            if name not in ALL or not variants:
                continue
            for v in variants:
                conditions = v.get("condition") or []
                if any(c.get("name") != "language" for c in conditions):
                    continue      # a variation for one kind of person (a child, a witness): not the gateway's
                lang = next((c.get("value") for c in conditions if c.get("name") == "language"), "vi")
                found.setdefault(name, {}).setdefault(lang, v["text"])
    missing = {n for n in ALL if "vi" not in found.get(n, {})}
    if missing:
        raise RuntimeError(f"responses missing from the domain: {sorted(missing)}")
    return found


def text(name: str, lang: str = "vi") -> str:
    texts = load()[name]
    return texts.get(lang) or texts["vi"]


def safe_reply(risk: str, topic: str) -> str:
    """The reply when the bot cannot answer: the emergency numbers (or the self-harm reply) when
    the shared rules see danger, otherwise the short "we got your message" with the hotlines."""
    if risk in ("high", "imminent"):
        return SELF_HARM if topic == "self_harm" else EMERGENCY
    return DEGRADED
