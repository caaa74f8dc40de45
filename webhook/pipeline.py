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
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from bot.context import Context
from bot.nlu.language import is_english
from bot.understanding import understand
from webhook import events, replies, sql as Q, states as S
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
STALE_PENDING_SECONDS = 5.0
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
                contact_id = s.execute(select(Contact.id).where(Contact.channel == inbound.channel,
                                                                Contact.pseudonym == pseudonym)).scalar()
            if contact_id is not None:      # Zalo unfollow, Telegram block: no more campaign messages
                _provider_opt_out(gw, contact_id, f"{inbound.channel}_blocked")
        return Received(None, None)
    for attempt in range(3):
        try:
            with gw.tx() as c:
                dup = c.execute(Q.DUPLICATE, {"channel": inbound.channel, "pid": inbound.provider_msg_id}).first()
                if dup is not None:
                    return Received(dup[0], dup[1], duplicate=True)
                now = time.time()
                contact = c.execute(Q.CONTACT, {"channel": inbound.channel, "pseudonym": pseudonym}).first()
                if contact is None:
                    contact_id = c.execute(Q.INSERT_CONTACT, {
                        "channel": inbound.channel, "pseudonym": pseudonym, "address_enc": vault.seal(inbound.address),
                        "now": now}).scalar_one()
                    status, reason = S.ACTIVE, None
                else:
                    contact_id, status, reason = contact
                conv = c.execute(Q.LAST_CONVERSATION, {"contact_id": contact_id}).first()
                if conv is None or conv[1] == S.CLOSED:
                    sender = f"{inbound.channel}-{pseudonym}" if conv is None else \
                        f"{inbound.channel}-{pseudonym}-{int(now * 1000) % 10**9}"
                    conv_id = c.execute(Q.INSERT_CONVERSATION, {"contact_id": contact_id, "channel": inbound.channel,
                                                                "sender": sender, "now": now}).scalar_one()
                else:
                    conv_id = conv[0]
                msg_id = c.execute(Q.INSERT_MESSAGE, {
                    "conversation_id": conv_id, "channel": inbound.channel, "pid": inbound.provider_msg_id,
                    "kind": inbound.kind, "body_enc": vault.seal(inbound.text) if inbound.kind == TEXT else None,
                    "client_ref": inbound.client_ref, "now": now}).scalar_one()
                # A provider-side block is lifted by the person writing again; a STOP keyword is a
                # choice about campaign messages and stays until they write DK.
                if status == S.STOPPED and (reason or "").endswith("_blocked"):
                    status, reason = S.ACTIVE, None
                c.execute(Q.CONTACT_INBOUND, {"now": now, "reply_ref": inbound.reply_ref, "status": status,
                                              "reason": reason, "id": contact_id})
                return Received(msg_id, conv_id)
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
    with gw.tx() as c:
        return c.execute(Q.CLAIM, {"owner": owner, "until": now + LEASE_SECONDS, "id": conversation_id,
                                   "now": now}).rowcount == 1


def release(gw, conversation_id: int, owner: str) -> None:
    with gw.tx() as c:
        c.execute(Q.RELEASE, {"id": conversation_id, "owner": owner})


@dataclass
class Msg:
    """The fields of a message the pipeline needs (a light stand-in for the ORM row)."""
    id: int
    conversation_id: int
    state: str
    kind: str
    body_enc: Optional[bytes]


def _next_message(gw, conversation_id: int, owner: Optional[str] = None):
    """The oldest waiting message and its conversation's routing facts, in one transaction. With
    ``owner``, the lease is released in the same transaction when nothing waits."""
    with gw.tx() as c:
        row = c.execute(Q.NEXT_MESSAGE, {"id": conversation_id}).first()
        if row is None:
            if owner is not None:
                c.execute(Q.RELEASE, {"id": conversation_id, "owner": owner})
            return None, None
    return _msg(row)


def _msg(row):
    body = bytes(row[4]) if row[4] is not None else None
    return Msg(row[0], row[1], row[2], row[3], body), {"channel": row[5], "sender": row[6], "mode": row[7]}


def process_conversation(gw, conversation_id: int) -> Optional[int]:
    """Hand every waiting message of one conversation to the bot, oldest first, sending each
    one's replies before the next is handled. Returns how many messages were answered, or None
    when another worker holds the conversation. Safe from any thread or process: the lease makes
    sure one worker at a time owns a conversation, so Rasa sees its messages in order."""
    owner = _owner()
    msg, conv = _claim_and_next(gw, conversation_id, owner)
    if msg is False:
        return None
    answered = 0
    released = msg is None
    leftovers = False
    try:
        while msg is not None:
            if not handle(gw, msg, conv=conv):
                # Rasa is down. Everything newer waits, in order, for the replay, but each new
                # message still gets the rules, the queue and its safe reply now: a danger message
                # must not sit behind an ordinary one.
                for waiting in _pending_messages(gw, conversation_id):
                    handle(gw, waiting, degraded=True, conv=conv)
                leftovers = True
                break
            answered += 1
            if gw.settings.hours:
                from webhook.queue import out_of_hours_notice
                out_of_hours_notice(gw, conversation_id)
            msg, conv = _next_message(gw, conversation_id, owner)
        released = msg is None
    finally:
        if not released:
            release(gw, conversation_id, owner)
    if leftovers or answered == 0 or getattr(_local, "unsent", False):
        deliver_conversation(gw, conversation_id)
    _local.unsent = False
    return answered


