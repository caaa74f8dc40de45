"""Routes of the console. Pages are server-rendered (Jinja, Babel); actions are small JSON POSTs
from static/console.js with the CSRF token in a header; the queue and an open case update live
through one server-sent-events stream (``/console/events``)."""
from __future__ import annotations

import csv
import io
import json
import secrets
import time
from typing import Optional

import yaml
from flask import (Blueprint, Response, abort, g, jsonify, make_response, redirect, render_template, request,
                   stream_with_context, url_for)
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from bot.paths import ROOT
from webhook import events, queue
from webhook.console import auth
from webhook.console.auth import COOKIE, require
from webhook.console.followup import parse_hours, schedule
from webhook.db import transaction
from webhook.models import CannedResponse, Case, CaseNote, Contact, Conversation, Event, Followup, Message, Outbox, Staff
from webhook.privacy import mask

console = Blueprint("console", __name__, url_prefix="/console")

RISK_LABELS = {"imminent": _l("Imminent danger"), "high": _l("High risk"), "medium": _l("Medium"),
               "low": _l("Low"), "none": _l("None")}
TOPICS = {"help_contact": _l("Hotlines and where to go"), "domestic_violence": _l("Domestic violence"),
          "sexual_violence": _l("Sexual violence"), "sexual_harassment": _l("Sexual harassment"),
          "child_abuse": _l("Child abuse"), "school_violence": _l("School violence"),
          "online_violence": _l("Online violence"), "forced_marriage_trafficking": _l("Forced marriage, trafficking"),
          "legal_aid": _l("Legal aid"), "shelter": _l("Shelter"), "health_support": _l("Health support"),
          "emergency": _l("Emergency"), "self_harm": _l("Suicide or self-harm"),
          "request_counselor": _l("Asked for a counsellor"), "service_command": _l("Service command"),
          "chitchat": _l("Small talk"), "out_of_scope": _l("Out of scope")}
REFERRALS = {"police": _l("Police"), "health": _l("Health facility"), "legal_aid": _l("Legal aid"),
             "shelter": _l("Shelter or trusted address"), "social_work": _l("Social work"),
             "school": _l("School"), "child_111": _l("Hotline 111 (children; trafficking)")}
OUTCOMES = {"supported": _l("Supported (counselling given)"), "referred": _l("Referred to services"),
            "no_response": _l("The person stopped answering"), "not_needed": _l("No help needed"),
            "duplicate": _l("Duplicate of another case")}
HELP = {"yes": _l("Yes"), "no": _l("No"), "unknown": _l("Not known yet")}
# GBVIMS core types (the counsellor's classification replaces the rules' guess in the statistics)
GBV_TYPES = {"rape": _l("Rape"), "sexual_assault": _l("Sexual assault"), "physical_assault": _l("Physical assault"),
             "forced_marriage": _l("Forced marriage"), "denial_of_resources": _l("Denial of resources, opportunities or services"),
             "psychological_abuse": _l("Psychological or emotional abuse"), "non_gbv": _l("Not GBV")}
CONSENT = {"yes": _l("Agreed"), "no": _l("Refused"), "not_asked": _l("Not asked")}
OUTBOX_STATES = {"queued": _l("queued"), "sending": _l("sending"), "sent": _l("sent"), "delivered": _l("delivered"),
                 "failed": _l("failed"), "undeliverable": _l("could not be delivered")}
FEED_POLL_SECONDS = 0.5          # other processes' events are seen within this
FEED_KEEPALIVE_SECONDS = 10.0   # also how soon a closed browser's stream is noticed
FEED_SESSION_CHECK_SECONDS = 5.0  # an expired or revoked login ends the stream within this
FEED_GAP_SECONDS = 2.0           # how long the feed waits for an id missing below one it has sent
VIEW_AUDIT_EVERY = 300.0         # the transcript's live refresh is one audited view per 5 minutes
MAX_TEXT = 2000


def gw():
    from webhook.app import gateway

    return gateway()


def _error(status: int, message: str):
    return jsonify({"error": message}), status


def _payload() -> dict:
    data = request.get_json(silent=True)
    if isinstance(data, dict):
        return data
    return {k: (request.form.getlist(k) if k.endswith("[]") else v) for k, v in request.form.items()}


