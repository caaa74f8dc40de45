"""The composition root: ``create_app(config)`` wires settings, database, vault, channel adapters,
the Rasa client, the dispatcher and the routes. Nothing here runs at import time."""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from typing import Optional, Union

from flask import Blueprint, Flask, current_app, jsonify, render_template, request
from flask_babel import Babel
from sqlalchemy import select, text
from werkzeug.exceptions import HTTPException

from bot.paths import ROOT
from webhook import pipeline, spool
from webhook.channels.base import TEXT, BadRequest, Forbidden, Inbound
from webhook.db import connection, make_engine, make_sessionmaker, transaction, upgrade
from webhook.dispatcher import Dispatcher
from webhook.models import Conversation, Contact, Message, Outbox, ProviderToken, WebSession
from webhook.privacy import Vault
from webhook.rasa_client import RasaClient
from webhook.settings import Settings

logger = logging.getLogger(__name__)

HOTLINES = [  # data/kb/services.yml: police, ambulance, hotline_111 (verified, 24/7)
    {"number": "113", "label": "police"},
    {"number": "115", "label": "ambulance"},
    {"number": "111", "label": "hotline_111"},
]


def hotlines(gw) -> list[dict]:
    """The numbers the web chat page shows: the verified ones, and the counselling line with its
    hours only while it may be offered (bot/kb/line.py)."""
    from bot.kb.hours import describe

    line = gw.kb.line()
    out = list(HOTLINES)
    if line.usable and line.number:
        out.append({"number": line.number, "label": "social_work_center", "hours": describe(line.hours or "")})
    return out


