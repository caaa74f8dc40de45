"""XOA: a person erases what the helpline holds about them (Decree 13/2023, the right to
deletion), after a confirmation.

    XOA / XÓA / XOA DU LIEU / DELETE ...  ->  asked (utter_delete_confirm_ask: "XOA again or CO")
    XOA or CÓ within 10 minutes           ->  the confirmation is sent, then everything is erased
    KHONG / anything else                 ->  cancelled (anything else then goes to the bot)

Erased, for every conversation of the contact: message bodies, reply bodies, counsellors' notes
on their cases, the contact's address (and its pseudonym and the conversations' Rasa sender ids,
which contain it, are replaced by random ones, so the same number writing again is a new contact
nobody can link to the old cases), their Rasa trackers, their subscription (unsubscribed, not-yet-sent campaign messages dropped) and their
follow-ups. Kept: the cases' machine facts (risk, topic, outcome: no text), the audit log, the
consent records (labels: they prove what was agreed) and the anonymised statistics. The request
itself is an ``erasures`` row with the counts. A supervisor can do the same for a person who asks
on the phone (``erase_contact(..., method="staff")``, from the case page).
"""
from __future__ import annotations

import logging
import secrets
import time
from typing import Optional

from sqlalchemy import select, update

from bot.nlu.commands import KEYWORDS
from bot.nlu.normalize import normalize
from webhook import events, replies
from webhook import states as S
from webhook.db import transaction
from webhook.models import (CampaignSend, Case, CaseNote, Contact, Conversation, Erasure, Message, Outbox,
                            Subscriber)

logger = logging.getLogger(__name__)

ASK_WINDOW = 600.0
ERASE = set(KEYWORDS["delete_data"]) | {"xoa", "xoa di", "xoa du lieu cua toi", "xoa het tin nhan", "erase"}
CONFIRM = {"co", "dong y", "ok", "yes", "xac nhan", "co xoa"}
ERASED = "erased"


def intercept(gw, conversation_id: int, text: str, now: Optional[float] = None):
    """None when the message is not part of an erasure; else ``(reply, erase)``: the reply to
    send and whether to erase once it is sent."""
    word = normalize(text or "").strip()
    now = time.time() if now is None else now
    with transaction(gw.Session) as s:
        contact_id = s.get(Conversation, conversation_id).contact_id
        pending = s.execute(select(Erasure).where(Erasure.contact_id == contact_id, Erasure.state == "asked",
                                                  Erasure.asked_at >= now - ASK_WINDOW)
                            .order_by(Erasure.id.desc()).limit(1)).scalar_one_or_none()
        if pending is not None:
            if word in ERASE or word in CONFIRM:
                return replies.text(replies.DELETED), True
            pending.state, pending.done_at = "cancelled", now
            if word in ("khong", "no", "huy", "thoi", "khong xoa", "giu lai"):
                return replies.text(replies.DELETE_CANCELLED), False
            return None                                   # something else: the bot answers it
        if word not in ERASE:
            return None
        s.add(Erasure(contact_id=contact_id, state="asked", asked_at=now, method="keyword", actor="person"))
    logger.info("erasure_asked conversation=%s", conversation_id)
    return replies.text(replies.DELETE_ASK), False


_Q = dict(synchronize_session=False)


def wipe_texts(s, conversation_ids: list) -> dict:
    """Blank what people and counsellors wrote in these conversations; the rows (states, times,
    machine facts) stay. Returns counts per kind."""
    if not conversation_ids:
        return {"messages": 0, "replies": 0, "notes": 0}
    ids = list(conversation_ids)
    return {
        "messages": s.execute(update(Message).where(Message.conversation_id.in_(ids), Message.body_enc.isnot(None))
                              .values(body_enc=None).execution_options(**_Q)).rowcount,
        "replies": s.execute(update(Outbox).where(Outbox.conversation_id.in_(ids), Outbox.body_enc != b"")
                             .values(body_enc=b"").execution_options(**_Q)).rowcount,
        "notes": s.execute(update(CaseNote).where(CaseNote.case_id.in_(
            select(Case.id).where(Case.conversation_id.in_(ids))), CaseNote.body_enc != b"")
            .values(body_enc=b"").execution_options(**_Q)).rowcount,
    }


def unlink(s, contact: Contact, convs: list, reason: str) -> None:
    """Forget the address and every id derived from it: the pseudonym and the conversations' Rasa
    sender ids (which contain it) become random, so the same number is a new contact."""
    for conv_id, _sender in convs:
        s.execute(update(Conversation).where(Conversation.id == conv_id)
                  .values(rasa_sender=f"{reason}-{conv_id}-{secrets.token_hex(8)}").execution_options(**_Q))
    contact.address_enc = b""
    contact.pseudonym = f"{reason}-{secrets.token_hex(12)}"
    contact.status, contact.stopped_reason, contact.reply_ref = S.STOPPED, reason, None


def erase_for_conversation(gw, conversation_id: int, actor: str = "person", method: str = "keyword") -> dict:
    with transaction(gw.Session) as s:
        contact_id = s.get(Conversation, conversation_id).contact_id
    return erase_contact(gw, contact_id, actor=actor, method=method)


def erase_contact(gw, contact_id: int, actor: str = "person", method: str = "keyword",
                  now: Optional[float] = None) -> dict:
    """Erase the contact's texts and address (see the module docstring); returns the counts."""
    from webhook.console.followup import cancel_for_contact

    now = time.time() if now is None else now
    with transaction(gw.Session) as s:
        contact = s.get(Contact, contact_id)
        convs = list(s.execute(select(Conversation.id, Conversation.rasa_sender)
                               .where(Conversation.contact_id == contact_id)).all())
        counts = wipe_texts(s, [c for c, _sender in convs])
        cancel_for_contact(s, contact_id, now)
        sub = s.execute(select(Subscriber).where(Subscriber.contact_id == contact_id)).scalar_one_or_none()
        if sub is not None:
            from webhook.models import ConsentRecord
            if sub.status != "unsubscribed":
                s.add(ConsentRecord(subscriber_id=sub.id, action="opt_out", at=now, channel=contact.channel,
                                    method=method, actor=actor, detail=ERASED))
            sub.status, sub.opted_out_at, sub.opt_out_reason, sub.updated_at = "unsubscribed", now, ERASED, now
            s.execute(update(CampaignSend).where(CampaignSend.subscriber_id == sub.id, CampaignSend.state == "planned")
                      .values(state="opted_out", reason=ERASED, updated_at=now).execution_options(**_Q))
        unlink(s, contact, convs, ERASED)
        s.execute(update(Erasure).where(Erasure.contact_id == contact_id, Erasure.state == "asked")
                  .values(state="done", done_at=now).execution_options(**_Q))
        summary = " ".join(f"{k}={v}" for k, v in counts.items())
        if method == "staff":
            s.add(Erasure(contact_id=contact_id, state="done", asked_at=now, done_at=now, method=method, actor=actor,
                          counts=summary))
        else:
            s.execute(update(Erasure).where(Erasure.contact_id == contact_id, Erasure.done_at == now)
                      .values(counts=summary).execution_options(**_Q))
        events.record(s, "erased", actor, None, f"contact={contact_id} {summary}", at=now)
    forgotten = sum(1 for _c, sender in convs if sender and gw.rasa.forget(sender))
    counts["rasa_trackers"] = forgotten
    logger.info("erasure_done contact=%s %s rasa_trackers=%s", contact_id, summary, forgotten)
    return counts