def _audit(action: str, case_id: Optional[int] = None, detail: Optional[str] = None) -> None:
    with transaction(gw().Session) as s:
        events.record(s, action, g.user.username, case_id, detail)


# --- login ---------------------------------------------------------------------------------------

@console.get("/login")
def login_page():
    token = secrets.token_urlsafe(24)
    resp = make_response(render_template("console/login.html", login_csrf=token, error=None,
                                         next=_safe_next(request.args.get("next"))))
    _cookie(resp, "hl_login", token, max_age=900)
    return resp


@console.post("/login")
def login_submit():
    given, expected = request.form.get("csrf", ""), request.cookies.get("hl_login", "")
    if not expected or not secrets.compare_digest(given, expected):
        return _error(403, "bad or missing CSRF token")
    token = auth.login(gw(), request.form.get("username", ""), request.form.get("password", ""))
    if token is None:
        fresh = secrets.token_urlsafe(24)
        resp = make_response(render_template("console/login.html", login_csrf=fresh, next=request.form.get("next"),
                                             error=_l("Wrong user name or password, or the account is locked.")), 401)
        _cookie(resp, "hl_login", fresh, max_age=900)
        return resp
    resp = redirect(_safe_next(request.form.get("next")) or url_for("console.queue_page"))
    _cookie(resp, COOKIE, token)
    resp.delete_cookie("hl_login", path="/console")
    return resp


def _safe_next(target: Optional[str]) -> Optional[str]:
    # only our own pages: never an open redirect
    return target if target and target.startswith("/console/") and "//" not in target and "\\" not in target else None


def _cookie(resp, name: str, value: str, max_age: Optional[int] = None) -> None:
    resp.set_cookie(name, value, max_age=max_age, path="/console", httponly=True, samesite="Strict",
                    secure=gw().settings.public_url.startswith("https://"))


@console.post("/logout")
@require()
def logout():
    auth.logout(gw(), g.user)
    resp = redirect(url_for("console.login_page"))
    resp.delete_cookie(COOKIE, path="/console")
    return resp


@console.get("/lang/<code>")
@require()
def set_language(code: str):
    resp = redirect(_safe_next(request.args.get("next")) or url_for("console.queue_page"))
    if code in ("vi", "en"):
        resp.set_cookie("hl_lang", code, path="/console", samesite="Strict", max_age=365 * 86400)
    return resp


# --- queue ---------------------------------------------------------------------------------------

@console.get("/")
@require()
def queue_page():
    return render_template("console/queue.html", data=_queue_data())


@console.get("/api/queue")
@require(touch=False)
def queue_api():
    return jsonify(_queue_data())


def _queue_data() -> dict:
    now = time.time()
    g_ = gw()
    after = g_.settings.alert_after
    with transaction(g_.Session) as s:
        rows = s.execute(select(Case, Conversation.channel).join(Conversation, Conversation.id == Case.conversation_id)
                         .where(Case.status.in_([queue.OPEN, queue.CLAIMED]))
                         .order_by(Case.priority, Case.created_at, Case.id).limit(500)).all()
        feed_from = events.last_id(s)
    waiting, mine, others = [], [], []
    for case, channel in rows:
        item = _case_item(case, channel, now, after)
        if case.status == queue.OPEN:
            waiting.append(item)
        elif case.claimed_by == g.user.username:
            mine.append(item)
        else:
            others.append(item)
    return {"waiting": waiting, "mine": mine, "others": others if g.user.can("supervisor") else [],
            "others_count": len(others), "feed_from": feed_from, "now": now,
            "alerts": [c for c in waiting if c["overdue"]]}


def _case_item(case: Case, channel: str, now: float, after: dict) -> dict:
    limit = after.get(case.risk)
    return {"id": case.id, "risk": case.risk, "risk_label": str(RISK_LABELS.get(case.risk, case.risk)),
            "requested": bool(case.requested), "topic": case.topic,
            "topic_label": str(TOPICS.get(case.topic, case.topic or "—")), "channel": channel, "locality": case.locality,
            "summary": case.summary, "status": case.status, "claimed_by": case.claimed_by,
            "waiting_s": int(now - case.created_at), "created_at": case.created_at,
            "overdue": case.status == queue.OPEN and limit is not None and now - case.created_at >= limit}


