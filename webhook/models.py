"""The gateway's tables. The schema is created and changed only by the Alembic migrations in
``webhook/migrations`` (``webhook.db.upgrade``); these classes describe it for the ORM.

States are named here, with their lifecycle, and changed only through ``webhook.states``.
"""
from __future__ import annotations

import time

from sqlalchemy import (Boolean, Column, Date, Float, ForeignKey, Index, Integer, LargeBinary, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import declarative_base

Base = declarative_base()


def now() -> float:
    return time.time()


class Contact(Base):
    """One person on one channel. ``address`` (phone number, Telegram chat id, Zalo user id, web
    session) is stored only sealed; ``pseudonym`` is what everything else uses."""
    __tablename__ = "contacts"
    id = Column(Integer, primary_key=True)
    channel = Column(String(16), nullable=False)
    pseudonym = Column(String(64), nullable=False)
    address_enc = Column(LargeBinary, nullable=False)
    # active: we may reply. stopped: the person or the provider said no (STOP/HUY, Twilio 21610,
    # Telegram "blocked"); conversation replies to a new inbound message still go out, nothing else.
    status = Column(String(16), nullable=False, default="active")
    stopped_reason = Column(String(32))
    created_at = Column(Float, nullable=False, default=now)
    last_inbound_at = Column(Float)
    # Zalo: replies must quote the person's latest message and fit in the 48 h / 8 message window.
    reply_ref = Column(String(128))
    replies_since_inbound = Column(Integer, nullable=False, default=0)
    __table_args__ = (UniqueConstraint("channel", "pseudonym", name="uq_contact_channel_pseudonym"),)


class Conversation(Base):
    """Mode lifecycle (see webhook.states.MODES): bot -> queued -> with_counsellor -> bot; any ->
    closed. ``lease_*`` lets exactly one dispatcher (thread or process) work on a conversation at a
    time, so messages reach Rasa in the order they arrived."""
    __tablename__ = "conversations"
    id = Column(Integer, primary_key=True)
    contact_id = Column(Integer, ForeignKey("contacts.id"), nullable=False, index=True)
    channel = Column(String(16), nullable=False)
    rasa_sender = Column(String(96), nullable=False, unique=True)
    mode = Column(String(20), nullable=False, default="bot")
    lease_owner = Column(String(64))
    lease_until = Column(Float)
    degraded_notice_at = Column(Float)
    # what the conversation carries from one message to the next (bot/context.py): labels only
    risk = Column(String(10), nullable=False, default="none", server_default="none")
    topic = Column(String(32))
    asked = Column(String(16))
    created_at = Column(Float, nullable=False, default=now)
    updated_at = Column(Float, nullable=False, default=now)


class Message(Base):
    """One inbound message. State lifecycle (webhook.states.INBOUND):
    pending (stored, not yet understood) -> answered (Rasa replied, replies in the outbox)
    pending -> deferred (Rasa or the action server was down: safe reply sent, replayed later)
    deferred -> answered (replayed) ; pending -> ignored (media, empty: the gateway answered)
    The body is sealed; media is never stored."""
    __tablename__ = "messages"
    id = Column(Integer, primary_key=True)
    conversation_id = Column(Integer, ForeignKey("conversations.id"), nullable=False)
    channel = Column(String(16), nullable=False)
    provider_msg_id = Column(String(128), nullable=False)
    kind = Column(String(16), nullable=False, default="text")   # text | media | empty
    body_enc = Column(LargeBinary)
    state = Column(String(16), nullable=False, default="pending")
    attempts = Column(Integer, nullable=False, default=0)
    risk = Column(String(16))
    topic = Column(String(32))
    client_ref = Column(String(64))
    received_at = Column(Float, nullable=False, default=now)
    answered_at = Column(Float)
    __table_args__ = (
        UniqueConstraint("channel", "provider_msg_id", name="uq_message_provider_id"),
        Index("ix_messages_conversation_state", "conversation_id", "state", "id"),
        Index("ix_messages_state", "state", "received_at"),
    )


class Outbox(Base):
    """One message to send. Lifecycle (webhook.states.OUTBOX):
    queued -> sending -> sent -> delivered            (status callbacks may add delivered/failed)
    sending -> queued (retry later, with backoff)     sending -> failed (gave up, or permanent error)
    queued -> undeliverable (channel refuses: stopped contact, Zalo window closed) -> flagged to a
    counsellor. ``(source_message_id, seq)`` is unique so a replayed message never produces its
    replies twice. Priority 0 = conversation, 10 = bulk (broadcasts wait)."""
    __tablename__ = "outbox"
    id = Column(Integer, primary_key=True)
    conversation_id = Column(Integer, ForeignKey("conversations.id"), nullable=False)
    contact_id = Column(Integer, ForeignKey("contacts.id"), nullable=False)
    channel = Column(String(16), nullable=False)
    source_message_id = Column(Integer, ForeignKey("messages.id"))
    seq = Column(Integer, nullable=False, default=0)
    kind = Column(String(16), nullable=False, default="bot")    # bot | safety | counsellor | bulk
    body_enc = Column(LargeBinary, nullable=False)
    priority = Column(Integer, nullable=False, default=0)
    state = Column(String(16), nullable=False, default="queued")
    attempts = Column(Integer, nullable=False, default=0)
    next_attempt_at = Column(Float, nullable=False, default=now)
    claimed_by = Column(String(64))
    claimed_until = Column(Float)
    provider_msg_id = Column(String(128))
    error_code = Column(String(32))
    flagged = Column(Boolean, nullable=False, default=False)
    created_at = Column(Float, nullable=False, default=now)
    sent_at = Column(Float)
    __table_args__ = (
        UniqueConstraint("source_message_id", "seq", name="uq_outbox_source_seq"),
        Index("ix_outbox_ready", "state", "priority", "next_attempt_at"),
        Index("ix_outbox_provider", "channel", "provider_msg_id"),
    )


class Case(Base):
    """An entry in the Social Work Center's queue. One open case per conversation: a new risk
    message raises its risk, never opens a second case. Status lifecycle (webhook.queue):
    open -> claimed -> closed, claimed -> open (released or transferred back to the queue).
    ``priority`` orders the queue: 0 imminent, 1 high, 2 a person asked for a counsellor,
    3 medium and everything else; oldest first within a priority."""
    __tablename__ = "cases"
    id = Column(Integer, primary_key=True)
    conversation_id = Column(Integer, ForeignKey("conversations.id"), nullable=False, index=True)
    status = Column(String(16), nullable=False, default="open")
    risk = Column(String(16), nullable=False)
    topic = Column(String(32))
    reason = Column(String(64))
    source = Column(String(16), nullable=False)          # rules | bot | delivery | request
    created_at = Column(Float, nullable=False, default=now)
    updated_at = Column(Float, nullable=False, default=now)
    priority = Column(Integer, nullable=False, default=3)
    requested = Column(Boolean, nullable=False, default=False)
    summary = Column(String(200))                        # machine facts only, never message text
    claimed_by = Column(String(64))
    claimed_at = Column(Float)
    alerted_at = Column(Float)
    notice_at = Column(Float)                            # the person was told it is out of hours
    resolved_at = Column(Float)
    outcome = Column(String(32))                         # resolved | released | no_contact | …
    referrals = Column(String(200))                      # comma-separated codes (webhook.console.REFERRALS)
    help_received = Column(String(8))                    # yes | no | unknown: indicator đ
    locality = Column(String(64))
    gbv_type = Column(String(24))                        # set by the counsellor (GBVIMS); overrides the rules
    stats_consent = Column(String(12))                   # yes | no | not_asked: counted in statistics?
    __table_args__ = (Index("ix_cases_queue", "status", "priority", "created_at"),)


class ProviderToken(Base):
    """Rotating provider credentials (Zalo's refresh token is single-use: the new one must be
    stored before the old one is forgotten)."""
    __tablename__ = "provider_tokens"
    channel = Column(String(16), primary_key=True)
    access_token_enc = Column(LargeBinary)
    refresh_token_enc = Column(LargeBinary)
    expires_at = Column(Float)
    updated_at = Column(Float, nullable=False, default=now)


class WebSession(Base):
    """A web chat session: the browser holds a random token; the database holds its hash."""
    __tablename__ = "web_sessions"
    token_hash = Column(String(64), primary_key=True)
    created_at = Column(Float, nullable=False, default=now)
    last_seen_at = Column(Float, nullable=False, default=now)


class Staff(Base):
    """A console account. Passwords are stored only as salted hashes (werkzeug scrypt); five
    wrong passwords lock the account for a while. Roles: counsellor < supervisor < admin."""
    __tablename__ = "staff"
    id = Column(Integer, primary_key=True)
    username = Column(String(64), nullable=False, unique=True)
    display_name = Column(String(80), nullable=False)
    password_hash = Column(String(256), nullable=False)
    role = Column(String(16), nullable=False)
    active = Column(Boolean, nullable=False, default=True)
    failed_logins = Column(Integer, nullable=False, default=0)
    locked_until = Column(Float)
    created_at = Column(Float, nullable=False, default=now)


class ConsoleSession(Base):
    """A console login. The browser holds a random token in an HttpOnly cookie; the database holds
    its hash, so logging out (or an idle timeout, or disabling the account) ends it for real."""
    __tablename__ = "console_sessions"
    token_hash = Column(String(64), primary_key=True)
    staff_id = Column(Integer, ForeignKey("staff.id"), nullable=False, index=True)
    csrf = Column(String(64), nullable=False)
    created_at = Column(Float, nullable=False, default=now)
    last_seen_at = Column(Float, nullable=False, default=now)


class Event(Base):
    """One line of the audit log and of the console's live feed: who did what to which case.
    ``detail`` holds labels only (risk, outcome, the other counsellor), never a message or an
    address. The console streams the rows whose action is in ``webhook.console.events.FEED``."""
    __tablename__ = "events"
    id = Column(Integer, primary_key=True)
    at = Column(Float, nullable=False, default=now)
    actor = Column(String(64), nullable=False)
    action = Column(String(32), nullable=False)
    case_id = Column(Integer, ForeignKey("cases.id"))
    detail = Column(String(200))
    __table_args__ = (Index("ix_events_case", "case_id", "id"),)


class CaseNote(Base):
    """A counsellor's internal note on a case (sealed; never sent to the person)."""
    __tablename__ = "case_notes"
    id = Column(Integer, primary_key=True)
    case_id = Column(Integer, ForeignKey("cases.id"), nullable=False, index=True)
    author = Column(String(64), nullable=False)
    body_enc = Column(LargeBinary, nullable=False)
    created_at = Column(Float, nullable=False, default=now)


class CannedResponse(Base):
    """A ready answer counsellors can insert and edit before sending; supervisors edit the list.
    Seeded from data/console/canned_responses.yml, where each one cites its source."""
    __tablename__ = "canned_responses"
    id = Column(Integer, primary_key=True)
    key = Column(String(64), nullable=False, unique=True)
    title = Column(String(120), nullable=False)
    body = Column(Text, nullable=False)
    source = Column(String(200))
    updated_by = Column(String(64))
    updated_at = Column(Float, nullable=False, default=now)


class Followup(Base):
    """A check-in the person agreed to: sent after ``due_at`` inside their safe hours
    (``safe_from``..``safe_to``, Vietnam time, hours). State: scheduled -> sent -> answered;
    scheduled|sent -> cancelled (STOP/HUY, or the person's contact stopped)."""
    __tablename__ = "followups"
    id = Column(Integer, primary_key=True)
    case_id = Column(Integer, ForeignKey("cases.id"), nullable=False, index=True)
    conversation_id = Column(Integer, ForeignKey("conversations.id"), nullable=False)
    due_at = Column(Float, nullable=False)
    safe_from = Column(Integer, nullable=False)
    safe_to = Column(Integer, nullable=False)
    state = Column(String(16), nullable=False, default="scheduled")
    sent_at = Column(Float)
    answer = Column(String(16))
    answered_at = Column(Float)
    created_by = Column(String(64), nullable=False)
    created_at = Column(Float, nullable=False, default=now)
    __table_args__ = (Index("ix_followups_due", "state", "due_at"),)


class StatYearKey(Base):
    """The random salt of one year's statistics pseudonyms. ``helpline stats close-year`` deletes
    it, after which nobody (the operator included) can link that year's episodes to a contact or
    to another year."""
    __tablename__ = "stat_year_keys"
    year = Column(Integer, primary_key=True)
    salt = Column(String(64))
    closed_at = Column(Float)


class Episode(Base):
    """One anonymised contact episode: one person, one month (webhook/stats). No text, no
    address, no time finer than the day. See docs/indicators.md for every field."""
    __tablename__ = "stat_episodes"
    id = Column(Integer, primary_key=True)
    person = Column(String(32), nullable=False)          # year-scoped keyed hash
    year = Column(Integer, nullable=False)
    month = Column(Integer, nullable=False)
    first_day = Column(Date, nullable=False)
    last_day = Column(Date, nullable=False)
    channel = Column(String(16), nullable=False)
    locality = Column(String(64))                        # new commune-level unit, when named
    former_district = Column(String(32))                 # for the 2021-2025 plan
    topic = Column(String(32))
    gbv_type = Column(String(24), nullable=False)
    reporter = Column(String(24), nullable=False)
    age_group = Column(String(8), nullable=False)
    sex = Column(String(8), nullable=False)
    relationship = Column(String(32))
    risk = Column(String(16), nullable=False)
    sought_help = Column(Boolean, nullable=False, default=False)
    needed_help = Column(Boolean, nullable=False, default=False)
    helped = Column(Boolean)
    consent = Column(String(12), nullable=False, default="not_asked")
    __table_args__ = (UniqueConstraint("person", "year", "month", name="uq_episode_person_month"),
                      Index("ix_episodes_period", "year", "month"))


class StatCount(Base):
    """Counts of persons per period and label, kept up to date as episodes change
    (webhook/stats/cube.py): what every statistics table is read from. Raw counts: published
    only through webhook/stats/suppress.py."""
    __tablename__ = "stat_counts"
    year = Column(Integer, primary_key=True)
    kind = Column(String(8), primary_key=True)           # year | quarter | month
    period = Column(Integer, primary_key=True)           # 0 for the year, 1-4, 1-12
    dim = Column(String(24), primary_key=True)           # "" for the totals
    value = Column(String(64), primary_key=True)         # "" for the totals, "unknown" when none
    persons = Column(Integer, nullable=False, default=0)
    survivors = Column(Integer, nullable=False, default=0)
    sought = Column(Integer, nullable=False, default=0)
    needed = Column(Integer, nullable=False, default=0)
    helped = Column(Integer, nullable=False, default=0)
    others = Column(Integer, nullable=False, default=0)


class Subscriber(Base):
    """A person who asked for campaign messages (webhook/broadcast). One per contact. Status:
    pending (wrote DK, has not confirmed the consent text) -> subscribed -> unsubscribed (HUY,
    STOP, the provider's opt-out, a counsellor) -> subscribed again only by the person's own DK and
    confirmation. Every change is a ``ConsentRecord``. Safe hours and "do not contact" are the
    person's (or a counsellor's) and override every campaign."""
    __tablename__ = "subscribers"
    id = Column(Integer, primary_key=True)
    contact_id = Column(Integer, ForeignKey("contacts.id"), nullable=False, unique=True)
    status = Column(String(16), nullable=False, default="pending")
    audience = Column(String(16), nullable=False, default="public")     # public | student
    locality = Column(String(32))                                      # former district id, when given
    language = Column(String(8), nullable=False, default="vi")
    consent_version = Column(String(16))                               # the consent text confirmed
    consent_at = Column(Float)
    pending_at = Column(Float)
    opted_out_at = Column(Float)
    opt_out_reason = Column(String(32))
    self_opted_in = Column(Boolean, nullable=False, default=True)
    safe_start = Column(Integer)                                       # local hour, inclusive
    safe_end = Column(Integer)                                         # local hour, exclusive
    do_not_contact = Column(Boolean, nullable=False, default=False)
    created_at = Column(Float, nullable=False, default=now)
    updated_at = Column(Float, nullable=False, default=now)
    __table_args__ = (Index("ix_subscribers_status", "status", "id"),)


class ConsentRecord(Base):
    """What a person agreed to or withdrew, when, on which channel, with which consent text
    (Decree 13/2023: consent must be shown to have been given). Append-only."""
    __tablename__ = "consent_records"
    id = Column(Integer, primary_key=True)
    subscriber_id = Column(Integer, ForeignKey("subscribers.id"), nullable=False, index=True)
    action = Column(String(24), nullable=False)      # asked | opt_in | opt_out | safe_hours | dnc_on | dnc_off | segment
    at = Column(Float, nullable=False, default=now)
    channel = Column(String(16), nullable=False)
    version = Column(String(16))                     # consent text version shown or confirmed
    method = Column(String(16), nullable=False)      # keyword | web | provider | counsellor
    actor = Column(String(64))                       # "person", "provider" or the staff username
    detail = Column(String(64))                      # labels only (e.g. "sms_21610", "19-21")


class Campaign(Base):
    """A broadcast. draft -> approved (a supervisor who is not the author) -> scheduled ->
    running -> done; running <-> paused; draft|approved|scheduled|running|paused -> cancelled."""
    __tablename__ = "campaigns"
    id = Column(Integer, primary_key=True)
    name = Column(String(120), nullable=False)
    occasion = Column(String(32))                    # webhook/broadcast/calendar.py key
    content = Column(String(64), nullable=False)     # webhook/broadcast/content.py key
    audience = Column(String(16), nullable=False, default="all")   # all | public | student
    locality = Column(String(32))
    language = Column(String(8))                     # None: every language
    channels = Column(String(64))                    # comma-separated; None: every channel
    state = Column(String(16), nullable=False, default="draft")
    created_by = Column(String(64), nullable=False)
    created_at = Column(Float, nullable=False, default=now)
    approved_by = Column(String(64))
    approved_at = Column(Float)
    start_at = Column(Float)
    planned_at = Column(Float)
    planned = Column(Integer)
    finished_at = Column(Float)
    lease_owner = Column(String(64))                 # the worker sending it now
    lease_until = Column(Float)
    updated_at = Column(Float, nullable=False, default=now)


class CampaignSend(Base):
    """One message of a campaign to one subscriber: exactly one row per (campaign, subscriber).
    planned -> sending (claimed, committed before the provider is called) -> sent -> delivered |
    failed; planned -> skipped (reason) | opted_out; sending -> unknown (the worker died during
    the call and the provider cannot tell: never sent twice)."""
    __tablename__ = "campaign_sends"
    id = Column(Integer, primary_key=True)
    campaign_id = Column(Integer, ForeignKey("campaigns.id"), nullable=False)
    subscriber_id = Column(Integer, ForeignKey("subscribers.id"), nullable=False)
    channel = Column(String(16), nullable=False)
    state = Column(String(16), nullable=False, default="planned")
    reason = Column(String(32))
    attempts = Column(Integer, nullable=False, default=0)
    next_attempt_at = Column(Float, nullable=False, default=0.0)
    claimed_by = Column(String(64))
    claimed_at = Column(Float)
    claimed_until = Column(Float)
    provider_msg_id = Column(String(128))
    sent_at = Column(Float)
    updated_at = Column(Float, nullable=False, default=now)
    __table_args__ = (UniqueConstraint("campaign_id", "subscriber_id", name="uq_send_campaign_subscriber"),
                      Index("ix_sends_work", "campaign_id", "state", "id"),
                      Index("ix_sends_subscriber_day", "subscriber_id", "sent_at"),
                      Index("ix_sends_provider", "channel", "provider_msg_id"))


class Erasure(Base):
    """A request to erase a person's data (XOA, or a supervisor acting on their request):
    asked -> done | cancelled. Kept as the record that it was done; labels and counts only."""
    __tablename__ = "erasures"
    id = Column(Integer, primary_key=True)
    contact_id = Column(Integer, ForeignKey("contacts.id"), nullable=False, index=True)
    state = Column(String(16), nullable=False, default="asked")
    asked_at = Column(Float, nullable=False, default=now)
    done_at = Column(Float)
    method = Column(String(16), nullable=False)      # keyword | staff
    actor = Column(String(64), nullable=False)       # "person" or the staff username
    counts = Column(String(200))                     # what was erased: "messages=12 outbox=9 notes=1"


class IncidentReport(Base):
    """A serious incident (an imminent case) must be reported within 10 days: the deadline and
    whether the draft was made and the report submitted."""
    __tablename__ = "incident_reports"
    case_id = Column(Integer, ForeignKey("cases.id"), primary_key=True)
    opened_day = Column(Date, nullable=False)
    due_day = Column(Date, nullable=False)
    drafted_at = Column(Float)
    submitted_at = Column(Float)
    submitted_by = Column(String(64))


class KbCheck(Base):
    """A check of a fact, a number or a place recorded in the console ("checked by phone on
    2026-12-07: confirmed, hours mon-fri 07:30-17:00"). The newest check of an item decides its
    state (bot.kb.facts.status); the history stays. Labels only: no person's data."""
    __tablename__ = "kb_checks"
    id = Column(Integer, primary_key=True)
    kind = Column(String(16), nullable=False)        # fact | service | place
    item_id = Column(String(300), nullable=False)
    checked_on = Column(Date, nullable=False)
    result = Column(String(16), nullable=False)      # confirmed | wrong | no_answer
    hours = Column(String(120))                      # bot.kb.hours grammar, for a phone line
    note = Column(String(300))
    staff = Column(String(64), nullable=False)
    created_at = Column(Float, nullable=False, default=now)
    __table_args__ = (Index("ix_kb_checks_item", "kind", "item_id"),)


class DataRequest(Base):
    """A person's request to see (get a copy of) their data: open -> replied -> done, or
    cancelled. ``reply_due`` and ``due`` are the deadlines of Decree 356/2025 Art. 5 (first answer
    within 2 working days, the copy within 10 days). Erasure (XOA) is done at once and recorded
    in ``erasures``."""
    __tablename__ = "data_requests"
    id = Column(Integer, primary_key=True)
    contact_id = Column(Integer, ForeignKey("contacts.id"), nullable=False, index=True)
    case_id = Column(Integer, ForeignKey("cases.id"))
    kind = Column(String(16), nullable=False)        # access
    state = Column(String(16), nullable=False)       # open | replied | done | cancelled
    method = Column(String(16), nullable=False)      # keyword | staff
    asked_at = Column(Float, nullable=False, default=now)
    reply_due = Column(Float, nullable=False)
    due = Column(Float, nullable=False)
    replied_at = Column(Float)
    done_at = Column(Float)
    actor = Column(String(64))
