"""The knowledge base as the gateway sees it: the files of ``data/kb/`` plus the checks recorded
in the console (table ``kb_checks``), and the one function every outgoing text passes through,
``render``, which resolves the counselling-line markers (bot/kb/line.py).

Checks are read at most once a minute per process; a database that cannot be read leaves the last
known checks in place (or none: then only what the files say is verified counts), and rendering
never fails: a text always goes out, with or without the line.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Optional

from sqlalchemy import select

from bot.kb import facts as F
from bot.kb import line as L
from bot.kb.hours import TZ
from webhook.db import reading, transaction
from webhook.models import KbCheck

logger = logging.getLogger(__name__)
TTL = 60.0


class KbState:
    def __init__(self, gw):
        self.gw = gw
        self._lock = threading.Lock()
        self._at = 0.0
        self._checks: dict = {}

    def invalidate(self) -> None:
        with self._lock:
            self._at = 0.0

    def checks(self) -> dict:
        """{(kind, item_id): newest Check}"""
        now = time.monotonic()
        with self._lock:
            if now - self._at < TTL:
                return self._checks
        try:
            # a plain read: never waits for a writer, also when called inside one's transaction
            with reading(self.gw.Session) as s:
                rows = s.execute(select(KbCheck).order_by(KbCheck.checked_on, KbCheck.id)).scalars().all()
                found = F.latest_checks(F.Check(r.kind, r.item_id, r.checked_on, r.result, r.hours, r.note) for r in rows)
        except Exception as exc:                     # noqa: BLE001 - never block a reply on this
            logger.warning("kb_checks_unreadable error=%s", type(exc).__name__)
            with self._lock:
                self._at = now - TTL + 5.0
                return self._checks
        with self._lock:
            self._checks, self._at = found, now
        return found

    def line(self, today: Optional[dt.date] = None) -> L.LineState:
        max_age = self.gw.settings.line_max_age_days or None
        try:
            return L.state(today or dt.datetime.now(TZ).date(), self.checks(), max_age_days=max_age)
        except Exception as exc:                     # noqa: BLE001 - a broken file must not stop replies
            logger.error("kb_line_unreadable error=%s", type(exc).__name__)
            return L.LineState(None, None, None, None, False, "the directory cannot be read")

    def render(self, text: str, when: Optional[float] = None, language: Optional[str] = None) -> str:
        if "[[line:" not in text:
            return text
        return L.render(text, self.line(), when, language or self.gw.settings.locale)


def record_check(gw, kind: str, item_id: str, checked_on: dt.date, result: str, staff: str,
                 hours: Optional[str] = None, note: Optional[str] = None) -> None:
    from webhook import events

    if result not in F.RESULTS:
        raise ValueError(f"result must be one of {F.RESULTS}")
    with transaction(gw.Session) as s:
        s.add(KbCheck(kind=kind, item_id=item_id[:300], checked_on=checked_on, result=result, hours=hours or None,
                      note=(note or None) and note[:300], staff=staff, created_at=time.time()))
        events.record(s, "kb_checked", staff, None, f"{kind}={item_id[:80]} result={result} on={checked_on}")
    gw.kb.invalidate()
