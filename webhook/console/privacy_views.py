"""A person's rights over their data (Personal Data Protection Law 91/2025/QH15, Art. 4; Decree
356/2025/NĐ-CP, Art. 5), exercised through a supervisor: a copy of everything the helpline holds
about them, and erasure (what XOA does), for someone who asks on the phone, in person or by
writing XEM DU LIEU (webhook/data_requests.py: answer within 2 working days, the copy within 10
days). Everything is audited; the copy is made only on request and never kept."""
from __future__ import annotations

import json
import time

from flask import Response, g, jsonify, redirect, request, url_for
from sqlalchemy import select

from webhook.console.auth import require
from webhook.console.views import _audit, _load_case, console, gw
from webhook.db import transaction
from webhook.models import (Case, CaseNote, ConsentRecord, Contact, Conversation, Followup, Message, Outbox,
                            Subscriber)


def person_data(g_, contact_id: int) -> dict:
    """Everything held about one contact, readable (decrypted), for the person."""
    v = g_.vault
    with transaction(g_.Session) as s:
        contact = s.get(Contact, contact_id)
        convs = list(s.execute(select(Conversation).where(Conversation.contact_id == contact_id)
                               .order_by(Conversation.id)).scalars())
        out = {"made_at": time.strftime("%Y-%m-%d %H:%M", time.localtime()), "channel": contact.channel,
               "address": v.open(contact.address_enc) if contact.address_enc else None,
               "status": contact.status, "conversations": []}
        for c in convs:
            msgs = [{"at": m.received_at, "from": "person", "text": v.open(m.body_enc) if m.body_enc else None}
                    for m in s.execute(select(Message).where(Message.conversation_id == c.id)).scalars()]
            msgs += [{"at": o.created_at, "from": o.kind, "text": v.open(o.body_enc) if o.body_enc else None}
                     for o in s.execute(select(Outbox).where(Outbox.conversation_id == c.id)).scalars()]
            cases = []
            for case in s.execute(select(Case).where(Case.conversation_id == c.id)).scalars():
                cases.append({"id": case.id, "opened": case.created_at, "risk": case.risk, "topic": case.topic,
                              "status": case.status, "outcome": case.outcome, "referrals": case.referrals,
                              "help_received": case.help_received,
                              "notes": [v.open(n.body_enc) if n.body_enc else None for n in s.execute(
                                  select(CaseNote).where(CaseNote.case_id == case.id)).scalars()],
                              "followups": [{"due": f.due_at, "state": f.state} for f in s.execute(
                                  select(Followup).where(Followup.case_id == case.id)).scalars()]})
            out["conversations"].append({"started": c.created_at, "messages": sorted(msgs, key=lambda m: m["at"]),
                                         "cases": cases})
        sub = s.execute(select(Subscriber).where(Subscriber.contact_id == contact_id)).scalar_one_or_none()
        if sub is not None:
            out["campaign_messages"] = {
                "status": sub.status, "audience": sub.audience, "locality": sub.locality, "language": sub.language,
                "safe_hours": [sub.safe_start, sub.safe_end] if sub.safe_start is not None else None,
                "do_not_contact": sub.do_not_contact,
                "consent_records": [{"action": r.action, "at": r.at, "channel": r.channel, "version": r.version,
                                     "method": r.method} for r in s.execute(
                    select(ConsentRecord).where(ConsentRecord.subscriber_id == sub.id)
                    .order_by(ConsentRecord.id)).scalars()]}
    return out


def _contact_of(case_id: int) -> int:
    with transaction(gw().Session) as s:
        case = _load_case(s, case_id)
        return s.get(Conversation, case.conversation_id).contact_id


@console.get("/cases/<int:case_id>/person-data.json")
@require("supervisor")
def person_data_export(case_id: int):
    data = person_data(gw(), _contact_of(case_id))
    _audit("export", case_id, "person data (their request)")
    resp = Response(json.dumps(data, ensure_ascii=False, indent=1), mimetype="application/json")
    resp.headers["Content-Disposition"] = f"attachment; filename=du-lieu-ca-{case_id}.json"
    resp.headers["Cache-Control"] = "no-store"
    return resp


@console.post("/cases/<int:case_id>/erase")
@require("supervisor")
def person_erase(case_id: int):
    from webhook.erasure import erase_contact

    counts = erase_contact(gw(), _contact_of(case_id), actor=g.user.username, method="staff")
    _audit("erased", case_id, " ".join(f"{k}={v}" for k, v in counts.items()))
    return redirect(url_for("console.case_page", case_id=case_id))


@console.post("/cases/<int:case_id>/data-request")
@require("supervisor")
def data_request_mark(case_id: int):
    from webhook.data_requests import for_case, mark

    req = for_case(gw(), case_id)
    state = request.form.get("state", "")
    if req is None or str(req.id) != request.form.get("request_id") or not mark(gw(), req.id, state, g.user.username):
        return jsonify({"error": "no such open request"}), 400
    return redirect(url_for("console.case_page", case_id=case_id))
