"""Who asked for campaign messages, and what they said about contacting them.

- Opting in takes two messages: DK (with optional segment words) shows the consent text and its
  version; CÓ within 24 hours confirms it (Decree 13/2023: consent is an act, silence is not
  consent). Both are consent records with time, channel and text version.
- Opting out (HUY, STOP, TỪ CHỐI, …) is immediate and lasts until the person opts in again: the
  subscriber is unsubscribed, their pending campaign messages become ``opted_out``, their
  scheduled follow-ups are cancelled and the contact is marked stopped (only answers to their own
  new messages go out). The provider's opt-outs do the same: Twilio 21610, Telegram "blocked",
  Zalo unfollow (``provider_opt_out``).
- Safe hours (GIỜ 19-21) and "do not contact" (KLL) are kept per contact even for people who never
  subscribed (they also hold follow-ups back), settable by the person or by a counsellor.
Nothing here logs or stores what the person wrote: only the command's labels.
"""
from __future__ import annotations

import logging
import time
from typing import Optional

from sqlalchemy import select, update

from webhook import states as S
from webhook.broadcast import content
from webhook.broadcast.keywords import Command, parse
from webhook.db import transaction
from webhook.models import CampaignSend, ConsentRecord, Contact, Conversation, Subscriber

logger = logging.getLogger(__name__)

PENDING, SUBSCRIBED, UNSUBSCRIBED, NONE = "pending", "subscribed", "unsubscribed", "none"
CONFIRM_WINDOW = 24 * 3600.0
STOPPED_BY_KEYWORD = "keyword"


def _record(s, sub: Subscriber, action: str, channel: str, method: str, actor: str, now: float,
            version: Optional[str] = None, detail: Optional[str] = None) -> None:
    s.add(ConsentRecord(subscriber_id=sub.id, action=action, at=now, channel=channel, version=version,
                        method=method, actor=actor, detail=detail))


def get_or_create(s, contact_id: int, language: str = "vi", now: Optional[float] = None) -> Subscriber:
    sub = s.execute(select(Subscriber).where(Subscriber.contact_id == contact_id)).scalar_one_or_none()
    if sub is None:
        now = time.time() if now is None else now
        sub = Subscriber(contact_id=contact_id, status=NONE, audience="public", language=language,
                         self_opted_in=False, do_not_contact=False, created_at=now, updated_at=now)
        s.add(sub)
        s.flush()
    return sub


def _cancel_pending(s, subscriber_id: int, now: float, state: str = "opted_out") -> int:
    """Campaign messages not yet handed to a provider will not be sent."""
    return s.execute(update(CampaignSend).where(CampaignSend.subscriber_id == subscriber_id,
                                                CampaignSend.state == "planned")
                     .values(state=state, reason=state, updated_at=now)).rowcount


def _opt_out(s, sub: Subscriber, contact: Contact, channel: str, method: str, actor: str, reason: str,
             now: float) -> None:
    from webhook.console.followup import cancel_for_contact

    was = sub.status
    sub.status, sub.opted_out_at, sub.opt_out_reason, sub.updated_at = UNSUBSCRIBED, now, reason, now
    sub.pending_at = None
    _record(s, sub, "opt_out", channel, method, actor, now, detail=reason if was != UNSUBSCRIBED else f"{reason}:again")
    _cancel_pending(s, sub.id, now)
    cancel_for_contact(s, contact.id, now)
    if contact.status != S.STOPPED:
        contact.status, contact.stopped_reason = S.STOPPED, reason[:32]


def _previous_was_opt_in(gw, s, conversation_id: int, message_id: int) -> bool:
    """The person's message before this one was DK: a "có" answers the consent text only then
    (not the bot's "do you want a counsellor?", which also has a "Có" button)."""
    from webhook.models import Message

    prev = s.execute(select(Message.body_enc).where(Message.conversation_id == conversation_id,
                                                    Message.id < message_id)
                     .order_by(Message.id.desc()).limit(1)).scalar()
    cmd = parse(gw.vault.open(prev)) if prev is not None else None
    return cmd is not None and cmd.action == "opt_in"


def handle(gw, conversation_id: int, text: str, now: Optional[float] = None,
           message_id: Optional[int] = None) -> Optional[str]:
    """The reply when the message is a subscription command that applies now, else None (the bot
    answers it). Runs before Rasa, and also when Rasa is down. ``message_id`` (the pipeline gives
    it) makes a confirmation count only right after the DK it confirms."""
    cmd = parse(text)
    if cmd is None:
        return None
    now = time.time() if now is None else now
    with transaction(gw.Session) as s:
        if cmd.action == "confirm" and message_id is not None and \
                not _previous_was_opt_in(gw, s, conversation_id, message_id):
            return None
        conv = s.get(Conversation, conversation_id)
        contact = s.get(Contact, conv.contact_id)
        sub = get_or_create(s, contact.id, gw.settings.locale, now)
        reply = _apply(s, sub, contact, conv.channel, cmd, now, gw.settings.locale)
        language = sub.language
    if reply is None:
        return None
    logger.info("subscription_command conversation=%s action=%s", conversation_id, cmd.action)
    msgid, values = reply
    return content.text(msgid, language, **values)


