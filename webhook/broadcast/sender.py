"""The bulk lane: campaign messages go out here, never in front of a conversation.

``run_once`` (the worker's bulk thread calls it in a loop; ``helpline broadcast send`` in the
foreground) starts scheduled campaigns whose time has come (``campaigns.plan``), settles sends a
dead worker left half done (``reconcile``), then sends the due rows of each running campaign
while it holds the campaign's lease (one sender per campaign across workers, so the rate is the
campaign's, not per process).

For each row, in order, at send time:
1. the window: 07:00–22:00 Vietnam time (``HELPLINE_SEND_WINDOW``); outside it nothing is sent;
2. the person: still subscribed (an opt-out made the row ``opted_out`` already), not "do not
   contact" (skipped), inside their own safe hours (deferred to their next safe hour), not
   already sent ``HELPLINE_DAILY_CAP`` (3) campaign messages today (deferred to tomorrow), no open
   case unless they opted in themselves (skipped), contact not stopped (opted_out);
3. the channel: Zalo outside the 48 h reply window is skipped with the reason (no template
   message is configured); the per-channel bulk rate (``HELPLINE_BULK_RATES``) paces the sends,
   and rows wait while conversation replies of that channel are queued;
4. exactly once: the row becomes ``sending`` in a committed transaction BEFORE the provider is
   called and ``sent`` after. A worker killed between the two leaves ``sending`` rows; once their
   claim expires ``reconcile`` asks the provider (SMS: Twilio's message list for that number
   since the claim) and marks them sent, or plans them again when the provider never got them.
   A provider that cannot be asked (Telegram, Zalo) gets ``unknown``: never a second copy. Web
   chat messages are written in the same transaction as the row: nothing to reconcile.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
from typing import Callable, Optional

from sqlalchemy import and_, bindparam, func, insert, select, update

from webhook import states as S
from webhook.broadcast import campaigns as C
from webhook.broadcast.subscribers import in_safe_hours, provider_opt_out
from webhook.db import transaction
from webhook.hours import TZ
from webhook.models import Campaign, CampaignSend, Case, Contact, Conversation, Outbox, Subscriber
from webhook.pipeline import RateLimiter

logger = logging.getLogger(__name__)

LEASE_SECONDS = 10.0            # a campaign's sender renews it every batch
CLAIM_SECONDS = 60.0            # longer than any provider call (SMS 10 s, Telegram 30 s): then its worker died
BATCH = 200
DEFAULT_RATES = {"sms": 9.0, "telegram": 20.0, "zalo": 5.0, "web": 200.0}
SENT_STATES = (C.SENDING, C.SENT, C.DELIVERED)


def _host() -> str:
    return socket.gethostname()[:40]


def owner_id() -> str:
    """host:pid:thread, short enough for the 64-character columns on any hostname."""
    return f"{_host()}:{os.getpid()}:{threading.get_ident() % 1_000_000}"


def owner_dead(owner: Optional[str]) -> bool:
    """The worker named ``owner`` ran on this machine and its process is gone: its lease and its
    claims need not be waited out (a restarted worker goes on at once). Another machine's worker
    is never presumed dead: its lease expires."""
    try:
        host, pid, _thread = (owner or "").rsplit(":", 2)
        pid = int(pid)
    except ValueError:
        return False
    if host != _host() or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def window(spec: str) -> tuple[int, int]:
    start, _sep, end = (spec or "7-22").partition("-")
    return int(start), int(end)


def local(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, TZ)


def next_hour(ts: float, hour: int) -> float:
    """The next time (after ``ts``) the local clock shows ``hour``:00."""
    t = local(ts)
    target = t.replace(hour=hour % 24, minute=0, second=0, microsecond=0)
    if target <= t:
        target += dt.timedelta(days=1)
    return target.timestamp()


def day_start(ts: float) -> float:
    return local(ts).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


class Pacer(RateLimiter):
    """The bulk lane's pace: the gateway's per-channel token bucket (thread-safe, shared by the
    lane's senders) with the bulk rates, and a default for every channel the setting leaves out."""

    def __init__(self, rates: dict, clock: Callable[[], float] = time.monotonic, sleep=time.sleep):
        super().__init__({**DEFAULT_RATES, **(rates or {})}, clock, sleep)


# --- the loop ----------------------------------------------------------------------------------------

def run_once(gw, now: Optional[float] = None, budget: float = 5.0, owner: Optional[str] = None,
             pacer: Optional[Pacer] = None, clock: Callable[[], float] = time.time,
             only: Optional[int] = None, stop: Optional[threading.Event] = None) -> dict:
    """One pass: start due campaigns, settle dead workers' rows, send for up to ``budget``
    seconds. ``now`` freezes the clock (tests); ``only`` limits it to one campaign."""
    owner = owner or owner_id()
    pacer = pacer or getattr(gw, "bulk_pacer", None) or Pacer(gw.settings.bulk_rates)
    gw.bulk_pacer = pacer
    t = now if now is not None else clock()
    out = {"started": 0, "reconciled": 0, "sent": 0, "skipped": 0, "deferred": 0, "failed": 0, "opted_out": 0}
    with transaction(gw.Session) as s:
        due = [c for (c,) in s.execute(select(Campaign.id).where(Campaign.state == C.SCHEDULED,
                                                                  Campaign.start_at <= t))]
    for cid in due:
        if only is None or cid == only:
            C.plan(gw, cid, now=t)
            out["started"] += 1
    out["reconciled"] = reconcile(gw, now=t)
    with transaction(gw.Session) as s:
        running = [c for (c,) in s.execute(select(Campaign.id).where(Campaign.state == C.RUNNING)
                                           .order_by(Campaign.id))]
    end = time.monotonic() + budget

    def expired() -> bool:
        return time.monotonic() >= end or (stop is not None and stop.is_set())

    for cid in running:
        if only is not None and cid != only:
            continue
        if not _lease(gw, cid, owner, t):
            continue
        try:
            _send_campaign(gw, cid, owner, pacer, out, expired, now, clock)
        finally:
            _unlease(gw, cid, owner)
        if expired():
            break
    return out


def _lease(gw, campaign_id: int, owner: str, now: float) -> bool:
    with transaction(gw.Session) as s:
        holder = s.execute(select(Campaign.lease_owner).where(Campaign.id == campaign_id)).scalar()
        dead = holder is not None and holder != owner and owner_dead(holder)
        return s.execute(update(Campaign).where(
            Campaign.id == campaign_id, Campaign.state == C.RUNNING,
            (Campaign.lease_owner.is_(None)) | (Campaign.lease_until < now) | (Campaign.lease_owner == owner)
            | (Campaign.lease_owner == (holder if dead else None)))
            .values(lease_owner=owner, lease_until=now + LEASE_SECONDS)).rowcount == 1


def _unlease(gw, campaign_id: int, owner: str) -> None:
    with transaction(gw.Session) as s:
        s.execute(update(Campaign).where(Campaign.id == campaign_id, Campaign.lease_owner == owner)
                  .values(lease_owner=None, lease_until=None))


_WAITING: dict = {}                  # channel -> (monotonic time of the check, answer)
WAITING_CHECK_EVERY = 0.25


def _conversation_waiting(gw, channel: str, now: float) -> bool:
    """A conversation reply of this channel is queued: the bulk lane lets it go first. Asked at
    most every 0.25 s (not once per campaign message)."""
    seen = _WAITING.get(channel)
    if seen is not None and time.monotonic() - seen[0] < WAITING_CHECK_EVERY:
        return seen[1]
    with transaction(gw.Session) as s:
        answer = s.execute(select(Outbox.id).where(Outbox.channel == channel, Outbox.state == S.QUEUED_OUT,
                                                   Outbox.priority == 0, Outbox.next_attempt_at <= now)
                           .limit(1)).first() is not None
    _WAITING[channel] = (time.monotonic(), answer)
    return answer


def _send_campaign(gw, cid: int, owner: str, pacer: Pacer, out: dict, expired: Callable[[], bool],
                   frozen: Optional[float], clock) -> None:
    start_h, end_h = window(gw.settings.send_window)
    still_running = _still_running(gw)
    after_id = 0
    while not expired():
        now = frozen if frozen is not None else clock()
        if not start_h <= local(now).hour < end_h:
            return                                     # outside 07:00-22:00: nothing goes out
        with transaction(gw.Session) as s:
            c = s.get(Campaign, cid)
            if c is None or c.state != C.RUNNING or c.lease_owner != owner:
                return                                 # paused, cancelled, or another worker took over
            c.lease_until = now + LEASE_SECONDS
            key = c.content
            rows = s.execute(
                select(CampaignSend.id, CampaignSend.subscriber_id, CampaignSend.channel, CampaignSend.attempts,
                       Subscriber.status, Subscriber.do_not_contact, Subscriber.safe_start, Subscriber.safe_end,
                       Subscriber.self_opted_in, Subscriber.language, Subscriber.contact_id, Contact.status,
                       Contact.address_enc, Contact.last_inbound_at, Contact.replies_since_inbound, Contact.reply_ref)
                .join(Subscriber, Subscriber.id == CampaignSend.subscriber_id)
                .join(Contact, Contact.id == Subscriber.contact_id)
                .where(CampaignSend.campaign_id == cid, CampaignSend.state == C.PLANNED,
                       CampaignSend.next_attempt_at <= now, CampaignSend.id > after_id)
                .order_by(CampaignSend.id).limit(BATCH)).all()
            if not rows:
                left = s.execute(select(func.count()).select_from(CampaignSend).where(
                    CampaignSend.campaign_id == cid, CampaignSend.state.in_([C.PLANNED, C.SENDING]))).scalar_one()
                if left == 0 and after_id == 0:
                    c.state, c.finished_at, c.updated_at = C.DONE, now, now
                    from webhook import events
                    events.record(s, "campaign_done", events.SYSTEM, None, f"campaign={cid}", at=now)
                return
        bodies: dict = {}
        line = gw.kb.line()

        def body(language, channel):
            if (language, channel) not in bodies:
                bodies[(language, channel)] = C.render(key, language, channel, gw.settings.sms_unaccented, line)
            return bodies[(language, channel)]

        def one(row):
            now = frozen if frozen is not None else clock()
            if expired() or not start_h <= local(now).hour < end_h or not still_running(cid):
                return "stopped"
            return _one(gw, cid, body, row, owner, pacer, now, frozen, clock)

        # a few senders at once: the provider's answer takes longer than the database's work, and
        # the shared pacer keeps the channel's rate
        threads = max(1, int(gw.settings.bulk_senders))
        if threads == 1:
            outcomes = [one(row) for row in rows]
        else:
            from concurrent.futures import ThreadPoolExecutor
            with ThreadPoolExecutor(threads) as pool:
                outcomes = list(pool.map(one, rows))
        for outcome in outcomes:
            out[outcome] = out.get(outcome, 0) + 1
        if "stopped" in outcomes:
            return
        after_id = rows[-1][0] if len(rows) == BATCH else 0


# The hot path's statements, built once (the bulk lane runs them 100 times a second).
_T = CampaignSend.__table__
CAP_COUNT = (select(func.count()).select_from(_T)
             .where(_T.c.subscriber_id == bindparam("b_sub"), _T.c.state.in_(SENT_STATES),
                    _T.c.sent_at >= bindparam("b_since")))
CLAIM = (update(_T).where(_T.c.id == bindparam("b_id"), _T.c.state == C.PLANNED)
         .values(state=C.SENDING, attempts=bindparam("b_attempts"), claimed_by=bindparam("b_owner"),
                 claimed_at=bindparam("b_now"), claimed_until=bindparam("b_until"), sent_at=bindparam("b_now"),
                 updated_at=bindparam("b_now")))
MARK_SENT = (update(_T).where(_T.c.id == bindparam("b_id"), _T.c.state == C.SENDING)
             .values(state=C.SENT, reason=None, provider_msg_id=bindparam("b_pid"), claimed_by=None,
                     claimed_until=None, updated_at=bindparam("b_now")))


def _still_running(gw):
    """``still_running(cid)``: the campaign was not paused or cancelled; asked at most every
    0.5 s, so a pause stops the lane within half a second, not at the end of a batch."""
    seen: dict = {}
    lock = threading.Lock()

    def check(cid: int) -> bool:
        with lock:
            hit = seen.get(cid)
            if hit is not None and time.monotonic() - hit[0] < 0.5:
                return hit[1]
            with transaction(gw.Session) as s:
                answer = s.execute(select(Campaign.state).where(Campaign.id == cid)).scalar() == C.RUNNING
            seen[cid] = (time.monotonic(), answer)
            return answer
    return check


def _settle(gw, send_id: int, new: str, now: float, reason: Optional[str] = None, **values) -> None:
    with transaction(gw.Session) as s:
        s.execute(update(CampaignSend).where(CampaignSend.id == send_id)
                  .values(state=new, reason=reason, updated_at=now, **values))


def _defer(gw, send_id: int, until: float, reason: str, now: float) -> str:
    with transaction(gw.Session) as s:
        s.execute(update(CampaignSend).where(CampaignSend.id == send_id, CampaignSend.state == C.PLANNED)
                  .values(next_attempt_at=until, reason=reason, updated_at=now))
    return "deferred"


def _never_in_window(safe_start, safe_end, start_h: int, end_h: int) -> bool:
    """The person's hours and the send window never meet (e.g. GIO 23 6 with 07-22)."""
    return safe_start is not None and not any(in_safe_hours(safe_start, safe_end, h) for h in range(start_h, end_h))


def _one(gw, cid: int, body_for, row, owner: str, pacer: Pacer, now: float, frozen, clock) -> str:
    (send_id, sub_id, channel, attempts, _status, _dnc, _start, _end, self_in, language, contact_id,
     _contact_status, address_enc, last_inbound, replies_since, reply_ref) = row
    adapter = gw.adapters.get(channel)
    if adapter is None:
        _settle(gw, send_id, C.SKIPPED, now, "channel_disabled")
        return "skipped"
    body = body_for(language, channel)
    # wait for conversation replies and for the channel's pace BEFORE claiming: the claim is what
    # a dead worker leaves behind, it must cover the provider call only
    waited = 0.0
    while _conversation_waiting(gw, channel, frozen if frozen is not None else clock()) and waited < 2.0:
        time.sleep(0.05)
        waited += 0.05
        _WAITING.clear()
    if channel != "web":
        pacer.wait(channel)
    now = frozen if frozen is not None else clock()
    start_h, end_h = window(gw.settings.send_window)
    # claim: everything that must hold when the message goes, read fresh (the person may have
    # written KLL or GIO a moment ago; on PostgreSQL the subscriber row is locked, so two workers
    # cannot both pass the daily cap), and the row's "sending" state, in one committed transaction
    with gw.tx() as s:
        q = select(Subscriber.status, Subscriber.do_not_contact, Subscriber.safe_start, Subscriber.safe_end,
                   Contact.status, Contact.last_inbound_at, Contact.replies_since_inbound) \
            .join(Contact, Contact.id == Subscriber.contact_id).where(Subscriber.id == sub_id)
        if s.dialect.name == "postgresql":
            q = q.with_for_update(of=Subscriber.__table__)
        status, dnc, safe_start, safe_end, contact_status, last_inbound, replies_since = s.execute(q).one()

        def settle(state, reason):
            s.execute(update(CampaignSend).where(CampaignSend.id == send_id, CampaignSend.state == C.PLANNED)
                      .values(state=state, reason=reason, updated_at=now))

        def defer(until, reason):
            s.execute(update(CampaignSend).where(CampaignSend.id == send_id, CampaignSend.state == C.PLANNED)
                      .values(next_attempt_at=until, reason=reason, updated_at=now))
            return "deferred"

        if status != "subscribed" or contact_status == S.STOPPED:
            settle(C.OPTED_OUT, "opted_out")
            return "opted_out"
        if dnc:
            settle(C.SKIPPED, "do_not_contact")
            return "skipped"
        if _never_in_window(safe_start, safe_end, start_h, end_h):
            settle(C.SKIPPED, "safe_hours_outside_window")
            return "skipped"
        if not in_safe_hours(safe_start, safe_end, local(now).hour):
            return defer(next_hour(now, safe_start), "safe_hours")
        if channel == "zalo":
            from webhook.channels.zalo import within_window
            if not within_window(last_inbound, replies_since, now=now):
                settle(C.SKIPPED, "zalo_outside_window")
                return "skipped"
        conv = s.execute(select(Conversation.id, Conversation.mode).where(Conversation.contact_id == contact_id)
                         .order_by(Conversation.id.desc()).limit(1)).first()
        if conv is not None and conv[1] != S.BOT:
            # talking to a counsellor, or waiting for one: a campaign message does not come in between
            return defer(now + 600, "in_conversation")
        if not self_in and s.execute(
                select(Case.id).join(Conversation, Conversation.id == Case.conversation_id)
                .where(Conversation.contact_id == contact_id, Case.status.in_(["open", "claimed"])).limit(1)).first():
            settle(C.SKIPPED, "open_case")
            return "skipped"
        today = s.execute(CAP_COUNT, {"b_sub": sub_id, "b_since": day_start(now)}).scalar_one()
        if today >= gw.settings.daily_cap:
            return defer(next_hour(now, start_h), "daily_cap")
        if channel == "web":
            # the web chat shows what is in its conversation's outbox: written with the row, exactly once
            won = s.execute(update(CampaignSend).where(CampaignSend.id == send_id, CampaignSend.state == C.PLANNED)
                            .values(state=C.SENT, reason=None, attempts=attempts + 1, sent_at=now,
                                    updated_at=now)).rowcount == 1
            if won and conv is not None:
                s.execute(insert(Outbox).values(conversation_id=conv[0], contact_id=contact_id, channel="web", seq=0,
                                                kind="bulk", body_enc=gw.vault.seal(body), priority=10, state=S.SENT,
                                                attempts=1, next_attempt_at=now, flagged=False, created_at=now,
                                                sent_at=now))
            return "sent" if won else "skipped"
        won = s.execute(CLAIM, {"b_id": send_id, "b_attempts": attempts + 1, "b_owner": owner, "b_now": now,
                                "b_until": now + CLAIM_SECONDS}).rowcount == 1
    if not won:
        return "skipped"                     # opted out (or cancelled) between the read and the claim
    address = gw.vault.open(bytes(address_enc))
    result = adapter.send(address, body, reply_ref=reply_ref) if channel == "zalo" else \
        adapter.send(address, body)
    now = frozen if frozen is not None else clock()
    if result.ok:
        with gw.tx() as c:
            c.execute(MARK_SENT, {"b_id": send_id, "b_pid": result.provider_msg_id, "b_now": now})
            if channel == "zalo":
                c.execute(update(Contact).where(Contact.id == contact_id)
                          .values(replies_since_inbound=Contact.replies_since_inbound + 1))
        return "sent"
    if result.ambiguous:
        # the provider may have taken it (a timeout, a connection lost mid-call): not sent again
        # blindly; reconcile asks the provider on its next pass (or records "unknown")
        _settle(gw, send_id, C.SENDING, now, (result.error_code or "ambiguous")[:32], claimed_until=now)
        return "deferred"
    if result.stop_contact:
        _settle(gw, send_id, C.OPTED_OUT, now, f"{channel}_stopped", claimed_by=None, claimed_until=None)
        reason = f"{channel}_{'21610' if channel == 'sms' else 'blocked'}"
        with transaction(gw.Session) as s:
            s.execute(update(Contact).where(Contact.id == contact_id).values(status=S.STOPPED, stopped_reason=reason))
        provider_opt_out(gw, contact_id, reason, now=now)
        return "opted_out"
    if result.retry and attempts + 1 < gw.settings.send_max_attempts:
        from webhook.pipeline import backoff
        delay = result.retry_after or min(backoff(attempts + 1), 60.0)
        _settle(gw, send_id, C.PLANNED, now, (result.error_code or "retry")[:32], next_attempt_at=now + delay,
                claimed_by=None, claimed_until=None, sent_at=None)
        return "deferred"
    _settle(gw, send_id, C.FAILED, now, (result.error_code or "failed")[:32], claimed_by=None, claimed_until=None)
    logger.info("campaign_send_failed campaign=%s send=%s channel=%s error=%s", cid, send_id, channel,
                result.error_code)
    return "failed"


# --- after a crash ---------------------------------------------------------------------------------------

def reconcile(gw, now: Optional[float] = None, limit: int = 500) -> int:
    """Rows left in ``sending`` by a dead worker (claim expired): sent (the provider has it), back
    to planned (the provider never got it), or ``unknown`` (the provider cannot be asked)."""
    now = time.time() if now is None else now
    with transaction(gw.Session) as s:
        owners = [o for (o,) in s.execute(select(CampaignSend.claimed_by).where(CampaignSend.state == C.SENDING)
                                          .distinct().limit(50))]
        dead = [o for o in owners if owner_dead(o)]
        rows = s.execute(select(CampaignSend.id, CampaignSend.channel, CampaignSend.claimed_at, Contact.address_enc,
                                Campaign.content, Subscriber.language)
                         .join(Subscriber, Subscriber.id == CampaignSend.subscriber_id)
                         .join(Contact, Contact.id == Subscriber.contact_id)
                         .join(Campaign, Campaign.id == CampaignSend.campaign_id)
                         .where(CampaignSend.state == C.SENDING,
                                (CampaignSend.claimed_until < now) | CampaignSend.claimed_by.in_(dead or [""]))
                         .order_by(CampaignSend.id).limit(limit)).all()
    done = 0
    for send_id, channel, claimed_at, address_enc, key, language in rows:
        adapter = gw.adapters.get(channel)
        lookup = getattr(adapter, "lookup_sent", None)
        found: Optional[str] = None
        known = False
        if lookup is not None:
            try:
                body = C.render(key, language, channel, gw.settings.sms_unaccented, gw.kb.line())
                found, known = lookup(gw.vault.open(bytes(address_enc)), body, since=claimed_at), True
            except Exception as exc:       # the provider cannot answer now: try again next pass
                logger.warning("campaign_reconcile_lookup_failed send=%s error=%s", send_id, type(exc).__name__)
                continue
        with transaction(gw.Session) as s:
            q = update(CampaignSend).where(CampaignSend.id == send_id, CampaignSend.state == C.SENDING)
            if found:
                s.execute(q.values(state=C.SENT, provider_msg_id=found, claimed_by=None, claimed_until=None,
                                   reason="reconciled", updated_at=now))
            elif known:
                s.execute(q.values(state=C.PLANNED, claimed_by=None, claimed_until=None, sent_at=None,
                                   reason="reconciled_resend", next_attempt_at=now, updated_at=now))
            else:
                s.execute(q.values(state=C.UNKNOWN, claimed_by=None, claimed_until=None,
                                   reason="worker_died_in_call", updated_at=now))
        done += 1
    return done


def status_callback(gw, channel: str, provider_msg_id: str, status: str, error_code: Optional[str]) -> bool:
    """Twilio's delivery report for a campaign SMS."""
    with transaction(gw.Session) as s:
        row = s.execute(select(CampaignSend).where(CampaignSend.channel == channel,
                                                   CampaignSend.provider_msg_id == provider_msg_id)).scalar_one_or_none()
        if row is None:
            return False
        if status == "delivered" and row.state == C.SENT:
            row.state = C.DELIVERED
        elif status in ("undelivered", "failed") and row.state in (C.SENT, C.DELIVERED):
            row.state, row.reason = C.FAILED, (error_code or status)[:32]
        sub = s.get(Subscriber, row.subscriber_id)
        contact_id = sub.contact_id
    if error_code == "21610":
        provider_opt_out(gw, contact_id, "sms_21610")
    return True


def pending(gw) -> bool:
    """Is there campaign work (for the worker's bulk thread to poll less when idle)?"""
    with transaction(gw.Session) as s:
        return s.execute(select(Campaign.id).where(and_(Campaign.state.in_([C.SCHEDULED, C.RUNNING])))
                         .limit(1)).first() is not None
