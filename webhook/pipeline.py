"""What happens to a message, from the moment it is verified to the moment its reply is delivered.

    receive()   store first (de-duplicated on channel + provider message id), then answer the
                provider; nothing below runs inside the provider's request
    process()   one conversation at a time (a lease in the database), oldest message first:
                gateway risk rules -> Rasa's REST channel -> replies into the outbox
                Rasa down or slow -> the safe reply with the hotlines at once, the message is
                kept as ``deferred`` and replayed, in order, when Rasa answers again
    deliver()   the outbox, head of line per conversation, with retries, backoff and per-channel
                rate limits; conversation traffic before bulk traffic

The gateway runs the shared risk rules (``bot.understanding``) on every message itself, so a
``high`` or ``imminent`` message reaches the counsellors' queue even when Rasa or the action
server is down, and the person gets the emergency numbers even when Rasa cannot answer.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from bot.understanding import understand
from webhook import replies, states as S
from webhook.channels.base import EMPTY, EVENT, MEDIA, TEXT, Inbound
from webhook.channels.zalo import within_window
from webhook.db import transaction
from webhook.models import Case, Contact, Conversation, Message, Outbox
from webhook.rasa_client import RasaUnavailable

logger = logging.getLogger(__name__)

URGENT = {"high", "imminent"}
RISK_ORDER = ["none", "low", "medium", "high", "imminent"]
LEASE_SECONDS = 60.0
# A "stuck" pending message (its gateway process died before handing it on) is picked up after:
STALE_PENDING_SECONDS = 20.0
DEGRADED_NOTICE_EVERY = 600.0      # one "we got your message" per conversation per 10 minutes
SEND_CLAIM_SECONDS = 60.0
DEGRADED_SEQ = 1000                # gateway replies never collide with Rasa's (seq 0..)
PRIORITY_CONVERSATION, PRIORITY_BULK = 0, 10
# Kinds that may go to a contact who said STOP: answers to their own new message.
CONVERSATION_KINDS = {"bot", "safety", "counsellor"}


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def backoff(attempts: int) -> float:
    """2, 4, 8 … seconds, capped at 5 minutes."""
    return min(300.0, 2.0 ** max(1, attempts))


@dataclass
class Received:
    message_id: Optional[int]
    conversation_id: Optional[int]
    duplicate: bool = False


# --- receive ---------------------------------------------------------------------------------------

def receive(gw, inbound: Inbound) -> Received:
    """Store one verified, parsed delivery. A repeated delivery (same channel and provider id)
    is recognised by the database's unique constraint and changes nothing."""
    vault = gw.vault
    pseudonym = vault.pseudonym(inbound.channel, inbound.address) if inbound.address else None
    if inbound.kind == EVENT:
        if inbound.event == "stopped" and pseudonym:
            with transaction(gw.Session) as s:
                s.execute(update(Contact).where(Contact.channel == inbound.channel, Contact.pseudonym == pseudonym)
                          .values(status=S.STOPPED, stopped_reason=f"{inbound.channel}_blocked"))
        return Received(None, None)
    for attempt in range(3):
        try:
            with transaction(gw.Session) as s:
                contact = s.execute(select(Contact).where(Contact.channel == inbound.channel,
                                                          Contact.pseudonym == pseudonym)).scalar_one_or_none()
                now = time.time()
                if contact is None:
                    contact = Contact(channel=inbound.channel, pseudonym=pseudonym,
                                      address_enc=vault.seal(inbound.address), status=S.ACTIVE)
                    s.add(contact)
                    s.flush()
                conv = s.execute(select(Conversation).where(Conversation.contact_id == contact.id)
                                 .order_by(Conversation.id.desc()).limit(1)).scalar_one_or_none()
                if conv is None or conv.mode == S.CLOSED:
                    conv = Conversation(contact_id=contact.id, channel=inbound.channel,
                                        rasa_sender=f"{inbound.channel}-{pseudonym}-{int(now * 1000) % 10**9}"
                                        if conv is not None else f"{inbound.channel}-{pseudonym}", mode=S.BOT)
                    s.add(conv)
                    s.flush()
                msg = Message(conversation_id=conv.id, channel=inbound.channel,
                              provider_msg_id=inbound.provider_msg_id, kind=inbound.kind,
                              body_enc=vault.seal(inbound.text) if inbound.kind == TEXT else None,
                              state=S.PENDING, client_ref=inbound.client_ref, received_at=now)
                s.add(msg)
                s.flush()
                # A provider-side block is lifted by the person writing again; a STOP keyword is a
                # choice about campaign messages and stays until they write DK.
                if contact.status == S.STOPPED and (contact.stopped_reason or "").endswith("_blocked"):
                    contact.status, contact.stopped_reason = S.ACTIVE, None
                contact.last_inbound_at = now
                contact.replies_since_inbound = 0
                if inbound.reply_ref:
                    contact.reply_ref = inbound.reply_ref
                conv.updated_at = now
                return Received(msg.id, conv.id)
        except IntegrityError:
            # Either this exact delivery is already stored (a duplicate), or a concurrent first
            # message created the same contact: look again.
            with transaction(gw.Session) as s:
                dup = s.execute(select(Message.id, Message.conversation_id).where(
                    Message.channel == inbound.channel, Message.provider_msg_id == inbound.provider_msg_id)).first()
            if dup is not None:
                return Received(dup[0], dup[1], duplicate=True)
            if attempt == 2:
                raise
    raise RuntimeError("unreachable")