@console.post("/api/cases/<int:case_id>/claim")
@require()
def claim(case_id: int):
    if not queue.claim(gw(), case_id, g.user.username):
        return _error(409, str(_l("Someone else took this case, or it is closed.")))
    return jsonify({"case_id": case_id, "url": url_for("console.case_page", case_id=case_id)})


@console.post("/api/next")
@require()
def take_next():
    case_id = queue.claim_next(gw(), g.user.username)
    if case_id is None:
        return _error(404, str(_l("The queue is empty.")))
    return jsonify({"case_id": case_id, "url": url_for("console.case_page", case_id=case_id)})


# --- the live feed -------------------------------------------------------------------------------

@console.get("/events")
@require(touch=False)
def feed():
    """Server-sent events: every queue/case change after ``Last-Event-ID`` (or ``?after=``).
    The stream re-checks the login every few seconds and ends when it expired."""
    g_, user = gw(), g.user
    try:
        after = int(request.headers.get("Last-Event-ID") or request.args.get("after") or 0)
    except ValueError:
        return _error(400, "after must be a number")
    token = request.cookies.get(COOKIE)

    def stream():
        nonlocal after
        last_send = last_check = time.monotonic()
        done: set[int] = set()           # ids above `after` already handled (sent, or not for the feed)
        holes: dict[int, float] = {}     # ids missing above `after`, and since when
        yield "retry: 2000\n\n"
        while True:
            seen = events.generation()
            with transaction(g_.Session) as s:
                rows = [(e.id, e.action, e.case_id, e.actor, e.detail, e.at)
                        for e in events.since(s, after, limit=500, actions=None) if e.id not in done]
            for eid, action, case_id, actor, detail, at in rows:
                done.add(eid)
                if action not in events.FEED:
                    continue
                data = {"id": eid, "action": action, "case_id": case_id, "actor": actor, "at": at}
                if action in ("opened", "raised", "alert"):
                    data["detail"] = detail
                # the SSE id is the cursor (all ids up to it were handled), so a reconnecting
                # browser resumes below any event still committing; a repeat is harmless
                yield f"id: {after}\nevent: case\ndata: {json.dumps(data)}\n\n"
                last_send = time.monotonic()
            # An id is taken when the row is inserted, but transactions commit in any order
            # (PostgreSQL): an id missing below one already sent may still be committing. The
            # cursor stops at the first hole until it fills, or FEED_GAP_SECONDS pass (rolled back).
            now = time.monotonic()
            top = max(done, default=after)
            while after < top:
                if after + 1 in done:
                    done.discard(after + 1)
                elif now - holes.setdefault(after + 1, now) < FEED_GAP_SECONDS:
                    break
                holes.pop(after + 1, None)
                after += 1
            if time.monotonic() - last_send > FEED_KEEPALIVE_SECONDS:
                yield ": keep-alive\n\n"
                last_send = time.monotonic()
            if time.monotonic() - last_check > FEED_SESSION_CHECK_SECONDS:
                last_check = time.monotonic()
                if auth.session_user(g_, token, touch=False) is None:
                    yield "event: logout\ndata: {}\n\n"
                    return
            if not rows:
                events.wait(seen, FEED_POLL_SECONDS)

    resp = Response(stream_with_context(stream()), mimetype="text/event-stream")
    resp.headers["X-Accel-Buffering"] = "no"
    return resp


# --- a case --------------------------------------------------------------------------------------

def _load_case(s, case_id: int) -> Case:
    case = s.get(Case, case_id)
    if case is None:
        abort(404)
    return case


def _may_act(case: Case) -> bool:
    return case.status == queue.CLAIMED and (case.claimed_by == g.user.username or g.user.can("supervisor"))


