"""Serious incidents: each case that reaches ``imminent`` risk is a serious incident, to be
reported to the department in charge within 10 days. The gateway records it when the case opens
(or its risk rises to imminent); supervisors draft the report (a DOCX with labels only: day,
former district, GBVIMS type, age group, sex, referrals, outcome) and mark it submitted. The
console lists them with their deadlines."""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import select

from webhook import events
from webhook.db import transaction
from webhook.models import Case, Conversation, IncidentReport
from webhook.stats.episodes import find_episode, local_day

DEADLINE_DAYS = 10
SERIOUS = ("imminent",)


def track(gw, case_id: int) -> bool:
    """Record a serious incident once (idempotent)."""
    with transaction(gw.Session) as s:
        if s.get(IncidentReport, case_id) is not None:
            return False
        case = s.get(Case, case_id)
        if case is None or case.risk not in SERIOUS:
            return False
        opened = local_day(case.created_at)
        s.add(IncidentReport(case_id=case_id, opened_day=opened, due_day=opened + dt.timedelta(days=DEADLINE_DAYS)))
        return True


@dataclass
class Incident:
    case_id: int
    opened_day: dt.date
    due_day: dt.date
    days_left: int
    drafted: bool
    submitted: bool


def pending(gw, today: Optional[dt.date] = None, include_submitted: bool = False) -> list[Incident]:
    today = today or local_day(time.time())
    with transaction(gw.Session) as s:
        q = select(IncidentReport).order_by(IncidentReport.due_day, IncidentReport.case_id)
        if not include_submitted:
            q = q.where(IncidentReport.submitted_at.is_(None))
        return [Incident(r.case_id, r.opened_day, r.due_day, (r.due_day - today).days, r.drafted_at is not None,
                         r.submitted_at is not None) for r in s.execute(q).scalars()]


def facts(gw, case_id: int) -> list[tuple[str, str]]:
    """The report's content: labels only, never text, an address or a time of day."""
    with transaction(gw.Session) as s:
        case = s.get(Case, case_id)
        rep = s.get(IncidentReport, case_id)
        conv = s.get(Conversation, case.conversation_id)
        ep = find_episode(s, case.conversation_id, case.created_at)
        return [("case", str(case.id)), ("opened (day)", rep.opened_day.isoformat()),
                ("report due", rep.due_day.isoformat()), ("channel", conv.channel), ("risk", case.risk),
                ("topic", case.topic or "—"), ("GBVIMS type", case.gbv_type or (ep.gbv_type if ep else "—")),
                ("former district", (ep.former_district if ep else None) or "—"),
                ("locality", case.locality or (ep.locality if ep else None) or "—"),
                ("age group", ep.age_group if ep else "unknown"), ("sex", ep.sex if ep else "unknown"),
                ("status", case.status), ("referrals", case.referrals or "—"), ("outcome", case.outcome or "—"),
                ("help received", case.help_received or "—")]


def draft(gw, case_id: int, actor: str, addressee: str) -> bytes:
    from webhook.stats.export import to_docx
    from webhook.stats.report import Table

    rows = facts(gw, case_id)
    with transaction(gw.Session) as s:
        rep = s.get(IncidentReport, case_id)
        rep.drafted_at = rep.drafted_at or time.time()
        events.record(s, "incident_drafted", actor, case_id)
    return to_docx(f"Báo cáo vụ việc nghiêm trọng — ca {case_id}", [
        f"Kính gửi: {addressee}", ("h", "Thông tin vụ việc (không có thông tin định danh)"),
        Table(title="", header=["", ""], rows=[list(r) for r in rows]),
        "Báo cáo chỉ gồm các nhãn thống kê. Nội dung tin nhắn và thông tin liên hệ không được đưa ra ngoài hệ thống.",
    ])


def submit(gw, case_id: int, actor: str) -> bool:
    with transaction(gw.Session) as s:
        rep = s.get(IncidentReport, case_id)
        if rep is None or rep.submitted_at is not None:
            return False
        rep.submitted_at, rep.submitted_by = time.time(), actor[:64]
        events.record(s, "incident_submitted", actor, case_id)
        return True