# --- process ---------------------------------------------------------------------------------------

def claim(gw, conversation_id: int, owner: str) -> bool:
    now = time.time()
    with transaction(gw.Session) as s:
        res = s.execute(update(Conversation).where(
            Conversation.id == conversation_id,
            or_(Conversation.lease_owner.is_(None), Conversation.lease_until < now, Conversation.lease_owner == owner))
            .values(lease_owner=owner, lease_until=now + LEASE_SECONDS))
        return res.rowcount == 1


def release(gw, conversation_id: int, owner: str) -> None:
    with transaction(gw.Session) as s:
        s.execute(update(Conversation).where(Conversation.id == conversation_id, Conversation.lease_owner == owner)
                  .values(lease_owner=None, lease_until=None))


def _next_message(gw, conversation_id: int) -> Optional[Message]:
    with transaction(gw.Session) as s:
        return s.execute(select(Message).where(
            Message.conversation_id == conversation_id, Message.state.in_([S.PENDING, S.DEFERRED]))
            .order_by(Message.id).limit(1)).scalar_one_or_none()


def process_conversation(gw, conversation_id: int) -> int:
    """Hand every waiting message of one conversation to the bot, oldest first; then deliver its
    replies. Returns how many messages were answered. Safe to call from any thread or process:
    the lease makes sure one worker at a time owns the conversation."""
    owner = _owner()
    if not claim(gw, conversation_id, owner):
        return 0
    answered = 0
    try:
        while True:
            msg = _next_message(gw, conversation_id)
            if msg is None:
                break
            if not handle(gw, msg):
                # Rasa is down. Everything newer waits, in order, for the replay, but each new
                # message still gets the rules, the queue and its safe reply now: a danger message
                # must not sit behind an ordinary one.
                for waiting in _pending_messages(gw, conversation_id):
                    handle(gw, waiting, degraded=True)
                break
            answered += 1
    finally:
        release(gw, conversation_id, owner)
    deliver_conversation(gw, conversation_id)
    return answered


def _pending_messages(gw, conversation_id: int) -> list[Message]:
    with transaction(gw.Session) as s:
        return list(s.execute(select(Message).where(Message.conversation_id == conversation_id,
                                                    Message.state == S.PENDING).order_by(Message.id)).scalars())