class Gateway:
    """Everything a request or a worker needs, built once per process."""

    def __init__(self, settings: Settings, migrate: bool = True):
        self.settings = settings
        if migrate:
            upgrade(settings.database_url)
        self.engine = make_engine(settings.database_url)
        self.Session = make_sessionmaker(self.engine)
        from webhook.settings import encryption_keys
        self.vault = Vault(settings.secret_key, encryption_keys(settings))
        self.rasa = RasaClient(settings.rasa_url, settings.rasa_token, settings.rasa_timeout, settings.actions_url)
        self.limiter = pipeline.RateLimiter(settings.rate_limits)
        self.adapters = build_adapters(self)
        from webhook.kbstate import KbState
        self.kb = KbState(self)
        # one spool per database, so two gateways on a host never ingest each other's messages
        self.spool = spool.Spool(ROOT / "var" / "spool" / hashlib.sha256(settings.database_url.encode()).hexdigest()[:16],
                                 self.vault)
        self.dispatcher: Optional[Dispatcher] = None
        if settings.run_dispatcher:
            self.dispatcher = Dispatcher(self, settings.dispatch_threads)

    def tx(self):
        """A Core connection in one transaction, for the hot path."""
        return connection(self.engine, self.Session.write_lock)

    def submit(self, conversation_id: int) -> None:
        if self.dispatcher is not None:
            self.dispatcher.submit(conversation_id)

    def close(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.stop()
        for adapter in self.adapters.values():
            adapter.close()
        self.engine.dispose()

    # Zalo's rotating tokens, sealed in the database
    def _load_tokens(self, channel: str, first: tuple) -> tuple:
        with transaction(self.Session) as s:
            row = s.get(ProviderToken, channel)
            if row is None:
                return first
            return self.vault.open(row.access_token_enc), self.vault.open(row.refresh_token_enc), row.expires_at

    def _save_tokens(self, channel: str, access: str, refresh: str, expires_at: float) -> None:
        with transaction(self.Session) as s:
            row = s.get(ProviderToken, channel) or ProviderToken(channel=channel)
            row.access_token_enc, row.refresh_token_enc = self.vault.seal(access), self.vault.seal(refresh)
            row.expires_at, row.updated_at = expires_at, time.time()
            s.merge(row)


def build_adapters(gw: Gateway) -> dict:
    s = gw.settings
    adapters = {}
    if s.sms_enabled:
        from webhook.channels.sms import SmsAdapter
        adapters["sms"] = SmsAdapter(s)
    if s.telegram_enabled:
        from webhook.channels.telegram import TelegramAdapter
        adapters["telegram"] = TelegramAdapter(s)
    if s.zalo_enabled:
        from webhook.channels.zalo import TokenStore, ZaloAdapter
        first = (s.zalo_access_token or None, s.zalo_refresh_token or None, None)
        adapters["zalo"] = ZaloAdapter(s, TokenStore(lambda: gw._load_tokens("zalo", first),
                                                     lambda a, r, e: gw._save_tokens("zalo", a, r, e)))
    if s.webchat_enabled:
        from webhook.channels.web import WebAdapter
        adapters["web"] = WebAdapter()
    return adapters


def gateway() -> Gateway:
    return current_app.extensions["helpline"]


def _error(status: int, message: str):
    return jsonify({"error": message}), status


def _json_body():
    """The request's JSON, or None when it is not JSON (also "[[[[…" nested past the parser's
    recursion limit: get_json(silent=True) only covers ValueError)."""
    try:
        return request.get_json(silent=True)
    except RecursionError:
        return None


# --- provider webhooks -------------------------------------------------------------------------

hooks = Blueprint("hooks", __name__)


@hooks.post("/webhooks/<channel>")
def webhook(channel: str):
    gw = gateway()
    adapter = gw.adapters.get(channel)
    if adapter is None or channel == "web":
        return _error(404, "channel not enabled")
    try:
        adapter.verify(request)
        inbound = adapter.parse(request)
    except Forbidden as exc:
        logger.warning("webhook_forbidden channel=%s reason=%s", channel, exc)
        return _error(403, str(exc))
    except BadRequest as exc:
        logger.info("webhook_bad_request channel=%s reason=%s", channel, exc)
        return _error(400, str(exc))
    accept(gw, inbound)
    return adapter.ack(inbound)


def accept(gw: Gateway, inbound: list[Inbound]) -> list:
    """Store, then hand on. If the database is down the message goes to the local spool (sealed)
    and the person gets the safe reply straight from here: nothing is lost, no one waits."""
    results = []
    for item in inbound:
        try:
            received = pipeline.receive(gw, item)
        except Exception as exc:
            logger.error("store_failed channel=%s error=%s", item.channel, type(exc).__name__)
            gw.spool.put(item)
            if item.kind == TEXT:
                threading.Thread(target=spool.safe_reply, args=(gw, item), daemon=True).start()
            results.append(None)
            continue
        results.append(received)
        if received.message_id and not received.duplicate:
            gw.submit(received.conversation_id)
    return results


@hooks.post("/webhooks/sms/status")
def sms_status():
    gw = gateway()
    adapter = gw.adapters.get("sms")
    if adapter is None:
        return _error(404, "channel not enabled")
    try:
        sid, status, error = adapter.verify_status(request)
    except Forbidden as exc:
        return _error(403, str(exc))
    except BadRequest as exc:
        return _error(400, str(exc))
    pipeline.status_callback(gw, "sms", sid, status, error)
    return ("", 204)


# --- the action server's API -----------------------------------------------------------------

api = Blueprint("api", __name__, url_prefix="/api/v1")


def _api_token_ok(gw) -> bool:
    token = gw.settings.api_token
    given = request.headers.get("Authorization", "")
    return bool(token) and hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


@api.post("/escalations")
def escalations():
    gw = gateway()
    if not _api_token_ok(gw):
        return _error(403, "bad or missing token")
    data = _json_body()
    if not isinstance(data, dict) or not isinstance(data.get("conversation_id"), str):
        return _error(400, "conversation_id is required")
    risk = data.get("risk") if data.get("risk") in pipeline.RISK_ORDER else "medium"
    with transaction(gw.Session) as s:
        conv = s.execute(select(Conversation).where(Conversation.rasa_sender == data["conversation_id"])
                         ).scalar_one_or_none()
    if conv is None:
        return _error(404, "unknown conversation")
    case_id = pipeline.open_case(gw, conv.id, risk, str(data.get("topic") or "")[:32] or None,
                                 reason=str(data.get("reason") or "bot")[:64], source="bot",
                                 requested=data.get("reason") == "request", summary=machine_summary(data.get("summary")),
                                 locality=_label((data.get("summary") or {}).get("locality")
                                                 if isinstance(data.get("summary"), dict) else None))
    return jsonify({"case_id": case_id}), 201


@api.get("/kb/checks")
def kb_checks():
    """The newest check of each knowledge-base item recorded in the console, for the action
    server (which shows a place only when it is verified): labels and dates, no person's data."""
    gw = gateway()
    if not _api_token_ok(gw):
        return _error(403, "bad or missing token")
    rows = [{"kind": c.kind, "item_id": c.item_id, "checked_on": c.checked_on.isoformat(), "result": c.result,
             "hours": c.hours} for c in gw.kb.checks().values()]
    return jsonify({"checks": rows})


@api.get("/openapi.json")
def openapi():
    """This API described: webhook/openapi.yaml is the one source (tests check it against the
    routes), read once per app and served as JSON."""
    doc = current_app.extensions.get("openapi")
    if doc is None:
        from importlib.resources import files

        import yaml

        doc = yaml.safe_load(files("webhook").joinpath("openapi.yaml").read_text("utf-8"))
        current_app.extensions["openapi"] = doc
    return jsonify(doc)


def _label(value) -> Optional[str]:
    return value if isinstance(value, str) and 0 < len(value) <= 40 else None


def machine_summary(summary) -> Optional[str]:
    """The action server's structured summary as one short line of labels (never message text:
    only known keys, label-like values)."""
    if not isinstance(summary, dict):
        return None
    parts = []
    for key in ("intent", "locality", "commune", "relationship", "person_at_risk"):
        value = summary.get(key)
        if isinstance(value, str) and value and len(value) <= 40:
            parts.append(f"{key}={value}")
    reasons = [r for r in (summary.get("reasons") or []) if isinstance(r, str) and len(r) <= 40][:6]
    if reasons:
        parts.append("reasons=" + ",".join(reasons))
    return "; ".join(parts)[:200] or None


# --- health ------------------------------------------------------------------------------------

health = Blueprint("health", __name__)


@health.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@health.get("/readyz")
def readyz():
    gw = gateway()
    checks = {}
    try:
        with gw.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = True
    except Exception:
        checks["database"] = False
    checks["rasa"] = gw.rasa.healthy()
    actions = gw.rasa.actions_healthy()
    if actions is not None:
        checks["actions"] = actions
    ok = all(checks.values())
    return jsonify({"status": "ready" if ok else "degraded", "checks": checks}), 200 if ok else 503


# --- web chat ----------------------------------------------------------------------------------

web = Blueprint("web", __name__)
SESSION_IDLE_SECONDS = 24 * 3600


@web.get("/favicon.ico")
def favicon():
    return ("", 204)        # no icon: nothing on the tab that says "helpline" to someone looking


@web.get("/")
def webchat_page():
    gw = gateway()
    if "web" not in gw.adapters:
        return _error(404, "web chat is disabled")
    return render_template("webchat.html", exit_url=gw.settings.webchat_exit_url,
                           poll_ms=gw.settings.webchat_poll_ms, hotlines=hotlines(gw))


def _token_hash(token: str) -> str:
    return hashlib.sha256(("webchat:" + token).encode()).hexdigest()


def _web_session(gw) -> Optional[str]:
    token = request.headers.get("X-Webchat-Session", "")
    if not token or len(token) > 128:
        return None
    digest = _token_hash(token)
    with transaction(gw.Session) as s:
        row = s.get(WebSession, digest)
        if row is None or time.time() - row.last_seen_at > SESSION_IDLE_SECONDS:
            return None
        if time.time() - row.last_seen_at > 60:
            row.last_seen_at = time.time()
    return digest


def _web_request():
    """(gateway, session digest, None) or (.., .., the error response): the web chat must be on
    and the session known and fresh."""
    gw = gateway()
    if "web" not in gw.adapters:
        return gw, None, _error(404, "web chat is disabled")
    digest = _web_session(gw)
    if digest is None:
        return gw, None, _error(403, "unknown or expired session")
    return gw, digest, None


@web.post("/webchat/api/session")
def webchat_session():
    gw = gateway()
    if "web" not in gw.adapters:
        return _error(404, "web chat is disabled")
    token = secrets.token_urlsafe(32)
    with transaction(gw.Session) as s:
        s.add(WebSession(token_hash=_token_hash(token)))
    return jsonify({"session": token, "poll_ms": gw.settings.webchat_poll_ms}), 201


@web.post("/webchat/api/messages")
def webchat_send():
    gw, digest, refusal = _web_request()
    if refusal:
        return refusal
    data = _json_body()
    if not isinstance(data, dict) or not isinstance(data.get("text", ""), str):
        return _error(400, "expected a JSON object with a text field")
    client_id = str(data.get("client_id") or secrets.token_hex(8))[:64]
    body = data.get("text") or ""
    kind = TEXT if body.strip() else "empty"
    item = Inbound("web", digest, f"{digest[:24]}:{client_id}", kind=kind, text=body if kind == TEXT else None,
                   client_ref=client_id)
    result = accept(gw, [item])[0]
    return jsonify({"id": result.message_id if result else None}), 202


@web.get("/webchat/api/messages")
def webchat_poll():
    gw, digest, refusal = _web_request()
    if refusal:
        return refusal
    try:
        after = int(request.args.get("after", "0"))
    except ValueError:
        return _error(400, "after must be a number")
    pseudonym = gw.vault.pseudonym("web", digest)
    events = []
    with transaction(gw.Session) as s:
        contact = s.execute(select(Contact).where(Contact.channel == "web", Contact.pseudonym == pseudonym)
                            ).scalar_one_or_none()
        if contact is not None:
            conv_ids = [c for (c,) in s.execute(select(Conversation.id).where(Conversation.contact_id == contact.id))]
            for m in s.execute(select(Message).where(Message.conversation_id.in_(conv_ids), Message.kind == TEXT)).scalars():
                events.append((m.received_at, 0, m.id, "in", m.body_enc, m.client_ref))
            for o in s.execute(select(Outbox).where(Outbox.conversation_id.in_(conv_ids),
                                                    Outbox.state.in_(["sent", "delivered"]))).scalars():
                events.append((o.sent_at or o.created_at, 1, o.id, "out", o.body_enc, None))
    events.sort()
    out, last = [], 0
    for ts, _k, _id, direction, body, client_ref in events:
        eid = max(last + 1, int(ts * 1_000_000))
        last = eid
        if eid > after:
            item = {"id": eid, "direction": direction, "text": gw.vault.open(body) or ""}
            if client_ref:
                item["client_id"] = client_ref
            out.append(item)
    return jsonify({"messages": out[-200:]})


# --- the app -----------------------------------------------------------------------------------

def create_app(config: Union[Settings, dict, None] = None) -> Flask:
    settings = config if isinstance(config, Settings) else Settings.from_env(**(config or {}))
    app = Flask(__name__, template_folder="templates", static_folder="static")
    app.config.update(MAX_CONTENT_LENGTH=settings.max_body_bytes, JSON_AS_ASCII=False,
                      BABEL_TRANSLATION_DIRECTORIES=str(ROOT / "locale"), BABEL_DEFAULT_LOCALE=settings.locale)
    app.json.ensure_ascii = False
    from webhook.console import console, seed_canned
    from webhook.console.views import console_locale

    Babel(app, locale_selector=lambda: console_locale(settings.locale))
    gw = Gateway(settings)
    app.extensions["helpline"] = gw
    for bp in (hooks, api, health, web, console):
        app.register_blueprint(bp)
    seed_canned(gw)

    from webhook import security
    security.install(app, settings.secret_key, security.parse_limits(settings.limits), settings.proxy_hops,
                     https=settings.public_url.startswith("https://"))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        body, status = _error(exc.code or 500, exc.name.lower())
        allow = dict(exc.get_headers()).get("Allow")         # a 405 names the allowed methods
        if allow:
            body.headers["Allow"] = allow
        return body, status

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        # Never the payload, never the message: only the kind of error.
        logger.error("unhandled_error path=%s error=%s", request.path, type(exc).__name__)
        return _error(500, "internal error")

    return app
