"""Follow-ups: with the person's consent, one check after N days, inside the hours they said are
safe for them ("did you get the help you needed?"). Their answer is recorded on the case
(indicator đ: help received); "not yet" puts them back in the queue as a request.

The message is discreet on purpose (someone else may read the phone): it names no service and
no violence. A stopped contact (STOP/HUY, or blocked by the person) never receives it, and
STOP/HUY cancels every scheduled follow-up of the conversation.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
import unicodedata
from typing import Optional

from sqlalchemy import select, update

from webhook import events, replies
from webhook import states as S
from webhook.db import transaction
from webhook.hours import TZ as VIETNAM
from webhook.models import Case, Contact, Conversation, Followup

logger = logging.getLogger(__name__)

SCHEDULED, SENT, ANSWERED, CANCELLED = "scheduled", "sent", "answered", "cancelled"
ANSWER_WINDOW = 7 * 86400           # an answer counts up to a week after the check was sent
YES = {"1", "co", "roi", "da", "co roi", "da nhan", "yes"}
NO = {"2", "chua", "khong", "chua co", "no"}


def normalise(text: str) -> str:
    """Lower case, no diacritics, no punctuation: 'Có!' == 'co', 'Rồi' == 'roi', 'HỦY' == 'huy'."""
    text = unicodedata.normalize("NFD", (text or "").strip().lower()).replace("đ", "d")
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    return " ".join("".join(c if c.isalnum() else " " for c in text).split())


def parse_hours(spec: str) -> tuple[int, int]:
    """'9-17' -> (9, 17): the person's safe hours, Vietnam time, [from, to)."""
    start, _sep, end = (spec or "").partition("-")
    a, b = int(start), int(end)
    if not (0 <= a < 24 and 0 < b <= 24 and a < b):
        raise ValueError("safe hours must look like 9-17")
    return a, b


def schedule(s, case_id: int, conversation_id: int, days: float, safe_from: int, safe_to: int, actor: str,
             now: Optional[float] = None) -> int:
    now = time.time() if now is None else now
    row = Followup(case_id=case_id, conversation_id=conversation_id, due_at=now + days * 86400, safe_from=safe_from,
                   safe_to=safe_to, state=SCHEDULED, created_by=actor, created_at=now)
    s.add(row)
    s.flush()
    events.record(s, "followup_scheduled", actor, case_id, f"days={days:g} hours={safe_from}-{safe_to}", at=now)
    return row.id


def within(now: float, safe_from: int, safe_to: int) -> bool:
    from webhook.broadcast.subscribers import in_safe_hours

    return in_safe_hours(safe_from, safe_to, dt.datetime.fromtimestamp(now, VIETNAM).hour)


def cancel_for_contact(s, contact_id: int, now: float) -> int:
    """Every scheduled or unanswered follow-up of the contact's conversations (HUY, an opt-out)."""
    convs = select(Conversation.id).where(Conversation.contact_id == contact_id)
    n = s.execute(update(Followup).where(Followup.conversation_id.in_(convs),
                                         Followup.state.in_([SCHEDULED, SENT])).values(state=CANCELLED)
                  .execution_options(synchronize_session=False)).rowcount
    if n:
        events.record(s, "followup_cancelled", events.SYSTEM, None, "stop keyword", at=now)
    return n


def _held_back(s, contact_id: int, now: float) -> bool:
    """The person said "do not contact" (KLL) or set hours that do not include now."""
    from webhook.broadcast.subscribers import in_safe_hours
    from webhook.models import Subscriber

    sub = s.execute(select(Subscriber).where(Subscriber.contact_id == contact_id)).scalar_one_or_none()
    if sub is None:
        return False
    hour = dt.datetime.fromtimestamp(now, VIETNAM).hour
    return sub.do_not_contact or not in_safe_hours(sub.safe_start, sub.safe_end, hour)


def send_due(gw, now: Optional[float] = None) -> int:
    """Send the follow-ups that are due and inside their safe hours (the worker calls this)."""
    from webhook.queue import _send

    now = time.time() if now is None else now
    sent = 0
    with transaction(gw.Session) as s:
        due = [(f.id, f.case_id, f.conversation_id, f.safe_from, f.safe_to) for f in s.execute(
            select(Followup).where(Followup.state == SCHEDULED, Followup.due_at <= now).limit(200)).scalars()]
    for fid, case_id, conv_id, safe_from, safe_to in due:
        if not within(now, safe_from, safe_to):
            continue
        with transaction(gw.Session) as s:
            conv = s.get(Conversation, conv_id)
            contact = s.get(Contact, conv.contact_id)
            if contact.status != S.ACTIVE:
                s.execute(update(Followup).where(Followup.id == fid, Followup.state == SCHEDULED)
                          .values(state=CANCELLED))
                events.record(s, "followup_cancelled", events.SYSTEM, case_id, "contact stopped", at=now)
                continue
            if conv.mode != S.BOT or _held_back(s, contact.id, now):
                continue            # talking to a counsellor or queued, or paused / outside their hours
            won = s.execute(update(Followup).where(Followup.id == fid, Followup.state == SCHEDULED)
                            .values(state=SENT, sent_at=now)).rowcount == 1
            if won:
                events.record(s, "followup_sent", events.SYSTEM, case_id, at=now)
        if won:
            _send(gw, conv_id, "followup", replies.text(replies.FOLLOWUP))
            sent += 1
    return sent


def intercept(gw, conversation_id: int, text: str, now: Optional[float] = None) -> Optional[str]:
    """Called for every short inbound message before Rasa. Returns the reply to send when the
    message answered a follow-up ("1"/"có" or "2"/"chưa"), None to let the bot answer. STOP/HUY
    is not handled here: webhook/broadcast/subscribers.py records the opt-out, cancels the
    follow-ups (``cancel_for_contact``) and confirms it."""
    word = normalise(text)
    if len(word) > 12 or not (word in YES or word in NO):
        return None
    now = time.time() if now is None else now
    answer = "yes" if word in YES else "no"
    with transaction(gw.Session) as s:
        f = s.execute(select(Followup).where(Followup.conversation_id == conversation_id, Followup.state == SENT,
                                             Followup.sent_at >= now - ANSWER_WINDOW)
                      .order_by(Followup.id.desc()).limit(1)).scalar_one_or_none()
        if f is None:
            return None
        f.state, f.answer, f.answered_at = ANSWERED, answer, now
        case = s.get(Case, f.case_id)
        case.help_received = answer
        events.record(s, "followup_answer", events.SYSTEM, f.case_id, f"help_received={answer}", at=now)
        case_id = f.case_id
    if gw.settings.stats_enabled:
        from webhook.stats.episodes import mark_case
        mark_case(gw, case_id, helped=answer == "yes")
    if answer == "no":
        from webhook.pipeline import open_case

        open_case(gw, conversation_id, "medium", None, reason="followup_not_helped", source="followup", requested=True)
        return replies.text(replies.FOLLOWUP_NO)
    return replies.text(replies.FOLLOWUP_YES)
