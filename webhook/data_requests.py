"""A person's request to see their data (XEM DU LIEU), answered within the deadlines of Decree
356/2025/NĐ-CP Art. 5 (detailing the Personal Data Protection Law 91/2025/QH15, Art. 4):

    first answer  within 2 working days (Monday-Friday, not HELPLINE_HOLIDAYS)
    the copy      within 10 days

The request opens a case in the queue (reason ``data_access``), so a counsellor answers on the
person's channel, confirms it is them (a shared phone is the danger here: the copy never goes out
on its own) and hands the copy over the way the person chooses; a supervisor downloads it from the
case page (webhook/console/privacy_views.py) and marks the request done. Erasure (XOA) is done at
once (webhook/erasure.py), well inside the 20 days of Art. 5(4).
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Optional

from sqlalchemy import select

from bot.kb.hours import TZ
from bot.nlu.normalize import normalize
from webhook import events
from webhook.db import transaction
from webhook.models import Conversation, DataRequest

logger = logging.getLogger(__name__)

ACCESS = {"xem du lieu", "xem du lieu cua toi", "xem du lieu cua em", "xin ban sao du lieu", "ban sao du lieu",
          "xin xem du lieu", "xem thong tin cua toi", "my data", "access my data"}
REPLY_WORKING_DAYS = 2
DONE_DAYS = 10
OPEN = ("open", "replied")


def deadlines(asked_at: float, holidays: str = "") -> tuple[float, float]:
    """(first answer due, copy due) as Unix times: the end of the 2nd working day after the day
    of the request, and the end of the 10th day after it (Vietnam time)."""
    off = {h.strip() for h in holidays.split(",") if h.strip()}
    day = dt.datetime.fromtimestamp(asked_at, TZ).date()
    n, d = 0, day
    while n < REPLY_WORKING_DAYS:
        d += dt.timedelta(days=1)
        if d.weekday() < 5 and d.isoformat() not in off:
            n += 1

    def end(x: dt.date) -> float:
        return dt.datetime.combine(x, dt.time(23, 59, 59), TZ).timestamp()

    return end(d), end(day + dt.timedelta(days=DONE_DAYS))


def is_request(text: str) -> bool:
    """The whole message asks for one's data ("XEM DU LIEU")."""
    return normalize(text or "").strip() in ACCESS


def contact_of(gw, conversation_id: int) -> int:
    with transaction(gw.Session) as s:
        return s.get(Conversation, conversation_id).contact_id


def pending(gw, contact_id: int) -> bool:
    """The person already has a request that is not done (asking again adds nothing)."""
    with transaction(gw.Session) as s:
        return s.execute(select(DataRequest.id).where(DataRequest.contact_id == contact_id,
                                                      DataRequest.state.in_(OPEN))).first() is not None


def record(gw, contact_id: int, case_id: int, now: Optional[float] = None) -> int:
    """The request with its deadlines, linked to the case that puts it in the queue."""
    now = time.time() if now is None else now
    reply_due, due = deadlines(now, gw.settings.holidays)
    with transaction(gw.Session) as s:
        req = DataRequest(contact_id=contact_id, case_id=case_id, kind="access", state="open", method="keyword",
                          asked_at=now, reply_due=reply_due, due=due)
        s.add(req)
        s.flush()
        events.record(s, "data_request", events.SYSTEM, case_id, f"request={req.id} kind=access", at=now)
        request_id = req.id
    logger.info("data_request_opened case=%s", case_id)
    return request_id


def for_case(gw, case_id: int) -> Optional[DataRequest]:
    """The newest request of the person behind a case (any of their conversations)."""
    from webhook.models import Case

    with transaction(gw.Session) as s:
        conv_id = s.get(Case, case_id).conversation_id
        contact_id = s.get(Conversation, conv_id).contact_id
        req = s.execute(select(DataRequest).where(DataRequest.contact_id == contact_id)
                        .order_by(DataRequest.id.desc()).limit(1)).scalar_one_or_none()
        if req is not None:
            s.expunge(req)
        return req


def mark(gw, request_id: int, new: str, actor: str, now: Optional[float] = None) -> bool:
    """open -> replied -> done (a supervisor, on the case page); audited."""
    now = time.time() if now is None else now
    allowed = {"replied": ("open",), "done": ("open", "replied")}
    with transaction(gw.Session) as s:
        req = s.get(DataRequest, request_id)
        if req is None or req.state not in allowed.get(new, ()):
            return False
        req.state, req.actor = new, actor
        if new == "replied":
            req.replied_at = now
        else:
            req.done_at = now
            req.replied_at = req.replied_at or now
        events.record(s, f"data_request_{new}", actor, req.case_id, f"request={req.id}", at=now)
    return True


def overdue(gw, now: Optional[float] = None) -> list[DataRequest]:
    """Open requests past a deadline (the first answer or the copy)."""
    now = time.time() if now is None else now
    with transaction(gw.Session) as s:
        rows = s.execute(select(DataRequest).where(DataRequest.state.in_(OPEN))).scalars().all()
        out = [r for r in rows if (r.state == "open" and r.reply_due < now) or r.due < now]
        for r in out:
            s.expunge(r)
        return out