@console.get("/cases/<int:case_id>")
@require()
def case_page(case_id: int):
    g_ = gw()
    now = time.time()
    with transaction(g_.Session) as s:
        case = _load_case(s, case_id)
        conv = s.get(Conversation, case.conversation_id)
        contact = s.get(Contact, conv.contact_id)
        address = g_.vault.open(contact.address_enc)
        info = _case_item(case, conv.channel, now, g_.settings.alert_after)
        info.update({"masked": mask(address) if conv.channel != "web" else str(_l("web chat session")),
                     "referrals": (case.referrals or "").split(",") if case.referrals else [],
                     "outcome": case.outcome, "help_received": case.help_received,
                     "claimed_by": case.claimed_by, "contact_status": contact.status,
                     "mode": conv.mode, "may_act": _may_act(case),
                     "followups": [{"due_at": f.due_at, "state": f.state, "answer": f.answer,
                                    "hours": f"{f.safe_from}-{f.safe_to}"} for f in s.execute(
                         select(Followup).where(Followup.case_id == case_id).order_by(Followup.id)).scalars()]})
        from webhook.console.broadcast_views import contact_preferences
        sub = contact_preferences(s, case.conversation_id)
        info["prefs"] = {"subscription": sub.status if sub else "none", "do_not_contact": bool(sub and sub.do_not_contact),
                         "safe_hours": f"{sub.safe_start}-{sub.safe_end}" if sub and sub.safe_start is not None else ""}
        events.record(s, "view", g.user.username, case_id, "case page")
        feed_from = events.last_id(s)
    info["data_request"] = _data_request(g_, case_id, now)
    with transaction(g_.Session) as s:
        canned = [{"id": c.id, "title": c.title, "body": g_.kb.render(c.body)} for c in s.execute(
            select(CannedResponse).order_by(CannedResponse.id)).scalars()]
    staff = [u for u in auth.active_staff(g_) if u[0] != info["claimed_by"]]
    return render_template("console/case.html", case=info, feed_from=feed_from, canned=canned, staff=staff, referrals=REFERRALS,
                           outcomes=OUTCOMES, help=HELP, gbv_types=GBV_TYPES, consent=CONSENT, reveal=g.user.role in _reveal_roles(),
                           followup_days=g_.settings.followup_days, followup_hours=g_.settings.followup_hours)


def _data_request(g_, case_id: int, now: float) -> Optional[dict]:
    from webhook.data_requests import for_case

    req = for_case(g_, case_id)
    if req is None or req.state == "cancelled":
        return None
    day = lambda t: time.strftime("%d/%m/%Y %H:%M", time.localtime(t))      # noqa: E731
    return {"id": req.id, "state": req.state, "reply_due": day(req.reply_due), "due": day(req.due),
            "reply_late": req.state == "open" and now > req.reply_due, "late": req.state != "done" and now > req.due}


@console.get("/api/cases/<int:case_id>/transcript")
@require(touch=False)
def transcript(case_id: int):
    """Messages in and out (decrypted here, for this view only), notes and the case's timeline."""
    g_ = gw()
    v = g_.vault
    with transaction(g_.Session) as s:
        case = _load_case(s, case_id)
        conv_id = case.conversation_id
        items = []
        for m in s.execute(select(Message).where(Message.conversation_id == conv_id).order_by(Message.id)).scalars():
            text = v.open(m.body_enc) if m.kind == "text" else None
            items.append({"at": m.received_at, "who": "person", "kind": m.kind,
                          "text": text if text is not None else f"[{m.kind}]", "risk": m.risk})
        for o in s.execute(select(Outbox).where(Outbox.conversation_id == conv_id).order_by(Outbox.id)).scalars():
            items.append({"at": o.created_at, "who": o.kind, "text": v.open(o.body_enc) or "", "id": o.id,
                          "state": o.state, "state_label": str(OUTBOX_STATES.get(o.state, o.state)),
                          "error": o.error_code})
        items.sort(key=lambda i: (i["at"], i["who"] != "person"))
        notes = [{"at": n.created_at, "author": n.author, "text": v.open(n.body_enc) or ""} for n in s.execute(
            select(CaseNote).where(CaseNote.case_id == case_id).order_by(CaseNote.id)).scalars()]
        timeline = [{"at": e.at, "actor": e.actor, "action": e.action, "detail": e.detail} for e in s.execute(
            select(Event).where(Event.case_id == case_id, Event.action.notin_(["view", "view_address"]))
            .order_by(Event.id)).scalars()]
        recent = s.execute(select(func.max(Event.at)).where(Event.case_id == case_id, Event.action == "view",
                                                            Event.actor == g.user.username)).scalar() or 0
        if time.time() - recent > VIEW_AUDIT_EVERY:
            events.record(s, "view", g.user.username, case_id, "transcript")
        status = {"status": case.status, "claimed_by": case.claimed_by, "risk": case.risk,
                  "may_act": _may_act(case)}
    return jsonify({"messages": items[-500:], "notes": notes, "timeline": timeline, "case": status})


