"""The statistics pages of the console (supervisors and admins): indicators d and đ with their
trend, breakdowns, the table per former district, exports (CSV, XLSX, the yearly report as
DOCX) and serious-incident reports with their 10-day deadline. Everything shown is suppressed
(webhook/stats/suppress.py); every export is in the audit log."""
from __future__ import annotations

import datetime as dt

from flask import Response, g, jsonify, redirect, render_template, request, url_for

from webhook.console.auth import require
from webhook.console.views import _audit, console, gw
from webhook.stats import charts, export, incidents, report

BREAKDOWNS = ("gbv_type", "former_district", "age_group", "sex", "reporter", "relationship", "channel", "risk")
MIME = {"csv": "text/csv; charset=utf-8",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}


def _year() -> int:
    try:
        year = int(request.args.get("year") or dt.date.today().year)
    except ValueError:
        year = dt.date.today().year
    return min(max(year, 2021), 2100)


def _period() -> str:
    return request.args.get("period") if request.args.get("period") in ("month", "quarter") else "quarter"


def _by() -> str:
    return request.args.get("by") if request.args.get("by") in BREAKDOWNS else "gbv_type"


@console.get("/stats")
@require("supervisor")
def stats_page():
    year, period, by = _year(), _period(), _by()
    g_ = gw()
    _audit("view_stats", detail=f"year={year}")
    st = report.Stats(g_, year)              # the year's counts, read once per period kind for the page
    return render_template("console/stats.html", year=year, period=period, by=by, breakdowns=BREAKDOWNS,
                           indicators=report.indicator_table(g_, year, period, st),
                           breakdown=report.table(g_, year, by, st),
                           localities=report.locality_table(g_, year, st), incidents=incidents.pending(g_),
                           crossed=report.cross(g_, year, by, period, st),
                           report_to=g_.settings.report_to, plans=report.plans_text(year))


@console.get("/stats/chart/<kind>.svg")
@require("supervisor", touch=False)
def stats_chart(kind: str):
    year, g_ = _year(), gw()
    if kind == "trend":
        svg = charts.trend(report.indicator_table(g_, year, _period()), f"d / đ {year}", report.targets(year))
    elif kind == "breakdown":
        by = _by()
        svg = charts.bars(report.table(g_, year, by), f"{year}: {by}")
    else:
        return jsonify({"error": "unknown chart"}), 404
    return Response(svg, mimetype="image/svg+xml")


@console.get("/stats/export.<fmt>")
@require("supervisor")
def stats_export(fmt: str):
    year, g_ = _year(), gw()
    if fmt == "csv":
        body = export.to_csv(report.table(g_, year, _by()))
        name = f"helpline-{year}-{_by()}.csv"
    elif fmt == "xlsx":
        body = export.to_xlsx(report.yearly_tables(g_, year))
        name = f"helpline-{year}.xlsx"
    elif fmt == "docx":
        body = report.yearly_docx(g_, year)
        name = f"bao-cao-{year}.docx"
    else:
        return jsonify({"error": "format must be csv, xlsx or docx"}), 404
    _audit("export", detail=f"stats {fmt} year={year}")
    resp = Response(body, mimetype=MIME[fmt])
    resp.headers["Content-Disposition"] = f"attachment; filename={name}"
    return resp


@console.get("/stats/incidents/<int:case_id>.docx")
@require("supervisor")
def incident_draft(case_id: int):
    if not any(i.case_id == case_id for i in incidents.pending(gw(), include_submitted=True)):
        return jsonify({"error": "not a serious incident"}), 404
    body = incidents.draft(gw(), case_id, g.user.username, gw().settings.report_to)
    _audit("export", case_id, "incident report draft")
    resp = Response(body, mimetype=MIME["docx"])
    resp.headers["Content-Disposition"] = f"attachment; filename=vu-viec-{case_id}.docx"
    return resp


@console.post("/stats/incidents/<int:case_id>/submit")
@require("supervisor")
def incident_submit(case_id: int):
    if not incidents.submit(gw(), case_id, g.user.username):
        return jsonify({"error": "unknown or already submitted"}), 409
    return redirect(url_for("console.stats_page"))


# Table headers and dimension names reach the template as data: marked here for Babel.
from flask_babel import lazy_gettext as _l  # noqa: E402

WORDS = (_l("persons"), _l("survivors"), _l("sought help"), _l("d (per cent)"), _l("needed help"), _l("helped"), _l("đ (per cent)"),
         _l("quarter"), _l("month"), _l("total"), _l("former district"), _l("gbv_type"), _l("former_district"),
         _l("age_group"), _l("sex"), _l("reporter"), _l("relationship"), _l("channel"), _l("risk"), _l("year"))
