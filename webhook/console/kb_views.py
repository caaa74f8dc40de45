"""The knowledge base in the console (supervisors and admins): every fact, number and place that
is unverified, marked wrong, due for review or kept for history, with its note and sources; the
counselling line's state (offered or not, and why); and the form to record a check ("checked by
phone on 2026-12-07: confirmed, hours mon-fri 07:30-17:00"). A check is audited and takes effect
within a minute in every process (webhook/kbstate.py); the files in data/kb/ stay the source
that reviewers change in git."""
from __future__ import annotations

import datetime as dt

from flask import g, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l

from bot.kb import check as K
from bot.kb import facts as F
from bot.kb import hours as H
from bot.kb.hours import TZ
from webhook.broadcast import content
from webhook.console.auth import require
from webhook.console.views import _error, _payload, console, gw
from webhook.kbstate import record_check

RESULTS = {"confirmed": _l("Confirmed (it answers / it is right)"), "wrong": _l("Wrong (changed, closed, other body)"),
           "no_answer": _l("No answer")}
LINE_REASONS = {"unset": _l("no counselling line is set in data/kb/services.yml"),
                "no_number": _l("the line has no number"), "expired": _l("the line is past its valid_until"),
                "not_yet": _l("the line is not in service yet"), "wrong": _l("the last check found it wrong or unanswered"),
                "unverified": _l("nobody has recorded a check yet"),
                "stale": _l("the last check is older than the limit (90 days)"),
                "no_hours": _l("its hours are not known"), "bad_hours": _l("its hours cannot be read")}
STATES = {"wrong": _l("found wrong"), "unverified": _l("unverified"), "stale": _l("due for review"),
          "expired": _l("kept for history"), "not_yet": _l("not yet in force"), "missing": _l("missing")}


@console.get("/kb")
@require("supervisor")
def kb_page():
    g_ = gw()
    today = dt.datetime.now(TZ).date()
    checks = g_.kb.checks()
    report = K.check(today, checks, K.domain_citations() + content.citations())
    rows = []
    for f in report.findings:
        item = f.item
        rows.append({"severity": f.severity, "state": f.state, "kind": item.kind if item else "",
                     "id": item.id if item else "", "label": item.label if item else f.message,
                     "message": f.message, "sources": list(item.sources) if item else [],
                     "cited_by": list(f.cited_by), "phone": bool(item and item.data.get("phone"))})
    order = {"error": 0, "warn": 1, "info": 2}
    rows.sort(key=lambda r: (order[r["severity"]], r["kind"] != "service", r["kind"], r["id"]))
    return render_template("console/kb.html", report=report, rows=rows, line=report.line, results=RESULTS,
                           states=STATES, today=today.isoformat(), line_reason=LINE_REASONS.get(report.line.code, report.line.reason),
                           line_hours=H.describe(report.line.hours) if report.line.hours else "")


@console.post("/kb/check")
@require("supervisor")
def kb_record_check():
    data = _payload()
    kind, item_id = str(data.get("kind") or ""), str(data.get("item_id") or "")
    result = str(data.get("result") or "")
    hours = str(data.get("hours") or "").strip()
    note = str(data.get("note") or "").strip()[:300]
    known = F.all_items()
    if (kind, item_id) not in known or result not in F.RESULTS:
        return _error(400, str(_l("Choose an item of the knowledge base and a result.")))
    try:
        day = dt.date.fromisoformat(str(data.get("checked_on") or ""))
    except ValueError:
        return _error(400, str(_l("The date must be written YYYY-MM-DD.")))
    if day > dt.datetime.now(TZ).date() or day.year < 2020:
        return _error(400, str(_l("The date of the check cannot be in the future.")))
    if hours:
        try:
            H.parse(hours)
        except H.HoursError:
            return _error(400, str(_l("Hours: write 24/7, or like mon-fri 07:30-11:30,13:30-17:00.")))
    record_check(gw(), kind, item_id, day, result, g.user.username, hours or None, note or None)
    return redirect(url_for("console.kb_page") + "#" + request.form.get("anchor", ""))