_local = threading.local()     # set when a fast-path send left rows for the queue


def _claim_and_next(gw, conversation_id: int, owner: str):
    """The lease and the first waiting message in one transaction: (False, None) when another
    worker holds the conversation; (None, None), lease already released, when nothing waits."""
    now = time.time()
    with gw.tx() as c:
        if c.execute(Q.CLAIM, {"owner": owner, "until": now + LEASE_SECONDS, "id": conversation_id,
                               "now": now}).rowcount != 1:
            return False, None
        row = c.execute(Q.NEXT_MESSAGE, {"id": conversation_id}).first()
        if row is None:
            c.execute(Q.RELEASE, {"id": conversation_id, "owner": owner})
            return None, None
    return _msg(row)


def _pending_messages(gw, conversation_id: int) -> list[Message]:
    with transaction(gw.Session) as s:
        return list(s.execute(select(Message).where(Message.conversation_id == conversation_id,
                                                    Message.state == S.PENDING).order_by(Message.id)).scalars())


def handle(gw, msg: Message, degraded: bool = False, conv: Optional[dict] = None) -> bool:
    """Answer one message. False when it had to be deferred (Rasa unavailable, or ``degraded``:
    an older message of the conversation is waiting for Rasa)."""
    if conv is None:
        with transaction(gw.Session) as s:
            c = s.get(Conversation, msg.conversation_id)
            conv = {"channel": c.channel, "sender": c.rasa_sender, "mode": c.mode}
    channel, sender, mode = conv["channel"], conv["sender"], conv["mode"]
    adapter = gw.adapters.get(channel)
    if msg.kind in (MEDIA, EMPTY):
        reply = replies.TEXT_ONLY if msg.kind == MEDIA else replies.EMPTY
        _finish(gw, msg, S.IGNORED, [("safety", replies.text(reply))], adapter, seq0=DEGRADED_SEQ)
        return True
    text = gw.vault.open(msg.body_enc) or ""
    text = text[: gw.settings.max_text_chars]
    ctx = load_context(gw, msg.conversation_id)
    assessment = None
    if msg.state == S.PENDING:
        # The shared rules, on every message, independent of Rasa: the queue must hear about
        # danger even when the model or the action server cannot. The message is read in its
        # conversation ("tối nay ổng về" after a disclosure of beatings is danger).
        assessment = understand(text, None, context=ctx)
        save_context(gw, msg.conversation_id, ctx.after(assessment.risk, assessment.topic, ctx.asked))
        if assessment.risk in URGENT:
            open_case(gw, msg.conversation_id, assessment.risk, assessment.topic,
                      reason=(assessment.reasons or ["rules"])[0][:64], source="rules")
    if mode == S.WITH_COUNSELLOR:
        first = msg.state == S.PENDING
        _set_state(gw, msg, S.HELD, assessment, feed=True)   # the counsellor's screen shows it
        if first and len(text) <= 60:
            # HUY/STOP always works, also in a conversation with a counsellor (who sees it)
            from webhook.broadcast.keywords import parse
            from webhook.broadcast.subscribers import handle as subscription
            from webhook.queue import _send
            cmd = parse(text)
            answer = subscription(gw, msg.conversation_id, text) if cmd and cmd.action == "opt_out" else None
            if answer:
                _send(gw, msg.conversation_id, "bot", answer)
        _stats(gw, msg, text, assessment)
        return True
    if not degraded and msg.state == S.PENDING and len(text) <= 24:
        from webhook.console.followup import intercept
        answer = intercept(gw, msg.conversation_id, text)
        if answer is not None:       # "1"/"2" answering a follow-up the person agreed to
            _finish(gw, msg, S.ANSWERED, [("bot", answer)], adapter, seq0=0, assessment=assessment)
            return True
    if msg.state in (S.PENDING, S.DEFERRED) and len(text) <= 60 and (assessment is None or assessment.risk not in URGENT):
        # XOA, then XOA/CÓ: erase what we hold about the person (the confirmation goes out first)
        from webhook.erasure import erase_for_conversation
        from webhook.erasure import intercept as erasure
        got = erasure(gw, msg.conversation_id, text)
        if got is not None:
            answer, erase = got
            _finish(gw, msg, S.ANSWERED, [("bot", answer)], adapter, seq0=0, assessment=assessment)
            if erase:
                erase_for_conversation(gw, msg.conversation_id)
            return True
        # XEM DU LIEU: a request for a copy of one's data, with its legal deadlines
        answer = _data_request(gw, msg.conversation_id, text)
        if answer is None:
            # DK / CÓ / HUY / GIỜ 19-21 / KLL: the gateway owns consent, also when Rasa is down
            from webhook.broadcast.subscribers import handle as subscription
            answer = subscription(gw, msg.conversation_id, text, message_id=msg.id)
        if answer is not None:
            _finish(gw, msg, S.ANSWERED, [("bot", answer)], adapter, seq0=0, assessment=assessment)
            return True
    if degraded or not gw.rasa.available():
        done = _degrade(gw, msg, text, assessment, adapter)
        _stats(gw, msg, text, assessment)
        return done
    metadata = {"channel": channel, "language": gw.settings.locale, "message_id": msg.id,
                "context": ctx.as_dict()}
    try:
        bot = gw.rasa.send(sender, text, metadata, channel)
    except RasaUnavailable as exc:
        logger.warning("rasa_unavailable conversation=%s error=%s", msg.conversation_id, exc)
        gw.rasa.trip()
        done = _degrade(gw, msg, text, assessment, adapter)
        _stats(gw, msg, text, assessment)
        return done
    texts = []
    reading, asked = {}, None
    for r in bot:
        if not isinstance(r, dict):
            continue
        custom = r.get("custom") if isinstance(r.get("custom"), dict) else {}
        if isinstance(custom.get("reading"), dict):
            reading = custom["reading"]        # how Rasa read the message (bot/channel.py)
        if custom.get("asks"):
            asked = custom["asks"]             # the question this reply asks
        # quick replies become a line of choices under their question (every channel can show it)
        choices = " / ".join(b["title"] for b in (r.get("buttons") or []) if isinstance(b, dict) and b.get("title"))
        body = "\n".join(part for part in (r.get("text"), choices) if part)
        if body:
            texts.append(body)
    out = [("bot", t) for t in texts]
    if not out:
        # Rasa answered nothing: an action failed. With the action server down the message waits
        # like one Rasa could not take: the notice now (it says a reply follows), the answer when
        # the replay finds the action server back. Otherwise the notice is the answer: nobody may
        # write to a helpline and hear nothing back.
        logger.warning("rasa_empty_answer conversation=%s", msg.conversation_id)
        server = gw.rasa.last_server()
        if gw.rasa.actions_healthy(server=server) is False:
            gw.rasa.avoid(server)           # its action server is down: the replay goes to another
            done = _degrade(gw, msg, text, assessment, adapter)
            _stats(gw, msg, text, assessment)
            return done
        out = [("safety", replies.text(replies.DEGRADED))]
    _finish(gw, msg, S.ANSWERED, out, adapter, seq0=0, assessment=assessment)
    _stats(gw, msg, text, assessment, sender=sender)
    base = load_context(gw, msg.conversation_id)
    save_context(gw, msg.conversation_id, base.after(
        reading.get("conversation_risk") or reading.get("risk") or "none", reading.get("topic"), asked))
    return True