def handle(gw, msg: Message, degraded: bool = False) -> bool:
    """Answer one message. False when it had to be deferred (Rasa unavailable, or ``degraded``:
    an older message of the conversation is waiting for Rasa)."""
    with transaction(gw.Session) as s:
        conv = s.get(Conversation, msg.conversation_id)
        contact = s.get(Contact, conv.contact_id)
        channel, sender, mode = conv.channel, conv.rasa_sender, conv.mode
    adapter = gw.adapters.get(channel)
    if msg.kind in (MEDIA, EMPTY):
        reply = replies.TEXT_ONLY if msg.kind == MEDIA else replies.EMPTY
        _finish(gw, msg, S.IGNORED, [("safety", replies.text(reply))], adapter, seq0=DEGRADED_SEQ)
        return True
    text = gw.vault.open(msg.body_enc) or ""
    text = text[: gw.settings.max_text_chars]
    assessment = None
    if msg.state == S.PENDING:
        # The shared rules, on every message, independent of Rasa: the queue must hear about
        # danger even when the model or the action server cannot.
        assessment = understand(text, None)
        _record_assessment(gw, msg, assessment)
        if assessment.risk in URGENT:
            open_case(gw, msg.conversation_id, assessment.risk, assessment.topic,
                      reason=(assessment.reasons or ["rules"])[0][:64], source="rules")
    if mode == S.WITH_COUNSELLOR:
        _set_state(gw, msg, S.HELD)        # the counsellor's screen shows it (issue 4)
        return True
    if degraded or not gw.rasa.available():
        return _degrade(gw, msg, text, assessment, adapter)
    metadata = {"channel": channel, "language": gw.settings.locale, "message_id": msg.id}
    try:
        bot = gw.rasa.send(sender, text, metadata, channel)
    except RasaUnavailable as exc:
        logger.warning("rasa_unavailable conversation=%s error=%s", msg.conversation_id, exc)
        gw.rasa.trip()
        return _degrade(gw, msg, text, assessment, adapter)
    texts = []
    for r in bot:
        if not isinstance(r, dict):
            continue
        # quick replies become a line of choices under their question (every channel can show it)
        choices = " / ".join(b["title"] for b in (r.get("buttons") or []) if isinstance(b, dict) and b.get("title"))
        body = "\n".join(part for part in (r.get("text"), choices) if part)
        if body:
            texts.append(body)
    _finish(gw, msg, S.ANSWERED, [("bot", t) for t in texts], adapter, seq0=0)
    return True


def _record_assessment(gw, msg, assessment) -> None:
    with transaction(gw.Session) as s:
        s.execute(update(Message).where(Message.id == msg.id).values(risk=assessment.risk, topic=assessment.topic))


def _set_state(gw, msg: Message, new: str) -> None:
    S.check(S.INBOUND, msg.state, new)
    with transaction(gw.Session) as s:
        s.execute(update(Message).where(Message.id == msg.id, Message.state == msg.state)
                  .values(state=new, answered_at=time.time() if new == S.ANSWERED else None))


def _finish(gw, msg: Message, new_state: str, texts: list[tuple[str, str]], adapter, seq0: int) -> None:
    """Replies into the outbox and the message's new state, in one transaction: a crash leaves
    either both or neither, and (message, seq) is unique, so a replay cannot double a reply."""
    S.check(S.INBOUND, msg.state, new_state)
    with transaction(gw.Session) as s:
        conv = s.get(Conversation, msg.conversation_id)
        seq = seq0
        for kind, text in texts:
            for part in (adapter.render(text) if adapter else [text]):
                s.add(Outbox(conversation_id=conv.id, contact_id=conv.contact_id, channel=conv.channel,
                             source_message_id=msg.id, seq=seq, kind=kind, body_enc=gw.vault.seal(part),
                             priority=PRIORITY_CONVERSATION, state=S.QUEUED_OUT))
                seq += 1
        res = s.execute(update(Message).where(Message.id == msg.id, Message.state == msg.state)
                        .values(state=new_state, answered_at=time.time(), attempts=Message.attempts + 1))
        if res.rowcount != 1:
            raise S.TransitionError(f"message {msg.id} changed state under us")


