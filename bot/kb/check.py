"""`helpline kb check`: the verification state of the knowledge base, and the one error that
must stop a release: a reply that states as current a fact that has expired (or is not yet in
force), or names a fact or service that does not exist.

Everything else is reported, not failed: unverified facts and numbers (with their notes), facts
kept for history, items not checked for a year, places the provincial office has not filled in,
and the counselling line's state (offered or not, and why).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from bot.kb import KB, facts as F, line as L, places as P
from bot.kb import read_yaml
from bot.paths import DOMAIN

REVIEW_DAYS = 365


@dataclass(frozen=True)
class Citation:
    where: str                      # "utter_penalty_dv", "campaign:june_dv_month", …
    facts: tuple[str, ...] = ()
    history: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    text: str = ""
    topic: Optional[str] = None


@dataclass(frozen=True)
class Finding:
    severity: str                   # error | warn | info
    item: Optional[F.Item]
    state: str
    message: str
    cited_by: tuple[str, ...] = ()


@dataclass
class Report:
    today: dt.date
    line: L.LineState
    findings: list[Finding] = field(default_factory=list)
    counts: dict = field(default_factory=dict)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]


def domain_citations(domain: Path = DOMAIN) -> list[Citation]:
    """Every response variant of the Rasa domain with what its ``metadata`` cites."""
    out = []
    for path in sorted(domain.glob("*.yml")):
        for name, variants in (read_yaml(path).get("responses") or {}).items():
            for i, v in enumerate(variants or []):
                meta = v.get("metadata") or {}
                out.append(Citation(name if len(variants) == 1 else f"{name}[{i}]", tuple(meta.get("facts") or ()),
                                    tuple(meta.get("history") or ()), tuple(meta.get("services") or ()),
                                    v.get("text") or "", meta.get("topic")))
    return out


def check(today: Optional[dt.date] = None, checks: Optional[dict] = None, citations: Optional[Iterable[Citation]] = None,
          root: Path = KB, review_days: int = REVIEW_DAYS) -> Report:
    today = today or dt.date.today()
    facts, directory = F.facts(root / "legal_facts.yml"), F.directory(root / "services.yml")
    services, places = directory["items"], F.places(root / "places.csv")
    citations = list(citations if citations is not None else domain_citations())
    report = Report(today, L.state(today, checks, directory))
    cited: dict[tuple[str, str], list[str]] = {}
    for c in citations:
        for fid in c.facts:
            cited.setdefault(("fact", fid), []).append(c.where)
            item = facts.get(fid)
            if item is None:
                report.findings.append(Finding("error", None, "missing", f"{c.where} cites fact {fid!r}, which "
                                                                          "data/kb/legal_facts.yml does not hold"))
                continue
            st = F.status(item, today, checks)
            if st.state in ("expired", "not_yet"):
                when = item.valid_until if st.state == "expired" else item.valid_from
                succ = f"; its successor is {item.replaced_by}" if item.replaced_by else ""
                report.findings.append(Finding("error", item, st.state, f"{c.where} states {fid} as current, but it is "
                                               f"{'past valid_until' if st.state == 'expired' else 'not in force before'} "
                                               f"{when}{succ}", (c.where,)))
        for fid in c.history:
            cited.setdefault(("fact", fid), []).append(c.where)
            if fid not in facts:
                report.findings.append(Finding("error", None, "missing", f"{c.where} mentions fact {fid!r} as history, "
                                                                          "which data/kb/legal_facts.yml does not hold"))
        for sid in c.services:
            cited.setdefault(("service", sid), []).append(c.where)
            item = services.get(sid)
            if item is None:
                report.findings.append(Finding("error", None, "missing", f"{c.where} names service {sid!r}, which "
                                                                          "data/kb/services.yml does not hold"))
            elif F.status(item, today, checks).state == "expired":
                report.findings.append(Finding("error", item, "expired", f"{c.where} offers service {sid}, which is past "
                                                                          f"its valid_until {item.valid_until}", (c.where,)))
    groups = (("fact", facts), ("service", services), ("place", places))
    for kind, items in groups:
        n = {s: 0 for s in F.STATES}
        for item in items.values():
            st = F.status(item, today, checks, max_age_days=review_days)
            n[st.state] += 1
            by = tuple(cited.get((kind, item.id), ()))
            note = f" — {st.note}" if st.note else ""
            when = f" (checked {st.checked_on})" if st.checked_on else " (never checked)"
            if st.state == "expired":
                succ = f", replaced by {item.replaced_by}" if item.replaced_by else ""
                report.findings.append(Finding("info", item, st.state, f"kept for history: valid until "
                                                                      f"{item.valid_until}{succ}", by))
            elif st.state == "wrong":
                report.findings.append(Finding("warn", item, st.state, f"a check found it wrong{when}{note}", by))
            elif st.state == "unverified":
                report.findings.append(Finding("warn", item, st.state, f"unverified{when}{note}", by))
            elif st.state == "stale":
                report.findings.append(Finding("warn", item, st.state, f"due for review: last checked {st.checked_on}", by))
            elif st.state == "not_yet":
                report.findings.append(Finding("info", item, st.state, f"in force from {item.valid_from}", by))
        report.counts[kind] = n
    pl = P.load(root / "localities.yml")
    rows = [i.data for i in places.values()]
    covered = {(pl.unit_by_name(r.get("unit") or "") or P.Unit("", "", "", None, ())).id
               for r in rows if r.get("kind") == "peoples_committee" and r.get("address") and str(r.get("verified")) == "true"}
    report.counts["units"] = {"units": len(pl.units), "with_a_verified_peoples_committee_address": len(covered - {""})}
    return report


def format_report(report: Report, verbose: bool = True) -> str:
    lines = [f"Knowledge base on {report.today} (data/kb/)"]
    for kind, n in report.counts.items():
        if kind == "units":
            continue
        lines.append(f"  {kind}s: {sum(n.values())} — " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in n.items() if v))
    u = report.counts.get("units") or {}
    if u:
        lines.append(f"  commune-level units: {u['units']}; with a verified People's Committee address: "
                     f"{u['with_a_verified_peoples_committee_address']} (add the rest with `helpline kb import`)")
    ln = report.line
    offered = "offered when open" if ln.usable else "NOT offered"
    lines.append(f"Counselling line ({ln.service_id}): {ln.number or '-'} — {offered}: {ln.reason}"
                 + (f"; hours {ln.hours}" if ln.hours else "") + (f"; checked {ln.checked_on}" if ln.checked_on else ""))
    if not ln.usable:
        lines.append("  replies give 113, 115, 111 and the in-chat counsellor instead")
    errors = report.errors
    lines.append(f"Replies citing an expired, future or unknown fact: {len(errors)}")
    for f in errors:
        lines.append(f"  ERROR {f.message}")
    if verbose:
        for sev, title in (("warn", "Needs checking"), ("info", "History and future")):
            group = [f for f in report.findings if f.severity == sev]
            if not group:
                continue
            lines.append(f"{title}: {len(group)}")
            for f in group:
                label = f"{f.item.kind} {f.item.id}" if f.item else ""
                cited = f" [cited by {', '.join(f.cited_by[:4])}{'…' if len(f.cited_by) > 4 else ''}]" if f.cited_by else ""
                lines.append(f"  {f.state:<10} {label}: {f.message}{cited}")
    return "\n".join(lines)