def load_context(gw, conversation_id: int) -> Context:
    """The conversation so far (bot/context.py): labels only."""
    with gw.tx() as c:
        row = c.execute(select(Conversation.risk, Conversation.topic, Conversation.asked)
                        .where(Conversation.id == conversation_id)).first()
    return Context.of({"risk": row[0], "topic": row[1], "asked": row[2]}) if row else Context()


def save_context(gw, conversation_id: int, ctx: Context) -> None:
    with gw.tx() as c:
        c.execute(update(Conversation).where(Conversation.id == conversation_id)
                  .values(risk=ctx.risk, topic=ctx.topic, asked=ctx.asked))


def _data_request(gw, conversation_id: int, text: str) -> Optional[str]:
    """XEM DU LIEU: the request is recorded once, with its deadlines and a case in the queue (not
    a need for help in the statistics); the person is told both deadlines."""
    from webhook import data_requests as dr

    if not dr.is_request(text):
        return None
    contact_id = dr.contact_of(gw, conversation_id)
    if not dr.pending(gw, contact_id):
        case_id = open_case(gw, conversation_id, "none", "service_command", reason="data_access", source="request",
                            requested=True, counts=False)
        dr.record(gw, contact_id, case_id)
    return replies.text(replies.ACCESS_REQUESTED)


def _stats(gw, msg: Message, text: str, assessment, sender: Optional[str] = None) -> None:
    """The message's labels into its anonymised episode (webhook/stats), after the reply went
    out. Only on the message's first handling (``assessment`` is None on a replay). With Rasa's
    intent when it can be read (the rules alone know risk better than topic)."""
    if assessment is None or not gw.settings.stats_enabled:
        return
    from webhook.stats.episodes import record_message

    risk, topic = assessment.risk, assessment.topic
    if sender:
        intent, confidence = gw.rasa.latest_intent(sender)
        if intent:
            model = understand(text, intent, confidence)
            topic = model.topic
            if RISK_ORDER.index(model.risk) > RISK_ORDER.index(risk):
                risk = model.risk
    record_message(gw, msg.conversation_id, text, risk, topic)          # today (day precision)


