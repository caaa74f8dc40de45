"""Campaigns: create, preview, approve, schedule, pause, resume, cancel, plan, report.

    draft --approve (a supervisor or admin who is not the author)--> approved
    approved --schedule (a start inside an action period)--> scheduled
    scheduled --the worker plans it at its start--> running --everything sent or skipped--> done
    scheduled | running --pause--> paused --resume--> scheduled | running
    draft | approved | scheduled | running | paused --cancel--> cancelled

Planning writes one ``campaign_sends`` row per subscriber of the segment in ONE statement (INSERT
… SELECT, ON CONFLICT DO NOTHING on (campaign, subscriber)): planning twice, or after a crash,
adds nothing. Who is actually sent to is decided per row at send time (webhook/broadcast/sender.py):
someone who opts out after planning is never sent to.
Every step is in the audit log (``events``) with the staff member's name, never a recipient.
"""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import and_, func, insert, literal, select, update

from webhook import events
from webhook.broadcast import calendar, content
from webhook.db import transaction
from webhook.hours import TZ
from webhook.models import Campaign, CampaignSend, Contact, Staff, Subscriber

DRAFT, APPROVED, SCHEDULED, RUNNING, PAUSED, DONE, CANCELLED = (
    "draft", "approved", "scheduled", "running", "paused", "done", "cancelled")
OPEN_STATES = (DRAFT, APPROVED, SCHEDULED, RUNNING, PAUSED)
AUDIENCES = ("all", "public", "student")
CHANNELS = ("sms", "telegram", "zalo", "web")
APPROVERS = ("supervisor", "admin")
# send row states
PLANNED, SENDING, SENT, DELIVERED, FAILED, SKIPPED, OPTED_OUT, UNKNOWN = (
    "planned", "sending", "sent", "delivered", "failed", "skipped", "opted_out", "unknown")


class CampaignError(ValueError):
    """A step that is not allowed now; the message says why (shown to staff as is)."""


def _get(s, campaign_id: int) -> Campaign:
    c = s.get(Campaign, campaign_id)
    if c is None:
        raise CampaignError(f"no campaign {campaign_id}")
    return c


def _move(c: Campaign, allowed: tuple, new: str, now: float) -> None:
    if c.state not in allowed:
        raise CampaignError(f"campaign {c.id} is {c.state}: cannot become {new}")
    c.state, c.updated_at = new, now


def create(gw, actor: str, name: str, content_key: str, audience: str = "all", locality: Optional[str] = None,
           language: Optional[str] = None, channels: Optional[list] = None, occasion: Optional[str] = None,
           now: Optional[float] = None) -> int:
    if content_key not in content.MESSAGES:
        raise CampaignError(f"unknown content {content_key!r}; one of {', '.join(content.MESSAGES)}")
    if audience not in AUDIENCES:
        raise CampaignError(f"audience must be one of {', '.join(AUDIENCES)}")
    if language and language not in content.LANGUAGES:
        raise CampaignError(f"language must be one of {', '.join(content.LANGUAGES)}")
    bad = [c for c in channels or [] if c not in CHANNELS]
    if bad:
        raise CampaignError(f"unknown channel {bad[0]!r}")
    occasion = occasion or content.MESSAGES[content_key][0]
    if occasion and occasion not in calendar.OCCASIONS:
        raise CampaignError(f"unknown occasion {occasion!r}")
    name = (name or "").strip()[:120]
    if not name:
        raise CampaignError("a campaign needs a name")
    now = time.time() if now is None else now
    with transaction(gw.Session) as s:
        c = Campaign(name=name, occasion=occasion, content=content_key, audience=audience, locality=locality or None,
                     language=language or None, channels=",".join(channels) if channels else None, state=DRAFT,
                     created_by=actor, created_at=now, updated_at=now)
        s.add(c)
        s.flush()
        events.record(s, "campaign_created", actor, None, f"campaign={c.id}", at=now)
        return c.id


def _segment(c: Campaign):
    """The subscribers a campaign is for (status subscribed, the campaign's filters)."""
    where = [Subscriber.status == "subscribed", Contact.id == Subscriber.contact_id]
    if c.audience != "all":
        where.append(Subscriber.audience == c.audience)
    if c.locality:
        where.append(Subscriber.locality == c.locality)
    if c.language:
        where.append(Subscriber.language == c.language)
    if c.channels:
        where.append(Contact.channel.in_(c.channels.split(",")))
    return and_(*where)