def _degrade(gw, msg: Message, text: str, assessment, adapter) -> bool:
    """Rasa cannot answer: the person hears from us at once, the message waits for the replay."""
    if assessment is None:
        assessment = understand(text, None)
    urgent = assessment.risk in URGENT
    now = time.time()
    out: list[tuple[str, str]] = []
    with transaction(gw.Session) as s:
        conv = s.get(Conversation, msg.conversation_id)
        already = s.execute(select(Outbox.id).where(Outbox.source_message_id == msg.id,
                                                    Outbox.seq >= DEGRADED_SEQ).limit(1)).first()
        recent = conv.degraded_notice_at and now - conv.degraded_notice_at < DEGRADED_NOTICE_EVERY
        if not already and (urgent or not recent):
            if urgent:
                out.append(("safety", replies.text(replies.SELF_HARM if assessment.topic == "self_harm"
                                                   else replies.EMERGENCY)))
            else:
                out.append(("safety", replies.text(replies.DEGRADED)))
            conv.degraded_notice_at = now
        seq = DEGRADED_SEQ
        for kind, t in out:
            for part in (adapter.render(t) if adapter else [t]):
                s.add(Outbox(conversation_id=conv.id, contact_id=conv.contact_id, channel=conv.channel,
                             source_message_id=msg.id, seq=seq, kind=kind, body_enc=gw.vault.seal(part),
                             priority=PRIORITY_CONVERSATION, state=S.QUEUED_OUT))
                seq += 1
        if msg.state == S.PENDING:
            s.execute(update(Message).where(Message.id == msg.id, Message.state == S.PENDING)
                      .values(state=S.DEFERRED, attempts=Message.attempts + 1))
    return False


def open_case(gw, conversation_id: int, risk: str, topic: Optional[str], reason: str, source: str) -> int:
    """One open case per conversation; a higher risk raises it, a lower one never lowers it."""
    with transaction(gw.Session) as s:
        case = s.execute(select(Case).where(Case.conversation_id == conversation_id, Case.status != "closed")
                         .order_by(Case.id.desc()).limit(1)).scalar_one_or_none()
        now = time.time()
        if case is None:
            case = Case(conversation_id=conversation_id, risk=risk, topic=topic, reason=reason, source=source,
                        status="open", created_at=now, updated_at=now)
            s.add(case)
            conv = s.get(Conversation, conversation_id)
            if conv.mode == S.BOT:
                conv.mode = S.check(S.MODES, conv.mode, S.QUEUED)
            s.flush()
            logger.info("case_opened case=%s risk=%s source=%s", case.id, risk, source)
        elif RISK_ORDER.index(risk) > RISK_ORDER.index(case.risk if case.risk in RISK_ORDER else "none"):
            case.risk, case.updated_at = risk, now
            if topic:
                case.topic = topic
        return case.id


# --- deliver ---------------------------------------------------------------------------------------

class RateLimiter:
    """A token bucket per channel (per process): providers throttle or ban senders that burst."""

    def __init__(self, rates: dict):
        self.rates = dict(rates)
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, channel: str) -> None:
        rate = self.rates.get(channel)
        if not rate:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next.get(channel, now))
            self._next[channel] = slot + 1.0 / rate
        if slot > now:
            time.sleep(slot - now)


def _claim_outbox(gw, row_id: int, owner: str) -> bool:
    now = time.time()
    with transaction(gw.Session) as s:
        res = s.execute(update(Outbox).where(Outbox.id == row_id, Outbox.state == S.QUEUED_OUT,
                                             Outbox.next_attempt_at <= now)
                        .values(state=S.SENDING, claimed_by=owner, claimed_until=now + SEND_CLAIM_SECONDS,
                                attempts=Outbox.attempts + 1))
        return res.rowcount == 1