def _labels(assessment) -> dict:
    return {} if assessment is None else {"risk": assessment.risk, "topic": assessment.topic}


def _set_state(gw, msg: Message, new: str, assessment=None, feed: bool = False) -> None:
    S.check(S.INBOUND, msg.state, new)
    case_id = None
    with transaction(gw.Session) as s:
        s.execute(update(Message).where(Message.id == msg.id, Message.state == msg.state)
                  .values(state=new, answered_at=time.time() if new == S.ANSWERED else None, **_labels(assessment)))
        if feed:
            case_id = s.execute(select(Case.id).where(Case.conversation_id == msg.conversation_id,
                                                      Case.status != "closed").order_by(Case.id.desc()).limit(1)
                                ).scalar()
            if case_id is not None:
                events.record(s, "inbound", events.SYSTEM, case_id, f"message={msg.id}")
    if feed and case_id is not None and gw.settings.stats_enabled:
        # writing back to the counsellor who took the case: the person accepted a counsellor
        from webhook.stats.episodes import mark_case
        mark_case(gw, case_id, sought_help=True)


def _finish(gw, msg: Message, new_state: str, texts: list[tuple[str, str]], adapter, seq0: int,
            assessment=None) -> None:
    """Replies into the outbox and the message's new state, in one transaction: a crash leaves
    either both or neither, and (message, seq) is unique, so a replay cannot double a reply.
    Then the replies go out at once from this thread (the worker only retries)."""
    S.check(S.INBOUND, msg.state, new_state)
    labels = _labels(assessment)
    with gw.tx() as c:
        if msg.state == S.DEFERRED and seq0 < DEGRADED_SEQ:
            texts = _not_said(c, gw, msg, texts, adapter)
        jobs = _enqueue(c, gw, msg, seq0, texts, adapter)
        res = c.execute(Q.FINISH_MESSAGE, {"new": new_state, "now": time.time(), "risk": labels.get("risk"),
                                           "topic": labels.get("topic"), "id": msg.id, "old": msg.state})
        if res.rowcount != 1:
            raise S.TransitionError(f"message {msg.id} changed state under us")
    send_jobs(gw, jobs)


def _not_said(c, gw, msg: Message, texts: list[tuple[str, str]], adapter) -> list[tuple[str, str]]:
    """A replayed message's answer without what its safe reply already said: a danger message
    that waited for Rasa got the emergency numbers at once, and Rasa's answer begins with the
    same sentence; the person is not sent it a second time."""
    said = {gw.vault.open(bytes(r[0])) for r in c.execute(
        select(Outbox.body_enc).where(Outbox.source_message_id == msg.id, Outbox.seq >= DEGRADED_SEQ))}
    if not said:
        return texts
    return [(kind, text) for kind, text in texts if not set(parts(gw, adapter, text)) <= said]


def parts(gw, adapter, text: str) -> list[str]:
    """A reply as it goes out: the counselling-line markers resolved (webhook/kbstate.py), then
    the channel's form (SMS without diacritics, split to its length). Every outbox row is made
    through here."""
    text = gw.kb.render(text)
    return adapter.render(text) if adapter else [text]


def _enqueue(c, gw, msg: Message, seq0: int, texts: list[tuple[str, str]], adapter) -> list["Job"]:
    """Insert reply rows. When nothing older waits in this conversation's outbox, the rows are
    claimed for sending by this thread in the same transaction (no second round trip); otherwise
    they queue behind the older ones, so replies never overtake each other."""
    if not texts:
        return []
    target = c.execute(Q.SEND_TARGET, {"id": msg.conversation_id}).first()
    contact_id, address_enc, status, reason, last_inbound, replies_since, reply_ref, channel, older = target
    fast = not older
    if not fast:
        _local.unsent = True
    now, owner = time.time(), _owner()
    address = gw.vault.open(bytes(address_enc)) if fast else None
    jobs, seq = [], seq0
    for kind, text in texts:
        for part in parts(gw, adapter, text):
            row_id = c.execute(Q.INSERT_OUTBOX, {
                "conversation_id": msg.conversation_id, "contact_id": contact_id, "channel": channel,
                "source": msg.id, "seq": seq, "kind": kind, "body_enc": gw.vault.seal(part),
                "priority": PRIORITY_CONVERSATION, "state": S.SENDING if fast else S.QUEUED_OUT,
                "attempts": 1 if fast else 0, "now": now, "claimed_by": owner if fast else None,
                "claimed_until": now + SEND_CLAIM_SECONDS if fast else None, "flagged": False}).scalar_one()
            if fast:
                jobs.append(Job(row_id, contact_id, channel, kind, 1, address, part, status, reason, last_inbound,
                                replies_since, reply_ref))
            seq += 1
    return jobs