@console.post("/api/cases/<int:case_id>/reply")
@require()
def reply(case_id: int):
    text = str(_payload().get("text") or "").strip()
    if not text:
        return _error(400, str(_l("Write a message first.")))
    if len(text) > MAX_TEXT:
        return _error(400, str(_l("The message is too long.")))
    outbox_id = queue.reply(gw(), case_id, g.user.username, text)
    if outbox_id is None:
        return _error(409, str(_l("Only the counsellor holding the case can reply.")))
    with transaction(gw().Session) as s:
        state = s.get(Outbox, outbox_id).state
    return jsonify({"outbox_id": outbox_id, "state": state, "state_label": str(OUTBOX_STATES.get(state, state))})


@console.post("/api/cases/<int:case_id>/notes")
@require()
def add_note(case_id: int):
    text = str(_payload().get("text") or "").strip()
    if not text or len(text) > MAX_TEXT:
        return _error(400, str(_l("A note needs between 1 and 2000 characters.")))
    g_ = gw()
    with transaction(g_.Session) as s:
        _load_case(s, case_id)
        s.add(CaseNote(case_id=case_id, author=g.user.username, body_enc=g_.vault.seal(text), created_at=time.time()))
        events.record(s, "note", g.user.username, case_id)
    return jsonify({"ok": True}), 201


@console.post("/api/cases/<int:case_id>/transfer")
@require()
def transfer(case_id: int):
    data = _payload()
    to = str(data.get("to") or "").strip().lower()
    if to not in {u[0] for u in auth.active_staff(gw())}:
        return _error(400, str(_l("Choose an active colleague.")))
    note = str(data.get("note") or "").strip()
    if not queue.transfer(gw(), case_id, g.user.username, to, override=g.user.can("supervisor")):
        return _error(409, str(_l("Only the counsellor holding the case can transfer it.")))
    if note:
        with transaction(gw().Session) as s:
            s.add(CaseNote(case_id=case_id, author=g.user.username, body_enc=gw().vault.seal(note[:MAX_TEXT]),
                           created_at=time.time()))
            events.record(s, "note", g.user.username, case_id, "transfer note")
    return jsonify({"ok": True, "to": to})


@console.post("/api/cases/<int:case_id>/release")
@require()
def release(case_id: int):
    if not queue.hand_back(gw(), case_id, g.user.username, resolve=False, override=g.user.can("supervisor")):
        return _error(409, str(_l("Only the counsellor holding the case can release it.")))
    return jsonify({"ok": True})


@console.post("/api/cases/<int:case_id>/resolve")
@require()
def resolve(case_id: int):
    """Close the case with its outcome, referrals and whether help was received (indicator đ),
    schedule the follow-up the person agreed to, and hand the conversation back to the bot."""
    data = _payload()
    outcome = data.get("outcome")
    if outcome not in OUTCOMES:
        return _error(400, str(_l("Choose an outcome.")))
    referrals = data.get("referrals") or data.get("referrals[]") or []
    referrals = [referrals] if isinstance(referrals, str) else list(referrals)
    if any(r not in REFERRALS for r in referrals):
        return _error(400, "unknown referral")
    help_received = data.get("help_received") or "unknown"
    if help_received not in HELP:
        return _error(400, "help_received must be yes, no or unknown")
    gbv_type = data.get("gbv_type") or None
    consent = data.get("stats_consent") or "not_asked"
    if gbv_type is not None and gbv_type not in GBV_TYPES or consent not in CONSENT:
        return _error(400, "unknown GBV type or consent value")
    followup = None
    if str(data.get("followup_consent") or "").lower() in ("1", "true", "on", "yes"):
        try:
            days = float(data.get("followup_days") or gw().settings.followup_days)
            hours = parse_hours(str(data.get("followup_hours") or gw().settings.followup_hours))
        except ValueError:
            return _error(400, str(_l("Follow-up: days must be a number and hours look like 9-17.")))
        if not 0 < days <= 60:
            return _error(400, str(_l("Follow-up: days must be a number and hours look like 9-17.")))
        followup = (days, hours)
    g_ = gw()
    with transaction(g_.Session) as s:
        conv_id = _load_case(s, case_id).conversation_id
    if not queue.hand_back(g_, case_id, g.user.username, outcome=outcome, resolve=True, referrals=referrals,
                           help_received=help_received, override=g.user.can("supervisor"), gbv_type=gbv_type,
                           stats_consent=consent):
        return _error(409, str(_l("Only the counsellor holding the case can resolve it.")))
    if followup:
        with transaction(g_.Session) as s:
            schedule(s, case_id, conv_id, followup[0], followup[1][0], followup[1][1], g.user.username)
    return jsonify({"ok": True, "url": url_for("console.queue_page")})