def _head_of_line(gw, conversation_id: int) -> Optional[Outbox]:
    with transaction(gw.Session) as s:
        return s.execute(select(Outbox).where(Outbox.conversation_id == conversation_id,
                                              Outbox.state.in_([S.QUEUED_OUT, S.SENDING]))
                         .order_by(Outbox.priority, Outbox.id).limit(1)).scalar_one_or_none()


def deliver_conversation(gw, conversation_id: int, limit: int = 50) -> int:
    """Send a conversation's queued replies in order; stop at the first that must wait."""
    sent = 0
    owner = _owner()
    for _ in range(limit):
        row = _head_of_line(gw, conversation_id)
        if row is None or row.state != S.QUEUED_OUT or row.next_attempt_at > time.time():
            break
        if not _claim_outbox(gw, row.id, owner):
            break
        if not send_row(gw, row.id):
            break
        sent += 1
    return sent


def send_row(gw, row_id: int) -> bool:
    """Send one claimed outbox row. True when the provider accepted it."""
    with transaction(gw.Session) as s:
        row = s.get(Outbox, row_id)
        contact = s.get(Contact, row.contact_id)
        address = gw.vault.open(contact.address_enc)
        body = gw.vault.open(row.body_enc)
        channel, kind, attempts = row.channel, row.kind, row.attempts
        status, stopped_reason = contact.status, contact.stopped_reason
        last_inbound, replies_since, reply_ref = contact.last_inbound_at, contact.replies_since_inbound, contact.reply_ref
    adapter = gw.adapters.get(channel)
    refusal = None
    if adapter is None:
        refusal = "channel_disabled"
    elif address is None or body is None:
        refusal = "unreadable"
    elif status == S.STOPPED and (kind not in CONVERSATION_KINDS or stopped_reason in ("sms_21610", "telegram_blocked",
                                                                                          "zalo_blocked")):
        refusal = "stopped"
    elif channel == "zalo" and not within_window(last_inbound, replies_since):
        refusal = "zalo_window"
    if refusal:
        _outcome(gw, row_id, S.UNDELIVERABLE, error=refusal, flag=kind in CONVERSATION_KINDS)
        return False
    gw.limiter.wait(channel)
    result = adapter.send(address, body, reply_ref=reply_ref)
    if result.ok:
        _outcome(gw, row_id, S.SENT, provider_id=result.provider_msg_id, zalo=(channel == "zalo"))
        return True
    if result.stop_contact:
        with transaction(gw.Session) as s:
            s.execute(update(Contact).where(Contact.id == row.contact_id).values(
                status=S.STOPPED, stopped_reason=f"{channel}_{'21610' if channel == 'sms' else 'blocked'}"))
    if result.retry and attempts < gw.settings.send_max_attempts:
        delay = result.retry_after if result.retry_after else backoff(attempts)
        _outcome(gw, row_id, S.QUEUED_OUT, error=result.error_code, retry_in=delay)
    elif result.retry:
        _outcome(gw, row_id, S.FAILED, error=result.error_code, flag=kind in CONVERSATION_KINDS)
    else:
        _outcome(gw, row_id, S.UNDELIVERABLE, error=result.error_code, flag=kind in CONVERSATION_KINDS)
    logger.info("send_failed outbox=%s channel=%s error=%s", row_id, channel, result.error_code)
    return False


