"""The action server's one way to reach the gateway: small, with timeouts and a shared token.

Escalations must never break the dialogue: if the gateway is absent (it arrives in a later
issue), slow or failing, the escalation is written to a local journal (ids, topic and risk only,
never message text) so it can be replayed, and the caller is told it was not delivered.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import requests

logger = logging.getLogger(__name__)
_lock = threading.Lock()


@dataclass(frozen=True)
class GatewaySettings:
    url: str
    token: str
    timeout: float
    journal: Path

    @classmethod
    def from_env(cls) -> "GatewaySettings":
        return cls(
            url=os.environ.get("HELPLINE_GATEWAY_URL", "http://127.0.0.1:8000").rstrip("/"),
            token=os.environ.get("HELPLINE_GATEWAY_TOKEN", ""),
            timeout=float(os.environ.get("HELPLINE_GATEWAY_TIMEOUT", "3")),
            journal=Path(os.environ.get("HELPLINE_ESCALATION_JOURNAL", "var/escalations.jsonl")),
        )


def conversation_key(sender_id: str) -> str:
    """Journals never hold the raw sender id (it may be a phone number in development)."""
    return hashlib.sha256(("helpline:" + sender_id).encode("utf-8")).hexdigest()[:24]


def escalate(payload: dict, settings: Optional[GatewaySettings] = None,
             session: Optional[requests.Session] = None) -> bool:
    """POST the escalation; True when the gateway accepted it. Always journals on failure."""
    settings = settings or GatewaySettings.from_env()
    http = session or requests
    try:
        resp = http.post(
            f"{settings.url}/api/v1/escalations",
            json=payload,
            headers={"Authorization": f"Bearer {settings.token}"} if settings.token else {},
            timeout=settings.timeout,
        )
        if 200 <= resp.status_code < 300:
            return True
        logger.warning("escalation_rejected status=%s", resp.status_code)
    except requests.RequestException as exc:
        logger.warning("escalation_unreachable error=%s", type(exc).__name__)
    _journal(settings.journal, payload)
    return False


_checks: dict = {"at": 0.0, "value": {}}
CHECKS_TTL = 60.0


def kb_checks(settings: Optional[GatewaySettings] = None, session: Optional[requests.Session] = None) -> dict:
    """The knowledge-base checks recorded in the counsellors' console ("checked by phone on …"),
    as ``bot.kb.facts.latest_checks`` gives them; fetched at most once a minute. When the gateway
    cannot answer, the last answer (or nothing: the files alone) is used: a place is then shown
    only if the file says it is verified."""
    from bot.kb.facts import Check, latest_checks

    now = time.time()
    if now - _checks["at"] < CHECKS_TTL:
        return _checks["value"]
    settings = settings or GatewaySettings.from_env()
    http = session or requests
    try:
        resp = http.get(f"{settings.url}/api/v1/kb/checks",
                        headers={"Authorization": f"Bearer {settings.token}"} if settings.token else {},
                        timeout=min(settings.timeout, 2.0))
        if resp.status_code == 200:
            import datetime as dt

            rows = resp.json().get("checks") or []
            value = latest_checks(Check(r["kind"], r["item_id"], dt.date.fromisoformat(r["checked_on"]), r["result"],
                                        r.get("hours"), r.get("note")) for r in rows)
            _checks.update(at=now, value=value)
            return value
        logger.warning("kb_checks_rejected status=%s", resp.status_code)
    except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
        logger.warning("kb_checks_unreachable error=%s", type(exc).__name__)
    _checks["at"] = now - CHECKS_TTL + 10.0          # try again in 10 s
    return _checks["value"]


def record_preference(kind: str, sender_id: str, channel: str, settings: Optional[GatewaySettings] = None) -> None:
    """Opt-in, opt-out and erasure requests are owned by the gateway (consent records, the
    outbox, the stored messages). Until it takes them over, the action server keeps a verifiable
    record of each request: kind, channel, time and a pseudonymous key, never the address."""
    settings = settings or GatewaySettings.from_env()
    path = settings.journal.with_name("preferences.jsonl")
    _journal(path, {"conversation_id": sender_id, "kind": kind, "channel": channel})


def _journal(path: Path, payload: dict) -> None:
    record = {k: v for k, v in payload.items() if k != "conversation_id"}
    record["conversation_key"] = conversation_key(str(payload.get("conversation_id", "")))
    record["journaled_at"] = int(time.time())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _lock, path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    except OSError as exc:
        logger.error("escalation_journal_failed error=%s", type(exc).__name__)