@console.post("/api/cases/<int:case_id>/reveal")
@require()
def reveal(case_id: int):
    """The full phone number / chat id, for the roles allowed to see it; every reveal audited."""
    if g.user.role not in _reveal_roles():
        return _error(403, "not allowed for your role")
    g_ = gw()
    with transaction(g_.Session) as s:
        case = _load_case(s, case_id)
        conv = s.get(Conversation, case.conversation_id)
        address = g_.vault.open(s.get(Contact, conv.contact_id).address_enc)
        events.record(s, "view_address", g.user.username, case_id, f"channel={conv.channel}")
    return jsonify({"address": address if conv.channel != "web" else None, "channel": conv.channel})


def _reveal_roles() -> set:
    return {r.strip() for r in gw().settings.reveal_roles.split(",") if r.strip()}


# --- canned responses ----------------------------------------------------------------------------

@console.get("/canned")
@require()
def canned_page():
    with transaction(gw().Session) as s:
        rows = [{"id": c.id, "key": c.key, "title": c.title, "body": c.body, "source": c.source,
                 "updated_by": c.updated_by} for c in s.execute(select(CannedResponse).order_by(CannedResponse.id)).scalars()]
    return render_template("console/canned.html", rows=rows, editable=g.user.can("supervisor"))


@console.post("/canned")
@require("supervisor")
def canned_save():
    data = _payload()
    title, body = str(data.get("title") or "").strip()[:120], str(data.get("body") or "").strip()
    action = data.get("action", "save")
    with transaction(gw().Session) as s:
        row = s.get(CannedResponse, int(data["id"])) if str(data.get("id") or "").isdigit() else None
        if action == "delete" and row is not None:
            s.delete(row)
            events.record(s, "canned_deleted", g.user.username, detail=f"key={row.key}")
        elif title and body and len(body) <= MAX_TEXT:
            if row is None:
                row = CannedResponse(key=f"custom-{secrets.token_hex(4)}", title=title, body=body)
                s.add(row)
            row.title, row.body, row.updated_by, row.updated_at = title, body, g.user.username, time.time()
            events.record(s, "canned_saved", g.user.username, detail=f"key={row.key}")
        else:
            return _error(400, str(_l("A canned response needs a title and a text of at most 2000 characters.")))
    return redirect(url_for("console.canned_page"))


def seed_canned(gw_) -> int:
    """Load data/console/canned_responses.yml when the list is empty (first start). Gateway
    processes starting together on a new database race for it: the one that loses finds the
    list loaded by the other."""
    from sqlalchemy.exc import IntegrityError

    try:
        with transaction(gw_.Session) as s:
            if s.execute(select(func.count()).select_from(CannedResponse)).scalar():
                return 0
            data = yaml.safe_load((ROOT / "data" / "console" / "canned_responses.yml").read_text("utf-8"))
            for item in data["responses"]:
                s.add(CannedResponse(key=item["key"], title=item["title"], body=item["body"].strip(),
                                     source=item.get("source"), updated_by=None, updated_at=time.time()))
            return len(data["responses"])
    except IntegrityError:
        return 0


# --- audit log and staff -------------------------------------------------------------------------

@console.get("/audit")
@require("supervisor")
def audit_page():
    rows = _audit_rows(request.args.get("case"), request.args.get("actor"))
    return render_template("console/audit.html", rows=rows[:500], case=request.args.get("case", ""),
                           actor=request.args.get("actor", ""))


@console.get("/audit.csv")
@require("supervisor")
def audit_export():
    rows = _audit_rows(request.args.get("case"), request.args.get("actor"), limit=100000)
    _audit("export", detail=f"audit rows={len(rows)}")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "at_utc", "actor", "action", "case_id", "detail"])
    for r in rows:
        writer.writerow([r["id"], time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r["at"])), r["actor"], r["action"],
                         r["case_id"] or "", r["detail"] or ""])
    resp = Response(out.getvalue(), mimetype="text/csv")
    resp.headers["Content-Disposition"] = "attachment; filename=audit.csv"
    return resp


