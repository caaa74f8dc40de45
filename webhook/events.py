"""The event log: one table that is both the audit trail (who viewed, claimed, replied,
transferred, exported) and the console's live feed (a case opened, rose, was claimed…).

``record`` adds a row inside the caller's transaction; when that transaction commits, waiting
console streams in this process wake at once (``wait``). Streams in other processes (a second
gateway, the worker opening a case) see the row on their next poll, so the feed never depends
on the wake-up: it only makes it fast.

Rows carry labels only (risk, outcome, the other counsellor's user name), never message text,
a phone number or a chat id.
"""
from __future__ import annotations

import threading
import time
from typing import Optional

from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.orm import Session

from webhook.models import Event

SYSTEM = "system"
# Actions that change what a counsellor sees in the queue or in an open case.
FEED = frozenset({"opened", "raised", "claimed", "released", "transferred", "resolved", "alert", "inbound",
                  "replied", "note", "followup_sent", "followup_answer"})

_cond = threading.Condition()
_generation = 0


def record(s, action: str, actor: str = SYSTEM, case_id: Optional[int] = None, detail: Optional[str] = None,
           at: Optional[float] = None) -> None:
    s.add(Event(at=time.time() if at is None else at, actor=(actor or SYSTEM)[:64], action=action[:32],
                case_id=case_id, detail=(detail or None) and detail[:200]))
    if action in FEED:
        s.info["feed"] = True


@sa_event.listens_for(Session, "after_commit")
def _after_commit(session) -> None:  # pragma: no cover - exercised through every feed test
    if session.info.pop("feed", False):
        notify()


@sa_event.listens_for(Session, "after_rollback")
def _after_rollback(session) -> None:  # pragma: no cover
    session.info.pop("feed", None)


def notify() -> None:
    global _generation
    with _cond:
        _generation += 1
        _cond.notify_all()


def generation() -> int:
    return _generation


def wait(seen: int, timeout: float) -> bool:
    """Block until something was recorded in this process after generation ``seen`` (True) or
    ``timeout`` passed (False)."""
    with _cond:
        return _cond.wait_for(lambda: _generation != seen, timeout)


def since(s, after_id: int, limit: int = 200, case_id: Optional[int] = None,
          actions: Optional[frozenset] = FEED) -> list[Event]:
    """Events after ``after_id`` in id order; ``actions=None``: every action (the feed uses it to
    tell an id that is not for the feed from one whose transaction has not committed yet)."""
    q = select(Event).where(Event.id > after_id)
    if actions is not None:
        q = q.where(Event.action.in_(actions))
    if case_id is not None:
        q = q.where(Event.case_id == case_id)
    return list(s.execute(q.order_by(Event.id).limit(limit)).scalars())


def last_id(s) -> int:
    from sqlalchemy import func

    return s.execute(select(func.max(Event.id))).scalar() or 0