def _outcome(gw, row_id: int, new: str, provider_id: Optional[str] = None, error: Optional[str] = None,
             retry_in: float = 0.0, flag: bool = False, zalo: bool = False) -> None:
    with transaction(gw.Session) as s:
        row = s.get(Outbox, row_id)
        S.check(S.OUTBOX, row.state, new)
        row.state = new
        row.claimed_by = row.claimed_until = None
        if provider_id:
            row.provider_msg_id = provider_id
        if error:
            row.error_code = error[:32]
        if new == S.SENT:
            row.sent_at = time.time()
            if zalo:
                s.execute(update(Contact).where(Contact.id == row.contact_id)
                          .values(replies_since_inbound=Contact.replies_since_inbound + 1))
        if new == S.QUEUED_OUT:
            row.next_attempt_at = time.time() + retry_in
        if flag:
            # A reply that cannot reach the person must reach a counsellor instead (issue 4
            # shows flagged rows in the console); a case makes sure someone looks.
            row.flagged = True
            conv_id = row.conversation_id
    if flag:
        open_case(gw, conv_id, "medium", None, reason=f"undelivered:{(error or '')[:40]}", source="delivery")


def status_callback(gw, channel: str, provider_msg_id: str, status: str, error_code: Optional[str]) -> bool:
    """A provider's delivery report. Unknown ids are ignored (reports can outlive retention)."""
    with transaction(gw.Session) as s:
        row = s.execute(select(Outbox).where(Outbox.channel == channel,
                                             Outbox.provider_msg_id == provider_msg_id)).scalar_one_or_none()
        if row is None:
            return False
        if status == "delivered" and row.state == S.SENT:
            row.state = S.DELIVERED
        elif status in ("undelivered", "failed") and row.state in (S.SENT, S.DELIVERED):
            row.state = S.FAILED if row.state == S.SENT else row.state
            row.error_code = (error_code or status)[:32]
            row.flagged = row.kind in CONVERSATION_KINDS
            if error_code == "21610":
                contact = s.get(Contact, row.contact_id)
                contact.status, contact.stopped_reason = S.STOPPED, "sms_21610"
        conv_id, flagged = row.conversation_id, row.flagged and row.state == S.FAILED
    if flagged:
        open_case(gw, conv_id, "medium", None, reason=f"undelivered:{error_code or status}", source="delivery")
    return True


# --- the sweeper: replay, retries, stale claims ------------------------------------------------------

def sweep(gw, limit: int = 200) -> dict:
    """One pass of the worker: what the fast path could not finish. Idempotent; any number of
    workers may run it (leases and claims keep them apart)."""
    now = time.time()
    stats = {"replayed": 0, "sent": 0, "reset": 0, "spooled": 0}
    try:
        stats["spooled"] = gw.spool.drain(gw)
    except Exception as exc:            # the database is still down: try again next pass
        logger.warning("spool_drain_failed error=%s", type(exc).__name__)
    with transaction(gw.Session) as s:
        res = s.execute(update(Outbox).where(Outbox.state == S.SENDING, Outbox.claimed_until < now)
                        .values(state=S.QUEUED_OUT, claimed_by=None, claimed_until=None))
        stats["reset"] = res.rowcount
    rasa_ok = gw.rasa.available() or gw.rasa.healthy()
    if rasa_ok:
        gw.rasa.down_until = 0.0
        with transaction(gw.Session) as s:
            convs = [r[0] for r in s.execute(
                select(Message.conversation_id).where(or_(
                    Message.state == S.DEFERRED,
                    and_(Message.state == S.PENDING, Message.received_at < now - STALE_PENDING_SECONDS)))
                .group_by(Message.conversation_id).order_by(Message.conversation_id).limit(limit))]
        for conv_id in convs:
            stats["replayed"] += process_conversation(gw, conv_id)
    with transaction(gw.Session) as s:
        convs = [r[0] for r in s.execute(
            select(Outbox.conversation_id).where(Outbox.state == S.QUEUED_OUT, Outbox.next_attempt_at <= now)
            .group_by(Outbox.conversation_id)
            # conversation traffic first: bulk rows wait while any conversation row waits
            .order_by(func.min(Outbox.priority), func.min(Outbox.id)).limit(limit))]
    for conv_id in convs:
        stats["sent"] += deliver_conversation(gw, conv_id)
    return stats