def _audit_rows(case: Optional[str], actor: Optional[str], limit: int = 500) -> list[dict]:
    q = select(Event).order_by(Event.id.desc()).limit(limit)
    if case and case.isdigit():
        q = q.where(Event.case_id == int(case))
    if actor:
        q = q.where(Event.actor == actor.strip().lower())
    with transaction(gw().Session) as s:
        return [{"id": e.id, "at": e.at, "actor": e.actor, "action": e.action, "case_id": e.case_id,
                 "detail": e.detail} for e in s.execute(q).scalars()]


@console.get("/staff")
@require("admin")
def staff_page():
    with transaction(gw().Session) as s:
        rows = [{"username": r.username, "display_name": r.display_name, "role": r.role, "active": r.active}
                for r in s.execute(select(Staff).order_by(Staff.username)).scalars()]
    return render_template("console/staff.html", rows=rows, roles=auth.ROLES, error=request.args.get("error"))


@console.post("/staff")
@require("admin")
def staff_save():
    data = _payload()
    try:
        if data.get("action") == "create":
            auth.create_staff(gw(), data.get("username", ""), data.get("password", ""), data.get("role", ""),
                              data.get("display_name"), actor=g.user.username)
        elif data.get("action") == "password":
            auth.set_password(gw(), data.get("username", ""), data.get("password", ""), actor=g.user.username)
        elif data.get("action") == "update":
            auth.set_active(gw(), data.get("username", ""), str(data.get("active")) in ("1", "true", "on"),
                            actor=g.user.username, role=data.get("role") or None)
        else:
            return _error(400, "unknown action")
    except auth.StaffError as exc:
        return redirect(url_for("console.staff_page", error=str(exc)))
    return redirect(url_for("console.staff_page"))


# --- translations the templates and the script need -------------------------------------------

# Words that reach templates as data (roles, states): marked here so Babel extracts them.
WORDS = (_l("counsellor"), _l("supervisor"), _l("admin"), _l("open"), _l("claimed"), _l("closed"),
         _l("scheduled"), _l("sent"), _l("answered"), _l("cancelled"))
ACTIONS = {"opened": _l("case opened"), "raised": _l("risk raised"), "claimed": _l("taken"),
           "released": _l("put back in the queue"), "transferred": _l("transferred"), "resolved": _l("resolved"),
           "alert": _l("waited too long: supervisors alerted"), "inbound": _l("new message"),
           "replied": _l("reply sent"), "note": _l("note added"), "followup_scheduled": _l("follow-up scheduled"),
           "followup_sent": _l("follow-up sent"), "followup_answer": _l("follow-up answered"),
           "followup_cancelled": _l("follow-up cancelled")}
SCRIPT = {"min": _l("min"), "Imminent danger: a case is waiting": _l("Imminent danger: a case is waiting"),
          "Sound on": _l("Sound on"), "Turn on sound for imminent cases": _l("Turn on sound for imminent cases"),
          "live": _l("live"), "reconnecting…": _l("reconnecting…"), "asked for a counsellor": _l("asked for a counsellor"),
          "Take": _l("Take"), "Waiting too long:": _l("Waiting too long:"), "Person": _l("Person"), "Bot": _l("Bot"),
          "Bot (safety)": _l("Bot (safety)"), "Counsellor": _l("Counsellor"), "Follow-up": _l("Follow-up"),
          "Campaign": _l("Campaign"), "sending…": _l("sending…")}


def script_strings() -> dict:
    out = {k: str(v) for k, v in SCRIPT.items()}
    out.update({f"action:{k}": str(v) for k, v in ACTIONS.items()})
    out.update({f"status:{k}": str(_l(k)) for k in ("open", "claimed", "closed")})
    return out


@console.app_context_processor
def _context():
    from flask_babel import get_locale

    if not request.path.startswith("/console"):
        return {}
    return {"lang": str(get_locale() or "vi"), "i18n": script_strings()}


def console_locale(default: str) -> str:
    """The console's language: the user's choice (vi or en, a cookie), else the gateway's."""
    if request and request.path.startswith("/console"):
        chosen = request.cookies.get("hl_lang")
        if chosen in ("vi", "en"):
            return chosen
    return default