def _degrade(gw, msg: Message, text: str, assessment, adapter) -> bool:
    """Rasa cannot answer: the person hears from us at once, the message waits for the replay."""
    if assessment is None:
        assessment = understand(text, None)
    urgent = assessment.risk in URGENT
    now = time.time()
    out: list[tuple[str, str]] = []
    with gw.tx() as c:
        notice_at = c.execute(select(Conversation.degraded_notice_at).where(
            Conversation.id == msg.conversation_id)).scalar_one()
        already = c.execute(select(Outbox.id).where(Outbox.source_message_id == msg.id,
                                                    Outbox.seq >= DEGRADED_SEQ).limit(1)).first()
        recent = notice_at and now - notice_at < DEGRADED_NOTICE_EVERY
        if not already and (urgent or not recent):
            out.append(("safety", replies.text(replies.safe_reply(assessment.risk, assessment.topic),
                                               "en" if is_english(text) else "vi")))
            c.execute(update(Conversation).where(Conversation.id == msg.conversation_id)
                      .values(degraded_notice_at=now))
        jobs = _enqueue(c, gw, msg, DEGRADED_SEQ, out, adapter)
        if msg.state == S.PENDING:
            c.execute(update(Message).where(Message.id == msg.id, Message.state == S.PENDING)
                      .values(state=S.DEFERRED, attempts=Message.attempts + 1, **_labels(assessment)))
    send_jobs(gw, jobs)
    return False


def open_case(gw, conversation_id: int, risk: str, topic: Optional[str], reason: str, source: str,
              requested: bool = False, summary: Optional[str] = None, locality: Optional[str] = None,
              counts: bool = True) -> int:
    """One open case per conversation; a higher risk raises it, a lower one never lowers it, and
    a request for a counsellor is remembered. The queue order follows (webhook.queue).
    ``counts``: whether the case is a need for help in the statistics (a request for one's data
    is not)."""
    from webhook.queue import priority_of

    with transaction(gw.Session) as s:
        # one writer per conversation (PostgreSQL; SQLite already serialises writers)
        s.execute(select(Conversation.id).where(Conversation.id == conversation_id).with_for_update())
        case = s.execute(select(Case).where(Case.conversation_id == conversation_id, Case.status != "closed")
                         .order_by(Case.id.desc()).limit(1)).scalar_one_or_none()
        now = time.time()
        if case is None:
            case = Case(conversation_id=conversation_id, risk=risk, topic=topic, reason=reason, source=source,
                        status="open", created_at=now, updated_at=now, requested=requested,
                        priority=priority_of(risk, requested), summary=(summary or None) and summary[:200])
            s.add(case)
            conv = s.get(Conversation, conversation_id)
            if conv.mode == S.BOT:
                conv.mode = S.check(S.MODES, conv.mode, S.QUEUED)
            s.flush()
            events.record(s, "opened", events.SYSTEM, case.id, f"risk={risk} source={source}", at=now)
            logger.info("case_opened case=%s risk=%s source=%s", case.id, risk, source)
        else:
            before = case.priority
            if RISK_ORDER.index(risk) > RISK_ORDER.index(case.risk if case.risk in RISK_ORDER else "none"):
                case.risk, case.updated_at = risk, now
                if topic:
                    case.topic = topic
            if requested and not case.requested:
                case.requested, case.updated_at = True, now
            if summary and not case.summary:
                case.summary = summary[:200]
            case.priority = priority_of(case.risk, bool(case.requested))
            if case.priority != before:
                events.record(s, "raised", events.SYSTEM, case.id, f"risk={case.risk}", at=now)
        if locality and not case.locality:
            case.locality = locality[:64]
        case_id = case.id
    if gw.settings.stats_enabled and counts:
        from webhook.stats.episodes import mark_case
        from webhook.stats.incidents import SERIOUS, track
        mark_case(gw, case_id, needed_help=True, sought_help=requested, risk=risk)
        if risk in SERIOUS:
            track(gw, case_id)
    return case_id


# --- deliver ---------------------------------------------------------------------------------------

class RateLimiter:
    """A token bucket per channel (per process): providers throttle or ban senders that burst."""

    def __init__(self, rates: dict, clock=time.monotonic, sleep=time.sleep):
        self.rates = dict(rates)
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()
        self._clock, self._sleep = clock, sleep

    def wait(self, channel: str) -> float:
        """Block until this channel may send again; returns how long it waited."""
        rate = self.rates.get(channel)
        if not rate:
            return 0.0
        with self._lock:
            now = self._clock()
            slot = max(now, self._next.get(channel, now))
            self._next[channel] = slot + 1.0 / rate
        if slot > now:
            self._sleep(slot - now)
        return max(0.0, slot - now)


@dataclass
class Job:
    """A claimed outbox row and what is needed to send it."""
    row_id: int
    contact_id: int
    channel: str
    kind: str
    attempts: int
    address: Optional[str]
    body: Optional[str]
    status: str
    stopped_reason: Optional[str]
    last_inbound_at: Optional[float]
    replies_since_inbound: int
    reply_ref: Optional[str]


