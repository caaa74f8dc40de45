"""Loads a trained model once and classifies many messages with exactly the pipeline the Rasa
server runs (normaliser, DIET, gazetteer, risk annotator), so what `helpline classify` prints is
what a person writing that message would get."""
from __future__ import annotations

import asyncio
from pathlib import Path

from typing import Optional

from bot.context import Context, asks_after
from bot.nlu.normalize import clean
from bot.understanding import understand

EMPTY = {"intent": "empty", "confidence": 1.0, "topic": "chitchat", "risk": "none", "action": "answer"}


class Classifier:
    def __init__(self, agent):
        self._agent = agent
        self._loop = asyncio.new_event_loop()

    @classmethod
    def load(cls, model: Path) -> "Classifier":
        from rasa.core.agent import Agent

        return cls(Agent.load(str(model)))

    def parse(self, text: str, context: Optional[Context] = None) -> dict:
        if context is None:
            return self._loop.run_until_complete(self._agent.parse_message(text))
        from rasa.core.channels.channel import UserMessage

        message = UserMessage(text, metadata={"context": context.as_dict()})
        return self._loop.run_until_complete(self._agent.processor.parse_message(message))

    def classify(self, text: str, context: Optional[Context] = None) -> dict:
        if not clean(text):
            return {"text": text, **EMPTY, "model_intent": None, "entities": [], "reasons": [],
                    "conversation_risk": context.risk if context else "none"}
        try:
            data = self.parse(text, context)
        except Exception:  # the model failed on this input: the rules still decide the risk
            u = understand(text, None, context=context)
            return {"text": text, "intent": u.intent, "confidence": 0.0, "topic": u.topic, "risk": u.risk,
                    "action": u.action, "model_intent": None, "entities": [], "reasons": u.reasons + ["model_error"],
                    "conversation_risk": u.conversation_risk, "question": u.question}
        intent = data.get("intent") or {}
        return {
            "text": text,
            "intent": intent.get("name"),
            "confidence": round(float(intent.get("confidence") or 0.0), 4),
            "topic": data.get("topic"),
            "risk": data.get("risk"),
            "action": data.get("action"),
            "model_intent": data.get("model_intent"),
            "entities": [{"entity": e.get("entity"), "value": e.get("value")} for e in data.get("entities") or []],
            "reasons": data.get("risk_reasons") or [],
            "conversation_risk": data.get("conversation_risk") or data.get("risk"),
            "question": data.get("question"),
        }

    def classify_conversation(self, texts: list[str]) -> list[dict]:
        """Each message of one conversation, in order, read in its conversation (``bot.context``)
        as the gateway reads it; ``conversation_risk`` is the highest risk so far. What the bot
        asked after each message comes from the responses' own declarations (no dialogue runs)."""
        results, ctx = [], Context()
        for text in texts:
            r = self.classify(text, ctx)
            ctx = ctx.after(r["conversation_risk"] or r["risk"], r["topic"], asks_after(r["intent"] or ""))
            results.append({**r, "conversation_risk": ctx.risk})
        return results
