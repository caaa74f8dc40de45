"""The Social Work Center's queue: order, atomic claims, hand-back, unclaimed alerts.

Plain functions over the database, used by the escalation API, the gateway's own risk rules and
(issue 4) the counsellor console. Nothing here knows about Flask.

Order: ``imminent`` > ``high`` > a person who asked for a counsellor > ``medium`` and the rest,
oldest first within each: an imminent case jumps the queue because someone must call within
minutes, and a person who asked for a human is not made to wait behind worries the bot can hold.

Claiming is atomic: a conditional UPDATE (``status = 'open'``) that exactly one counsellor can win,
on SQLite and PostgreSQL alike; "take the next case" locks the candidate row with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL so twenty counsellors pressing the button at once get
twenty different cases instead of queueing on one row.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable, Optional

from sqlalchemy import select, update

from webhook import events, replies
from webhook import states as S
from webhook.db import transaction
from webhook.models import Case, Conversation, Outbox
from webhook.rasa_client import RasaUnavailable

logger = logging.getLogger(__name__)

OPEN, CLAIMED, CLOSED = "open", "claimed", "closed"
CASE_STATES = {OPEN: {CLAIMED, CLOSED}, CLAIMED: {OPEN, CLOSED}, CLOSED: set()}
PRIORITY = {"imminent": 0, "high": 1}
REQUESTED_PRIORITY, OTHER_PRIORITY = 2, 3
# Seconds an unclaimed case may wait before supervisors are alerted (issue 4: 2 min / 10 min).
DEFAULT_ALERT_AFTER = {"imminent": 120.0, "high": 600.0}
HELP_RECEIVED = ("yes", "no", "unknown")


def priority_of(risk: str, requested: bool) -> int:
    if risk in PRIORITY:
        return PRIORITY[risk]
    return REQUESTED_PRIORITY if requested else OTHER_PRIORITY


@dataclass(frozen=True)
class QueuedCase:
    id: int
    conversation_id: int
    risk: str
    priority: int
    requested: bool
    topic: Optional[str]
    summary: Optional[str]
    status: str
    created_at: float
    claimed_by: Optional[str]


def _row(c: Case) -> QueuedCase:
    return QueuedCase(c.id, c.conversation_id, c.risk, c.priority, bool(c.requested), c.topic, c.summary, c.status,
                      c.created_at, c.claimed_by)


def waiting(gw, limit: int = 200) -> list[QueuedCase]:
    """Open cases in the order a counsellor should take them."""
    with transaction(gw.Session) as s:
        rows = s.execute(select(Case).where(Case.status == OPEN)
                         .order_by(Case.priority, Case.created_at, Case.id).limit(limit)).scalars()
        return [_row(c) for c in rows]


def _to_counsellor(s, conversation_id: int) -> None:
    conv = s.get(Conversation, conversation_id)
    if conv.mode in (S.BOT, S.QUEUED):
        if conv.mode == S.BOT:
            conv.mode = S.check(S.MODES, conv.mode, S.QUEUED)
        conv.mode = S.check(S.MODES, conv.mode, S.WITH_COUNSELLOR)


def claim(gw, case_id: int, counsellor: str, now: Optional[float] = None) -> bool:
    """True for exactly one of any number of counsellors claiming the same open case."""
    now = time.time() if now is None else now
    with transaction(gw.Session) as s:
        conv_id = _take(s, case_id, counsellor, now)
    if conv_id is not None:
        _rasa_event(gw, conv_id, "pause")
    return conv_id is not None


def _take(s, case_id: int, counsellor: str, now: float) -> Optional[int]:
    """The one conditional UPDATE that makes a claim atomic; the conversation id when won."""
    won = s.execute(update(Case).where(Case.id == case_id, Case.status == OPEN)
                    .values(status=CLAIMED, claimed_by=counsellor, claimed_at=now, updated_at=now)).rowcount == 1
    if not won:
        return None
    conv_id = s.execute(select(Case.conversation_id).where(Case.id == case_id)).scalar_one()
    _to_counsellor(s, conv_id)
    events.record(s, "claimed", counsellor, case_id, at=now)
    return conv_id


def claim_next(gw, counsellor: str, now: Optional[float] = None) -> Optional[int]:
    """Claim the case at the head of the queue; None when the queue is empty."""
    now = time.time() if now is None else now
    for _ in range(5):
        with transaction(gw.Session) as s:
            q = select(Case.id).where(Case.status == OPEN).order_by(Case.priority, Case.created_at, Case.id).limit(1)
            if s.bind.dialect.name == "postgresql":
                q = q.with_for_update(skip_locked=True)
            case_id = s.execute(q).scalar_one_or_none()
            if case_id is None:
                return None
            conv_id = _take(s, case_id, counsellor, now)
        if conv_id is not None:
            _rasa_event(gw, conv_id, "pause")
            return case_id
    return None


def hand_back(gw, case_id: int, counsellor: str, outcome: Optional[str] = None, resolve: bool = True,
              now: Optional[float] = None, referrals: Optional[list] = None, help_received: Optional[str] = None,
              override: bool = False, gbv_type: Optional[str] = None, stats_consent: Optional[str] = None) -> bool:
    """The counsellor gives the conversation back to the bot: the case is closed with its outcome,
    the referrals made and whether help was received (indicator đ), or returned to the queue with
    ``resolve=False``. Only the holder can do it (or a supervisor, ``override``)."""
    now = time.time() if now is None else now
    with transaction(gw.Session) as s:
        case = s.execute(select(Case).where(Case.id == case_id).with_for_update()).scalar_one_or_none()
        if case is None or case.status != CLAIMED or (case.claimed_by != counsellor and not override):
            return False
        case.status = S.check(CASE_STATES, case.status, CLOSED if resolve else OPEN)
        case.updated_at = now
        if resolve:
            case.resolved_at, case.outcome = now, (outcome or "")[:32] or None
            case.referrals = ",".join(referrals or [])[:200] or None
            case.help_received = help_received if help_received in HELP_RECEIVED else None
            case.gbv_type = gbv_type or case.gbv_type
            case.stats_consent = stats_consent or case.stats_consent
            events.record(s, "resolved", counsellor, case_id, f"outcome={case.outcome or ''}", at=now)
        else:
            case.claimed_by = case.claimed_at = None
            events.record(s, "released", counsellor, case_id, at=now)
        conv = s.get(Conversation, case.conversation_id)
        if conv.mode == S.WITH_COUNSELLOR:
            conv.mode = S.check(S.MODES, conv.mode, S.BOT if resolve else S.QUEUED)
        if resolve:
            # the counsellor's decision is the only thing that lowers a conversation's risk
            conv.risk, conv.asked = "none", None
        conv_id = conv.id
    if resolve and gw.settings.stats_enabled:
        from webhook.stats.episodes import mark_case
        mark_case(gw, case_id, sought_help=bool(referrals) or None, gbv_type=gbv_type, consent=stats_consent,
                  helped={"yes": True, "no": False}.get(help_received or ""))
    # Back in the queue the bot keeps the person company again; resolved, it also says so.
    _rasa_event(gw, conv_id, "resume")
    if resolve:
        _send(gw, conv_id, "bot", replies.text(replies.HANDED_BACK))
    return True


def reply(gw, case_id: int, counsellor: str, text: str) -> Optional[int]:
    """A counsellor's message, out on the person's own channel through the outbox (order kept,
    retries, rate limits). Only the counsellor holding the case may write; returns the first
    outbox row id, or None when refused."""
    text = (text or "").strip()
    if not text:
        return None
    with transaction(gw.Session) as s:
        case = s.get(Case, case_id)
        if case is None or case.status != CLAIMED or case.claimed_by != counsellor:
            return None
        conv_id = case.conversation_id
    return _send(gw, conv_id, "counsellor", text, case_id=case_id, actor=counsellor)


def transfer(gw, case_id: int, by: str, to: str, override: bool = False, now: Optional[float] = None) -> bool:
    """Hand a claimed case to another counsellor; its notes and transcript go with it. Only the
    holder may transfer (or a supervisor, ``override``). The conversation stays with a human."""
    now = time.time() if now is None else now
    if not to or to == by and not override:
        return False
    with transaction(gw.Session) as s:
        case = s.execute(select(Case).where(Case.id == case_id).with_for_update()).scalar_one_or_none()
        if case is None or case.status != CLAIMED or (case.claimed_by != by and not override):
            return False
        previous = case.claimed_by
        case.claimed_by, case.claimed_at, case.updated_at = to[:64], now, now
        events.record(s, "transferred", by, case_id, f"from={previous} to={to}"[:200], at=now)
    return True


def _send(gw, conversation_id: int, kind: str, text: str, case_id: Optional[int] = None,
          actor: str = events.SYSTEM) -> int:
    from webhook import pipeline

    with transaction(gw.Session) as s:
        conv = s.get(Conversation, conversation_id)
        adapter = gw.adapters.get(conv.channel)
        first = None
        now = time.time()
        for seq, part in enumerate(pipeline.parts(gw, adapter, text)):
            row = Outbox(conversation_id=conv.id, contact_id=conv.contact_id, channel=conv.channel, seq=seq, kind=kind,
                         body_enc=gw.vault.seal(part), priority=pipeline.PRIORITY_CONVERSATION, state=S.QUEUED_OUT,
                         attempts=0, next_attempt_at=now, flagged=False, created_at=now)
            s.add(row)
            s.flush()
            first = first or row.id
        if case_id is not None:
            events.record(s, "replied", actor, case_id, f"outbox={first}")
    pipeline.deliver_conversation(gw, conversation_id)
    return first


def out_of_hours_notice(gw, conversation_id: int, now: Optional[float] = None) -> bool:
    """Tell the person once, after the bot's own answer, when their case opened while no
    counsellor is on duty: which numbers answer now, and that the case waits for the next shift."""
    from webhook.hours import staffed

    settings = gw.settings
    if not settings.hours.strip():
        return False
    now = time.time() if now is None else now
    if staffed(now, settings.hours, settings.holidays):
        return False
    with transaction(gw.Session) as s:
        marked = s.execute(update(Case).where(Case.conversation_id == conversation_id, Case.status == OPEN,
                                              Case.notice_at.is_(None)).values(notice_at=now)).rowcount
    if not marked:
        return False
    _send(gw, conversation_id, "safety", replies.text(replies.OUT_OF_HOURS))
    return True


def alert_oncall(gw, case: QueuedCase, waited: float) -> int:
    """Tell the supervisors on call (HELPLINE_ONCALL) that an urgent case waits. The alert names
    the case, its risk and the wait, nothing about the person. Returns how many were reached."""
    from bot.messages import _

    text = _("Helpline: case %(id)s (%(risk)s) has waited %(minutes)s min without a counsellor.") % {
        "id": case.id, "risk": case.risk, "minutes": int(waited // 60)}
    reached = 0
    for target in filter(None, (t.strip() for t in gw.settings.oncall.split(","))):
        channel, _sep, address = target.partition(":")
        adapter = gw.adapters.get(channel)
        if adapter is None or not address:
            logger.warning("oncall_target_unusable channel=%s", channel)
            continue
        for part in adapter.render(text):
            result = adapter.send(address, part)
        if result.ok:
            reached += 1
        else:
            logger.warning("oncall_alert_failed case=%s channel=%s error=%s", case.id, channel, result.error_code)
    logger.info("oncall_alert case=%s risk=%s reached=%s", case.id, case.risk, reached)
    return reached


def _rasa_event(gw, conversation_id: int, event: str) -> None:
    """Pause or resume Rasa for the conversation. The gateway's mode is what routes messages
    (Rasa's own pause is cleared when its session expires), so a failure here is logged and
    does not undo the claim."""
    with transaction(gw.Session) as s:
        sender = s.get(Conversation, conversation_id).rasa_sender
    try:
        gw.rasa.append_events(sender, [{"event": event}])
    except RasaUnavailable as exc:
        logger.warning("rasa_%s_failed conversation=%s error=%s", event, conversation_id, exc)


def due_alerts(gw, now: Optional[float] = None, after: Optional[dict] = None,
               notify: Optional[Callable[[QueuedCase, float], None]] = None) -> list[QueuedCase]:
    """Open cases that waited longer than their risk allows and were not alerted yet: each is
    returned (and passed to ``notify``) once. The clock is a parameter so tests can freeze it."""
    now = time.time() if now is None else now
    after = after or DEFAULT_ALERT_AFTER
    due: list[QueuedCase] = []
    with transaction(gw.Session) as s:
        for risk, seconds in after.items():
            rows = s.execute(select(Case).where(Case.status == OPEN, Case.risk == risk, Case.alerted_at.is_(None),
                                                Case.created_at <= now - seconds)
                             .order_by(Case.priority, Case.created_at)).scalars()
            for case in rows:
                case.alerted_at = now
                due.append(_row(case))
                events.record(s, "alert", events.SYSTEM, case.id, f"risk={case.risk} waited={int(now - case.created_at)}s",
                              at=now)
    for case in due:
        if notify is not None:
            notify(case, now - case.created_at)
    return due