def _claim_head(gw, conversation_id: int, owner: str) -> Optional[Job]:
    """Claim the conversation's oldest unsent row if it is due, in one transaction. Rows go out
    in order: a row waiting for a retry holds back the ones behind it."""
    now = time.time()
    with gw.tx() as c:
        head = c.execute(Q.HEAD_OF_LINE, {"id": conversation_id}).first()
        if head is None or head[1] != S.QUEUED_OUT or head[2] > now:
            return None
        res = c.execute(update(Outbox).where(Outbox.id == head[0], Outbox.state == S.QUEUED_OUT)
                        .values(state=S.SENDING, claimed_by=owner, claimed_until=now + SEND_CLAIM_SECONDS,
                                attempts=Outbox.attempts + 1))
        if res.rowcount != 1:
            return None
        row = c.execute(select(Outbox.kind, Outbox.attempts, Outbox.body_enc).where(Outbox.id == head[0])).first()
        target = c.execute(Q.SEND_TARGET, {"id": conversation_id}).first()
    contact_id, address_enc, status, reason, last_inbound, replies_since, reply_ref, channel, _older = target
    return Job(head[0], contact_id, channel, row[0], row[1], gw.vault.open(bytes(address_enc)),
               gw.vault.open(bytes(row[2])), status, reason, last_inbound, replies_since, reply_ref)


def deliver_conversation(gw, conversation_id: int, limit: int = 50) -> int:
    """Send a conversation's queued replies in order; stop at the first that must wait."""
    sent = 0
    owner = _owner()
    for _ in range(limit):
        job = _claim_head(gw, conversation_id, owner)
        if job is None or not send_job(gw, job):
            break
        sent += 1
    return sent


def send_jobs(gw, jobs: list[Job]) -> int:
    """Send claimed rows in order; the accepted ones are recorded in one transaction. After a
    failure the rest are handed back to the queue (the failed row holds them back)."""
    done: list[tuple[Job, Optional[str]]] = []
    try:
        for i, job in enumerate(jobs):
            ok, provider_id = send_job(gw, job, record=False)
            if ok:
                done.append((job, provider_id))
                continue
            _local.unsent = True
            rest = [j.row_id for j in jobs[i + 1:]]
            if rest:
                with transaction(gw.Session) as s:
                    s.execute(update(Outbox).where(Outbox.id.in_(rest), Outbox.state == S.SENDING)
                              .values(state=S.QUEUED_OUT, claimed_by=None, claimed_until=None,
                                      attempts=Outbox.attempts - 1))
            break
    finally:
        if done:        # what the provider accepted is recorded even when a later step failed
            _record_sent(gw, done)
    return len(done)


RECORD_RETRIES = (0.1, 0.3, 0.9, 2.7)      # seconds between tries to record a send (about 4 s)


def _record_sent(gw, done: list[tuple[Job, Optional[str]]]) -> None:
    """Record rows the provider accepted. The provider has them now: if the database fails here
    (a connection cut, a restart) the rows would stay "sending" and go out a second time when the
    claim expires, so the recording is tried again for a few seconds first. Idempotent: only a
    row still "sending" is marked."""
    for delay in (*RECORD_RETRIES, None):
        try:
            now = time.time()
            with gw.tx() as c:
                plain = [{"now": now, "pid": pid, "id": job.row_id} for job, pid in done if job.channel != "zalo"]
                if plain:
                    c.execute(Q.MARK_SENT, plain)
                for job, pid in done:
                    if job.channel == "zalo" and c.execute(Q.MARK_SENT, {"now": now, "pid": pid,
                                                                         "id": job.row_id}).rowcount == 1:
                        c.execute(Q.COUNT_ZALO_REPLY, {"id": job.contact_id})
            return
        except DBAPIError as exc:
            if delay is None or not (isinstance(exc, OperationalError) or exc.connection_invalidated):
                raise
            logger.warning("record_sent_retry outbox=%s error=%s", done[0][0].row_id, type(exc).__name__)
            time.sleep(delay)


