"""Campaign pages of the console (supervisors and admins): the action-month calendar, the
campaigns with their state, a new campaign, its preview per channel (the text as sent, recipients,
SMS segments and cost), approve (another supervisor), schedule, pause, resume, cancel, and the
delivery report updating while it sends. Counsellors set a person's contact preferences (do not
contact, safe hours, opt-out) from the case page. Recipients are never listed: counts only."""
from __future__ import annotations

import datetime as dt

from flask import g, jsonify, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l

from webhook.broadcast import calendar, campaigns as C, content
from webhook.console.auth import require
from webhook.console.views import _audit, _load_case, console, gw
from webhook.db import transaction
from webhook.hours import TZ
from webhook.models import Conversation, Subscriber

STATE_LABELS = {C.DRAFT: _l("draft"), C.APPROVED: _l("approved"), C.SCHEDULED: _l("scheduled"),
                C.RUNNING: _l("sending"), C.PAUSED: _l("paused"), C.DONE: _l("done"), C.CANCELLED: _l("cancelled")}
SUBSCRIPTION_LABELS = (_l("none"), _l("pending"), _l("subscribed"), _l("unsubscribed"))   # for Babel
SEND_LABELS = {"planned": _l("queued"), "sending": _l("sending"), "sent": _l("sent"), "delivered": _l("delivered"),
               "failed": _l("failed"), "skipped": _l("skipped"), "opted_out": _l("opted out during the campaign"),
               "unknown": _l("unknown (worker stopped during the call)")}


@console.get("/campaigns")
@require("supervisor")
def campaigns_page():
    today = dt.datetime.now(TZ).date()
    return render_template("console/campaigns.html", campaigns=C.listing(gw()), labels=STATE_LABELS,
                           upcoming=calendar.upcoming(today), contents=sorted(content.MESSAGES),
                           occasions=calendar.OCCASIONS, from_msgid=content.text)


@console.post("/campaigns")
@require("supervisor")
def campaign_create():
    f = request.form
    try:
        cid = C.create(gw(), g.user.username, f.get("name", ""), f.get("content", ""), audience=f.get("audience", "all"),
                       locality=f.get("locality") or None, language=f.get("language") or None,
                       channels=f.getlist("channels") or None)
    except C.CampaignError as exc:
        return redirect(url_for("console.campaigns_page", error=str(exc)))
    return redirect(url_for("console.campaign_page", campaign_id=cid))


@console.get("/campaigns/<int:campaign_id>")
@require("supervisor")
def campaign_page(campaign_id: int):
    try:
        preview = C.preview(gw(), campaign_id)
        report = C.report(gw(), campaign_id)
    except C.CampaignError:
        return jsonify({"error": "no such campaign"}), 404
    campaign = C.get(gw(), campaign_id)
    start = dt.datetime.fromtimestamp(campaign.start_at, TZ).strftime("%Y-%m-%d %H:%M") if campaign.start_at else ""
    return render_template("console/campaign.html", c=campaign, p=preview, r=report, labels=STATE_LABELS,
                           send_labels=SEND_LABELS, start=start, default_start=dt.datetime.now(TZ).strftime("%Y-%m-%dT%H:%M"))


@console.get("/campaigns/<int:campaign_id>/report")
@require("supervisor", touch=False)
def campaign_report(campaign_id: int):
    try:
        return jsonify(C.report(gw(), campaign_id))
    except C.CampaignError:
        return jsonify({"error": "no such campaign"}), 404


@console.post("/campaigns/<int:campaign_id>/<action>")
@require("supervisor")
def campaign_action(campaign_id: int, action: str):
    g_, user = gw(), g.user.username
    try:
        if action == "approve":
            C.approve(g_, campaign_id, user)
        elif action == "schedule":
            raw = request.form.get("start", "").strip()
            start = dt.datetime.strptime(raw, "%Y-%m-%dT%H:%M").replace(tzinfo=TZ).timestamp() if raw else None
            C.schedule(g_, campaign_id, user, start)
        elif action == "pause":
            C.pause(g_, campaign_id, user)
        elif action == "resume":
            C.resume(g_, campaign_id, user)
        elif action == "cancel":
            C.cancel(g_, campaign_id, user)
        else:
            return jsonify({"error": "unknown action"}), 404
    except (C.CampaignError, ValueError) as exc:
        return redirect(url_for("console.campaign_page", campaign_id=campaign_id, error=str(exc)))
    return redirect(url_for("console.campaign_page", campaign_id=campaign_id))


# --- a person's contact preferences, from their case ----------------------------------------------------

@console.post("/cases/<int:case_id>/contact")
@require("counsellor")
def case_contact_preferences(case_id: int):
    """Do not contact, safe hours or opt-out, as the person asked (a counsellor never opts anyone in)."""
    from webhook.broadcast.subscribers import set_by_staff

    g_ = gw()
    with transaction(g_.Session) as s:
        case = _load_case(s, case_id)
        contact_id = s.get(Conversation, case.conversation_id).contact_id
    f = request.form
    hours = None
    if f.get("safe_hours") is not None:
        raw = f.get("safe_hours", "").strip()
        if raw:
            start, _sep, end = raw.partition("-")
            try:
                hours = (int(start), int(end))
            except ValueError:
                return redirect(url_for("console.case_page", case_id=case_id, error=str(_l("Safe hours look like 19-21"))))
        else:
            hours = ()
    try:
        set_by_staff(g_, contact_id, g.user.username, do_not_contact=f.get("do_not_contact") == "on",
                     safe_hours=hours, opt_out=f.get("opt_out") == "on")
    except ValueError as exc:
        return redirect(url_for("console.case_page", case_id=case_id, error=str(exc)))
    _audit("contact_preferences", case_id, "do_not_contact/safe_hours/opt_out")
    return redirect(url_for("console.case_page", case_id=case_id))


def contact_preferences(s, conversation_id: int):
    """What the case page shows about the person's campaign subscription and preferences."""
    contact_id = s.get(Conversation, conversation_id).contact_id
    from sqlalchemy import select
    return s.execute(select(Subscriber).where(Subscriber.contact_id == contact_id)).scalar_one_or_none()
