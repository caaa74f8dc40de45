"""Retention: what people wrote, and their addresses, are kept only as long as needed.

``purge`` (the worker runs it every hour; ``helpline purge`` by hand, ``--dry-run`` to count):
- the texts of a conversation (messages, replies, counsellors' notes) are blanked
  ``HELPLINE_RETENTION_DAYS`` (90) days after its last case closed, or after its last message when
  it never had a case, and never while a case is open or claimed;
- a contact's address is forgotten (as XOA does: pseudonym and Rasa sender ids replaced by random
  ones, Rasa's trackers emptied) once every one of its conversations is past that point and the
  person has not written for as long, unless they receive campaign messages (they asked us to keep
  their contact until they write HUY; docs/broadcasts.md).
Kept: the cases' machine facts, the audit log, consent records and the anonymised statistics.
"""
from __future__ import annotations

import logging
import time
from typing import Optional

from sqlalchemy import and_, func, or_, select

from webhook import events
from webhook.db import transaction
from webhook.erasure import unlink, wipe_texts
from webhook.models import Case, Contact, Conversation, Message, Subscriber

logger = logging.getLogger(__name__)
PURGED = "purged"
EVERY = 3600.0


def due_conversations(s, cutoff: float) -> list[int]:
    """Conversations with no open case, whose last case closed and last message came before
    ``cutoff``, that still hold text."""
    last_msg = (select(Message.conversation_id, func.max(Message.received_at).label("at"))
                .group_by(Message.conversation_id).subquery())
    open_case = select(Case.id).where(Case.conversation_id == Conversation.id,
                                      Case.status.in_(["open", "claimed"])).exists()
    late_case = select(Case.id).where(Case.conversation_id == Conversation.id,
                                      func.coalesce(Case.resolved_at, Case.updated_at) >= cutoff).exists()
    has_text = select(Message.id).where(Message.conversation_id == Conversation.id,
                                        Message.body_enc.isnot(None)).exists()
    rows = s.execute(select(Conversation.id).outerjoin(last_msg, last_msg.c.conversation_id == Conversation.id)
                     .where(~open_case, ~late_case, or_(last_msg.c.at.is_(None), last_msg.c.at < cutoff),
                            Conversation.updated_at < cutoff, has_text)
                     .order_by(Conversation.id)).all()
    return [r[0] for r in rows]


def purge(gw, days: Optional[float] = None, now: Optional[float] = None, dry_run: bool = False) -> dict:
    days = gw.settings.retention_days if days is None else days
    now = time.time() if now is None else now
    cutoff = now - days * 86400
    out = {"conversations": 0, "messages": 0, "replies": 0, "notes": 0, "addresses": 0}
    forget: list[str] = []
    with transaction(gw.Session) as s:
        convs = due_conversations(s, cutoff)
        out["conversations"] = len(convs)
        if convs and not dry_run:
            for key, n in wipe_texts(s, convs).items():
                out[key] += n
        # contacts: every conversation past retention, quiet for as long, not a campaign subscriber
        subscribed = select(Subscriber.id).where(Subscriber.contact_id == Contact.id,
                                                 Subscriber.status.in_(["subscribed", "pending"])).exists()
        recent = select(Conversation.id).where(Conversation.contact_id == Contact.id, or_(
            Conversation.updated_at >= cutoff,
            select(Case.id).where(Case.conversation_id == Conversation.id,
                                  or_(Case.status.in_(["open", "claimed"]),
                                      func.coalesce(Case.resolved_at, Case.updated_at) >= cutoff)).exists())).exists()
        contacts = list(s.execute(select(Contact).where(
            and_(Contact.address_enc != b"", or_(Contact.last_inbound_at.is_(None), Contact.last_inbound_at < cutoff),
                 Contact.created_at < cutoff, ~subscribed, ~recent))).scalars())
        out["addresses"] = len(contacts)
        if not dry_run:
            for contact in contacts:
                conv_rows = list(s.execute(select(Conversation.id, Conversation.rasa_sender)
                                           .where(Conversation.contact_id == contact.id)).all())
                forget += [sender for _c, sender in conv_rows if sender]
                unlink(s, contact, conv_rows, PURGED)
            if any(out.values()):
                events.record(s, "purged", events.SYSTEM, None,
                              " ".join(f"{k}={v}" for k, v in out.items()) + f" days={days:g}", at=now)
    for sender in forget:
        gw.rasa.forget(sender)
    if any(out.values()):
        logger.info("retention_purge %s", " ".join(f"{k}={v}" for k, v in out.items()))
    return out


class Scheduler:
    """Run ``purge`` at most once per ``EVERY`` seconds from the worker's sweep."""

    def __init__(self):
        self.last = 0.0

    def maybe(self, gw, now: Optional[float] = None) -> Optional[dict]:
        now = time.time() if now is None else now
        if now - self.last < EVERY or gw.settings.retention_days <= 0:
            return None
        self.last = now
        try:
            return purge(gw, now=now)
        except Exception as exc:           # never stop the worker; tried again next hour
            logger.warning("retention_purge_failed error=%s", type(exc).__name__)
            return None