def send_job(gw, job: Job, record: bool = True):
    """Send one claimed outbox row. True when the provider accepted it (with ``record=False``:
    (True, provider id), and the caller records the success)."""
    channel, kind = job.channel, job.kind
    adapter = gw.adapters.get(channel)
    refusal = None
    if adapter is None:
        refusal = "channel_disabled"
    elif job.address is None or job.body is None:
        refusal = "unreadable"
    elif job.status == S.STOPPED and (kind not in CONVERSATION_KINDS or
                                      job.stopped_reason in ("sms_21610", "telegram_blocked", "zalo_blocked")):
        refusal = "stopped"
    elif channel == "zalo" and not within_window(job.last_inbound_at, job.replies_since_inbound):
        refusal = "zalo_window"
    if refusal:
        _outcome(gw, job.row_id, S.UNDELIVERABLE, error=refusal, flag=kind in CONVERSATION_KINDS)
        return False if record else (False, None)
    gw.limiter.wait(channel)
    result = adapter.send(job.address, job.body, reply_ref=job.reply_ref)
    if result.ok:
        if not record:
            return True, result.provider_msg_id
        _record_sent(gw, [(job, result.provider_msg_id)])
        return True
    if result.ambiguous and hasattr(adapter, "lookup_sent"):
        # the provider may have taken it (a timeout, a connection lost mid-call): not sent again
        # blindly. The row stays "sending" with its claim ended; the sweep asks the provider.
        with transaction(gw.Session) as s:
            s.execute(update(Outbox).where(Outbox.id == job.row_id, Outbox.state == S.SENDING)
                      .values(claimed_until=time.time() + RECONCILE_AFTER,
                              error_code=(result.error_code or "ambiguous")[:32]))
        logger.info("send_ambiguous outbox=%s channel=%s error=%s", job.row_id, channel, result.error_code)
        return False if record else (False, None)
    if result.stop_contact:
        reason = f"{channel}_{'21610' if channel == 'sms' else 'blocked'}"
        with transaction(gw.Session) as s:
            s.execute(update(Contact).where(Contact.id == job.contact_id).values(status=S.STOPPED, stopped_reason=reason))
        _provider_opt_out(gw, job.contact_id, reason)
    if result.retry and job.attempts < gw.settings.send_max_attempts:
        delay = result.retry_after if result.retry_after else backoff(job.attempts)
        _outcome(gw, job.row_id, S.QUEUED_OUT, error=result.error_code, retry_in=delay)
    elif result.retry:
        _outcome(gw, job.row_id, S.FAILED, error=result.error_code, flag=kind in CONVERSATION_KINDS)
    else:
        _outcome(gw, job.row_id, S.UNDELIVERABLE, error=result.error_code, flag=kind in CONVERSATION_KINDS)
    logger.info("send_failed outbox=%s channel=%s error=%s", job.row_id, channel, result.error_code)
    return False if record else (False, None)


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
            from webhook.broadcast.sender import status_callback as campaign_status
            return campaign_status(gw, channel, provider_msg_id, status, error_code)
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
        stopped = row.contact_id if error_code == "21610" else None
    if stopped is not None:
        _provider_opt_out(gw, stopped, "sms_21610")
    if flagged:
        open_case(gw, conv_id, "medium", None, reason=f"undelivered:{error_code or status}", source="delivery")
    return True


def _provider_opt_out(gw, contact_id: int, reason: str) -> None:
    from webhook.broadcast.subscribers import provider_opt_out
    try:
        provider_opt_out(gw, contact_id, reason)
    except Exception as exc:             # the contact is stopped already; the record can wait
        logger.warning("provider_opt_out_failed contact=%s error=%s", contact_id, type(exc).__name__)


# --- the sweeper: replay, retries, stale claims ------------------------------------------------------

def _askable(gw) -> list[str]:
    """Channels whose provider can be asked whether a message went (SMS: Twilio's message list)."""
    return [ch for ch, a in gw.adapters.items() if hasattr(a, "lookup_sent")]


RECONCILE_AFTER = 30.0      # seconds after an ambiguous send before the provider is asked