@dataclass
class Preview:
    campaign_id: int
    recipients: dict          # channel -> subscribers now in the segment (paused ones excluded)
    paused: int               # in the segment but "do not contact"
    texts: dict               # (channel, language) -> the text as it will be sent
    sms_segments: dict        # language -> segments of one SMS
    sms_cost: Optional[float] # estimated, when HELPLINE_SMS_SEGMENT_COST is set
    languages: dict           # language -> recipients

    @property
    def total(self) -> int:
        return sum(self.recipients.values())


def render(content_key: str, language: str, channel: str, unaccented_sms: bool = True, line=None) -> str:
    """The campaign text as sent: the counselling line (``line``, bot.kb.line.LineState) with its
    hours when it may be offered, whatever the hour; then without diacritics over SMS."""
    from bot.kb.line import render as render_line
    from bot.nlu.normalize import strip_diacritics

    body = render_line(content.message(content_key, language), line, language=language or "vi", any_time=True)
    if channel == "sms" and unaccented_sms:
        body = strip_diacritics(body)
    return body


def preview(gw, campaign_id: int) -> Preview:
    with transaction(gw.Session) as s:
        c = _get(s, campaign_id)
        seg = _segment(c)
        rows = s.execute(select(Contact.channel, Subscriber.language, Subscriber.do_not_contact, func.count())
                         .where(seg).group_by(Contact.channel, Subscriber.language, Subscriber.do_not_contact)).all()
        key = c.content
        cid = c.id
    recipients: dict = {}
    languages: dict = {}
    sms_languages: dict = {}
    paused = 0
    for channel, language, dnc, n in rows:
        if dnc:
            paused += n
            continue
        recipients[channel] = recipients.get(channel, 0) + n
        languages[language] = languages.get(language, 0) + n
        if channel == "sms":
            sms_languages[language] = sms_languages.get(language, 0) + n
    wanted = sorted(set(recipients) | set((c.channels or "").split(",")) - {""}) or ["sms"]
    line = gw.kb.line()
    texts = {(ch, lang): render(key, lang, ch, gw.settings.sms_unaccented, line) for ch in wanted
             for lang in (sorted(languages) or ["vi"])}
    segments = {lang: content.sms_segments(render(key, lang, "sms", gw.settings.sms_unaccented, line))
                for lang in (sorted(languages) or ["vi"])}
    cost = None
    try:
        price = float(gw.settings.sms_segment_cost) if gw.settings.sms_segment_cost else None
    except ValueError:
        price = None
    if price is not None:                   # SMS recipients per language times that language's segments
        cost = round(sum(n * segments.get(lang, 1) for lang, n in sms_languages.items()) * price, 2)
    return Preview(cid, recipients, paused, texts, segments, cost, languages)


def approve(gw, campaign_id: int, actor: str, now: Optional[float] = None) -> None:
    now = time.time() if now is None else now
    with transaction(gw.Session) as s:
        c = _get(s, campaign_id)
        staff = s.execute(select(Staff).where(Staff.username == actor)).scalar_one_or_none()
        if staff is None or staff.role not in APPROVERS or not staff.active:
            raise CampaignError("only an active supervisor or admin can approve a campaign")
        if actor == c.created_by:
            raise CampaignError("the author cannot approve their own campaign: another supervisor must")
        _move(c, (DRAFT,), APPROVED, now)
        c.approved_by, c.approved_at = actor, now
        events.record(s, "campaign_approved", actor, None, f"campaign={c.id}", at=now)


def schedule(gw, campaign_id: int, actor: str, start_at: Optional[float] = None, now: Optional[float] = None) -> float:
    """Start at ``start_at`` (default: now). It must fall inside the campaign's action period."""
    now = time.time() if now is None else now
    start_at = now if start_at is None else start_at
    with transaction(gw.Session) as s:
        c = _get(s, campaign_id)
        day = dt.datetime.fromtimestamp(start_at, TZ).date()
        if not calendar.allowed(day, c.occasion):
            window = calendar.OCCASIONS[c.occasion].dates(day.year) if c.occasion else None
            raise CampaignError("campaigns go out in the action months only: " + (
                f"{c.occasion} runs {window[0]:%d/%m}–{window[1]:%d/%m}" if window else
                "1–30/6, 15/11–15/12 (25/11)"))
        _move(c, (APPROVED,), SCHEDULED, now)
        c.start_at = start_at
        events.record(s, "campaign_scheduled", actor, None, f"campaign={c.id} start={int(start_at)}", at=now)
    return start_at


def pause(gw, campaign_id: int, actor: str, now: Optional[float] = None) -> None:
    now = time.time() if now is None else now
    with transaction(gw.Session) as s:
        c = _get(s, campaign_id)
        _move(c, (SCHEDULED, RUNNING), PAUSED, now)
        events.record(s, "campaign_paused", actor, None, f"campaign={c.id}", at=now)