def _apply(s, sub: Subscriber, contact: Contact, channel: str, cmd: Command, now: float, default_language: str):
    if cmd.action == "opt_out":
        _opt_out(s, sub, contact, channel, "keyword", "person", STOPPED_BY_KEYWORD, now)
        return content.UNSUBSCRIBED, {}
    if cmd.action == "opt_in":
        if cmd.language:
            sub.language = cmd.language
        if cmd.audience == "student" or sub.status != SUBSCRIBED:
            sub.audience = cmd.audience or sub.audience
        if cmd.locality:
            sub.locality = cmd.locality
        sub.updated_at = now
        if sub.status == SUBSCRIBED:
            _record(s, sub, "segment", channel, "keyword", "person", now,
                    detail=f"{sub.audience}:{sub.locality or '-'}:{sub.language}")
            return content.ALREADY, {}
        sub.status, sub.pending_at = PENDING, now
        _record(s, sub, "asked", channel, "keyword", "person", now, version=content.CONSENT_VERSION,
                detail=f"{sub.audience}:{sub.locality or '-'}:{sub.language}")
        return content.CONSENT, {}
    if cmd.action == "confirm":
        if sub.status != PENDING or sub.pending_at is None or now - sub.pending_at > CONFIRM_WINDOW:
            return None                            # "có" answering something else: the bot's turn
        sub.status, sub.consent_at, sub.consent_version = SUBSCRIBED, now, content.CONSENT_VERSION
        sub.self_opted_in, sub.pending_at, sub.opted_out_at, sub.opt_out_reason = True, None, None, None
        sub.updated_at = now
        _record(s, sub, "opt_in", channel, "keyword", "person", now, version=content.CONSENT_VERSION)
        if contact.status == S.STOPPED and contact.stopped_reason in (STOPPED_BY_KEYWORD, "counsellor"):
            contact.status, contact.stopped_reason = S.ACTIVE, None
        return content.SUBSCRIBED, {}
    if cmd.action == "safe_hours":
        sub.safe_start, sub.safe_end, sub.updated_at = cmd.hours[0], cmd.hours[1], now
        _record(s, sub, "safe_hours", channel, "keyword", "person", now, detail=f"{cmd.hours[0]}-{cmd.hours[1]}")
        return content.SAFE_HOURS_SET, {"start": f"{cmd.hours[0]:02d}", "end": f"{cmd.hours[1]:02d}"}
    if cmd.action == "safe_clear":
        sub.safe_start = sub.safe_end = None
        sub.updated_at = now
        _record(s, sub, "safe_hours", channel, "keyword", "person", now, detail="cleared")
        return content.SAFE_HOURS_CLEARED, {}
    if cmd.action == "pause":
        sub.do_not_contact, sub.updated_at = True, now
        _record(s, sub, "dnc_on", channel, "keyword", "person", now)
        return content.PAUSED, {}
    if cmd.action == "resume":
        if not sub.do_not_contact:
            return None
        sub.do_not_contact, sub.updated_at = False, now
        _record(s, sub, "dnc_off", channel, "keyword", "person", now)
        return content.RESUMED, {}
    return None


def provider_opt_out(gw, contact_id: int, reason: str, now: Optional[float] = None) -> None:
    """The provider says the person refuses messages (Twilio 21610, Telegram blocked, Zalo
    unfollow): the same as HUY for campaigns. Called inside no transaction."""
    now = time.time() if now is None else now
    with transaction(gw.Session) as s:
        sub = s.execute(select(Subscriber).where(Subscriber.contact_id == contact_id)).scalar_one_or_none()
        if sub is None or sub.status == UNSUBSCRIBED:
            return
        contact = s.get(Contact, contact_id)
        _opt_out(s, sub, contact, contact.channel, "provider", "provider", reason, now)


def set_by_staff(gw, contact_id: int, actor: str, *, do_not_contact: Optional[bool] = None,
                 safe_hours: Optional[tuple] = None, opt_out: bool = False, now: Optional[float] = None) -> None:
    """A counsellor records what the person asked for on the phone or in the chat: do not
    contact, safe hours, or opt-out. A counsellor can never opt someone in."""
    now = time.time() if now is None else now
    with transaction(gw.Session) as s:
        contact = s.get(Contact, contact_id)
        sub = get_or_create(s, contact_id, gw.settings.locale, now)
        if do_not_contact is not None and bool(do_not_contact) != sub.do_not_contact:
            sub.do_not_contact = bool(do_not_contact)
            _record(s, sub, "dnc_on" if do_not_contact else "dnc_off", contact.channel, "counsellor", actor, now)
        if safe_hours is not None:
            if safe_hours == ():
                sub.safe_start = sub.safe_end = None
                _record(s, sub, "safe_hours", contact.channel, "counsellor", actor, now, detail="cleared")
            else:
                start, end = int(safe_hours[0]), int(safe_hours[1])
                if not (0 <= start <= 23 and 1 <= end <= 24 and start != end):
                    raise ValueError("safe hours are two hours 0-24, start before end")
                sub.safe_start, sub.safe_end = start, end
                _record(s, sub, "safe_hours", contact.channel, "counsellor", actor, now, detail=f"{start}-{end}")
        if opt_out and sub.status != UNSUBSCRIBED:
            _opt_out(s, sub, contact, contact.channel, "counsellor", actor, "counsellor", now)
        sub.updated_at = now


def in_safe_hours(sub_start: Optional[int], sub_end: Optional[int], local_hour: int) -> bool:
    """The person's own hours (may wrap midnight, e.g. 21-7); no hours set: always."""
    if sub_start is None or sub_end is None:
        return True
    if sub_start < sub_end:
        return sub_start <= local_hour < sub_end
    return local_hour >= sub_start or local_hour < sub_end