def reconcile_sending(gw, now: float, limit: int = 100, budget: float = 20.0) -> int:
    """Rows left "sending" past their claim (a timeout the provider may have taken, a worker
    killed mid-call) on a channel that can be asked (SMS: Twilio's message list). Each row is
    claimed first (two workers never ask about, or settle, the same row), then recorded as sent
    when the provider has it, put back in the queue with backoff when it has not (or failed and
    flagged after the last attempt), and left for a later pass when the provider cannot answer.
    Other channels cannot be asked: the sweep's reset sends them again (at least once: a person
    may see a reply twice, never none)."""
    channels = _askable(gw)
    if not channels:
        return 0
    me, started = f"reconcile:{_owner()}", time.monotonic()
    with transaction(gw.Session) as s:
        rows = s.execute(select(Outbox.id, Outbox.channel, Outbox.body_enc, Outbox.created_at, Outbox.attempts,
                                Outbox.kind, Contact.address_enc)
                         .join(Contact, Contact.id == Outbox.contact_id)
                         .where(Outbox.state == S.SENDING, Outbox.claimed_until < now, Outbox.channel.in_(channels))
                         .order_by(Outbox.id).limit(limit)).all()
    done = 0
    for row_id, channel, body_enc, created_at, attempts, kind, address_enc in rows:
        if time.monotonic() - started > budget:
            break                                   # the rest next pass: the sweep has other work
        mine = (Outbox.id == row_id) & (Outbox.state == S.SENDING) & (Outbox.claimed_by == me)
        with transaction(gw.Session) as s:
            won = s.execute(update(Outbox).where(Outbox.id == row_id, Outbox.state == S.SENDING,
                                                 Outbox.claimed_until < now)
                            .values(claimed_by=me, claimed_until=time.time() + 120)).rowcount == 1
        if not won:
            continue
        address, body = gw.vault.open(bytes(address_enc)), gw.vault.open(bytes(body_enc))
        found = None
        if address is not None and body is not None:   # erased meanwhile: requeued, send_job refuses it
            try:
                with transaction(gw.Session) as s:      # sids other rows already hold are not this one
                    taken = {p for (p,) in s.execute(select(Outbox.provider_msg_id).where(
                        Outbox.contact_id == select(Outbox.contact_id).where(Outbox.id == row_id).scalar_subquery(),
                        Outbox.provider_msg_id.isnot(None)))}
                found = gw.adapters[channel].lookup_sent(address, body, since=created_at, exclude=frozenset(taken))
            except Exception as exc:                    # the provider cannot answer now: a later pass
                logger.warning("reconcile_lookup_failed outbox=%s error=%s", row_id, type(exc).__name__)
                with transaction(gw.Session) as s:
                    s.execute(update(Outbox).where(mine).values(claimed_until=time.time() + RECONCILE_AFTER))
                continue
        with transaction(gw.Session) as s:
            if found:
                s.execute(update(Outbox).where(mine).values(
                    state=S.SENT, sent_at=time.time(), provider_msg_id=found, claimed_by=None, claimed_until=None))
            elif attempts < gw.settings.send_max_attempts:
                s.execute(update(Outbox).where(mine).values(
                    state=S.QUEUED_OUT, claimed_by=None, claimed_until=None,
                    next_attempt_at=time.time() + backoff(attempts)))
            else:
                s.execute(update(Outbox).where(mine).values(
                    state=S.FAILED, claimed_by=None, claimed_until=None, error_code="ambiguous_gave_up",
                    flagged=kind in CONVERSATION_KINDS))
        logger.info("reconciled outbox=%s found=%s", row_id, bool(found))
        done += 1
    return done


def sweep(gw, limit: int = 200) -> dict:
    """One pass of the worker: what the fast path could not finish. Idempotent; any number of
    workers may run it (leases and claims keep them apart)."""
    now = time.time()
    stats = {"replayed": 0, "sent": 0, "reset": 0, "spooled": 0}
    try:
        stats["spooled"] = gw.spool.drain(gw)
    except Exception as exc:            # the database is still down: try again next pass
        logger.warning("spool_drain_failed error=%s", type(exc).__name__)
    stats["reconciled"] = reconcile_sending(gw, now)
    askable = _askable(gw)
    with transaction(gw.Session) as s:
        # channels that can be asked are left to reconcile_sending (never resent blindly)
        res = s.execute(update(Outbox).where(Outbox.state == S.SENDING, Outbox.claimed_until < now,
                                             Outbox.channel.notin_(askable or [""]))
                        .values(state=S.QUEUED_OUT, claimed_by=None, claimed_until=None))
        stats["reset"] = res.rowcount
    # the replay needs Rasa and, when one is configured, an action server answering
    # A stale pending message (its gateway process died, or it came from the spool) is always
    # handled: the rules run first, so danger reaches the queue with Rasa or without it. Deferred
    # messages are replayed when Rasa and, if one is configured, an action server answer.
    stale = and_(Message.state == S.PENDING, Message.received_at < now - STALE_PENDING_SECONDS)
    replay = (gw.rasa.available() or gw.rasa.healthy()) and gw.rasa.actions_healthy() is not False
    if replay:
        gw.rasa.down_until = 0.0
    with transaction(gw.Session) as s:
        convs = [r[0] for r in s.execute(
            select(Message.conversation_id).where(or_(Message.state == S.DEFERRED, stale) if replay else stale)
            .group_by(Message.conversation_id).order_by(Message.conversation_id).limit(limit))]
    for conv_id in convs:
        stats["replayed"] += process_conversation(gw, conv_id) or 0
    # Unclaimed urgent cases: shown in the console (an "alert" event) and sent to the supervisors
    # on call when HELPLINE_ONCALL is set.
    from webhook.queue import alert_oncall, due_alerts
    notify = (lambda case, waited: alert_oncall(gw, case, waited)) if gw.settings.oncall else None
    stats["alerts"] = len(due_alerts(gw, now=now, after=gw.settings.alert_after, notify=notify))
    from webhook.console.followup import send_due
    stats["followups"] = send_due(gw, now=now)
    with transaction(gw.Session) as s:
        convs = [r[0] for r in s.execute(
            select(Outbox.conversation_id).where(Outbox.state == S.QUEUED_OUT, Outbox.next_attempt_at <= now)
            .group_by(Outbox.conversation_id)
            # conversation traffic first: bulk rows wait while any conversation row waits
            .order_by(func.min(Outbox.priority), func.min(Outbox.id)).limit(limit))]
    for conv_id in convs:
        stats["sent"] += deliver_conversation(gw, conv_id)
    return stats