def resume(gw, campaign_id: int, actor: str, now: Optional[float] = None) -> None:
    """Go on, inside the campaign's action period only (a June campaign is not resumed in August)."""
    now = time.time() if now is None else now
    with transaction(gw.Session) as s:
        c = _get(s, campaign_id)
        if c.planned_at and not calendar.allowed(dt.datetime.fromtimestamp(now, TZ).date(), c.occasion):
            raise CampaignError("its action period is over: cancel it, or make a new campaign for the next one")
        _move(c, (PAUSED,), RUNNING if c.planned_at else SCHEDULED, now)
        events.record(s, "campaign_resumed", actor, None, f"campaign={c.id}", at=now)


def cancel(gw, campaign_id: int, actor: str, now: Optional[float] = None) -> int:
    """Stop for good; messages not yet handed to a provider become skipped (cancelled)."""
    now = time.time() if now is None else now
    with transaction(gw.Session) as s:
        c = _get(s, campaign_id)
        _move(c, OPEN_STATES, CANCELLED, now)
        c.finished_at = now
        n = s.execute(update(CampaignSend).where(CampaignSend.campaign_id == c.id, CampaignSend.state == PLANNED)
                      .values(state=SKIPPED, reason="cancelled", updated_at=now)).rowcount
        events.record(s, "campaign_cancelled", actor, None, f"campaign={c.id} unsent={n}", at=now)
        return n


def plan(gw, campaign_id: int, now: Optional[float] = None) -> int:
    """One send row per subscriber of the segment (idempotent); the campaign becomes running."""
    now = time.time() if now is None else now
    with transaction(gw.Session) as s:
        c = _get(s, campaign_id)
        if c.state not in (SCHEDULED, RUNNING):
            raise CampaignError(f"campaign {c.id} is {c.state}: only a scheduled campaign is planned")
        rows = (select(literal(c.id), Subscriber.id, Contact.channel, literal(PLANNED), literal(0), literal(0.0),
                       literal(now))
                .where(_segment(c)).order_by(Subscriber.id))
        cols = ["campaign_id", "subscriber_id", "channel", "state", "attempts", "next_attempt_at", "updated_at"]
        dialect = s.get_bind().dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        stmt = dialect_insert(CampaignSend.__table__).from_select(cols, rows).on_conflict_do_nothing(
            index_elements=["campaign_id", "subscriber_id"])
        s.execute(stmt)
        total = s.execute(select(func.count()).select_from(CampaignSend)
                          .where(CampaignSend.campaign_id == c.id)).scalar_one()
        c.planned, c.planned_at, c.updated_at = total, c.planned_at or now, now
        if c.state == SCHEDULED:
            c.state = RUNNING
        events.record(s, "campaign_planned", events.SYSTEM, None, f"campaign={c.id} recipients={total}", at=now)
        return total


def report(gw, campaign_id: int) -> dict:
    """The delivery report: rows per state, per (state, reason) and per channel."""
    with transaction(gw.Session) as s:
        c = _get(s, campaign_id)
        rows = s.execute(select(CampaignSend.channel, CampaignSend.state, CampaignSend.reason, func.count())
                         .where(CampaignSend.campaign_id == campaign_id)
                         .group_by(CampaignSend.channel, CampaignSend.state, CampaignSend.reason)).all()
        out = {"campaign": c.id, "name": c.name, "state": c.state, "planned": c.planned or 0, "by_state": {},
               "by_reason": {}, "by_channel": {}}
    for channel, state, reason, n in rows:
        out["by_state"][state] = out["by_state"].get(state, 0) + n
        if reason and state in (SKIPPED, FAILED, OPTED_OUT, UNKNOWN):
            out["by_reason"][f"{state}:{reason}"] = out["by_reason"].get(f"{state}:{reason}", 0) + n
        ch = out["by_channel"].setdefault(channel, {})
        ch[state] = ch.get(state, 0) + n
    out["queued"] = out["by_state"].get(PLANNED, 0)
    out["finished"] = out["planned"] - out["queued"] - out["by_state"].get(SENDING, 0)
    return out


def get(gw, campaign_id: int) -> Campaign:
    with transaction(gw.Session) as s:
        c = _get(s, campaign_id)
        s.expunge(c)
        return c


def listing(gw, limit: int = 50) -> list[Campaign]:
    with transaction(gw.Session) as s:
        rows = list(s.execute(select(Campaign).order_by(Campaign.id.desc()).limit(limit)).scalars())
        s.expunge_all()
        return rows
