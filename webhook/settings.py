"""One settings object, read from the environment once, with safe local defaults.

Local defaults (SQLite under var/, Rasa and the action server on loopback, no channel
credentials) let a newcomer run everything with no server to install. A channel is enabled only
when its credentials are set. In production (``HELPLINE_ENV=production``) a missing secret is a
loud start-up failure instead of a silently insecure default.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from dataclasses import dataclass, field, fields, replace
from typing import Mapping, Optional

from bot.paths import ROOT


class ConfigError(RuntimeError):
    pass


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    database_url: str = f"sqlite:///{ROOT / 'var' / 'helpline.db'}"
    # Secrets: pseudonyms (HMAC) and encryption of addresses and message bodies at rest.
    secret_key: str = ""
    # Encryption at rest (webhook/privacy.py): Fernet keys, the first encrypts; or a file of them.
    encryption_keys: str = ""
    encryption_key_file: str = ""
    # Shared token for the action server -> gateway API (escalations).
    api_token: str = ""

    rasa_url: str = "http://127.0.0.1:5005"
    rasa_token: str = ""
    actions_url: str = "http://127.0.0.1:5055"
    # How long a person waits for the bot before the safe reply goes out instead.
    rasa_timeout: float = 10.0
    locale: str = "vi"

    # Public base URL the providers call (behind a proxy this is not request.url). Signatures are
    # computed over it.
    public_url: str = "http://127.0.0.1:8000"

    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_from: str = ""
    twilio_messaging_service_sid: str = ""
    twilio_api_base: str = ""          # tests point this at a fake; empty = api.twilio.com
    sms_unaccented: bool = True

    telegram_token: str = ""
    telegram_secret: str = ""
    telegram_api_base: str = "https://api.telegram.org/bot"

    zalo_app_id: str = ""
    zalo_secret_key: str = ""          # app secret: token refresh
    zalo_oa_secret_key: str = ""       # OA secret: webhook signature
    zalo_access_token: str = ""        # first tokens; rotated ones live in the database
    zalo_refresh_token: str = ""
    zalo_api_base: str = "https://openapi.zalo.me"
    zalo_oauth_base: str = "https://oauth.zaloapp.com"
    zalo_max_event_age: float = 0.0    # seconds; 0 = do not reject old events

    # Counsellors' working hours (webhook/hours.py); empty = staffed around the clock.
    hours: str = ""
    holidays: str = ""
    # Supervisors on call for unclaimed urgent cases: "telegram:<chat id>,sms:+84…"
    oncall: str = ""
    # Seconds an unclaimed case may wait before supervisors are alerted, per risk.
    alert_after: Mapping[str, float] = field(default_factory=lambda: {"imminent": 120.0, "high": 600.0})

    # Counsellor console: minutes of inactivity before a login ends; roles that may see a
    # person's full phone number or chat id (every reveal is audited).
    console_idle_minutes: int = 15
    reveal_roles: str = "supervisor,admin"
    # Default follow-up: after this many days, inside the person's safe hours (Vietnam time).
    followup_days: int = 3
    followup_hours: str = "9-17"
    # Anonymised contact statistics (webhook/stats, docs/indicators.md).
    stats_enabled: bool = True
    # Who receives the yearly and serious-incident reports (the plan names the Department of
    # Labour, Invalids and Social Affairs; its duties moved in the 2025 reorganisation).
    report_to: str = "Cơ quan phụ trách công tác phòng, chống bạo lực trên cơ sở giới (HELPLINE_REPORT_TO)"

    webchat_enabled: bool = True
    webchat_exit_url: str = "https://www.google.com/search?q=thoi+tiet+da+nang"
    webchat_poll_ms: int = 1500

    # Request limits (webhook/security.py): "login=10/60,webchat_message=30/60" overrides the
    # defaults; reverse proxies in front of the gateway whose X-Forwarded-For to trust.
    limits: str = ""
    proxy_hops: int = 0

    max_text_chars: int = 2000         # longer messages are kept and understood from their start
    max_body_bytes: int = 256 * 1024
    # Background threads in the gateway that hand messages to Rasa and send replies at once.
    dispatch_threads: int = 4
    # Per-channel send rate (messages per second); bulk traffic waits behind conversations.
    rate_limits: Mapping[str, float] = field(default_factory=lambda: {"sms": 10.0, "telegram": 25.0,
                                                                      "zalo": 10.0, "web": 1000.0})
    send_max_attempts: int = 8
    run_dispatcher: bool = True        # tests may drive the pipeline by hand

    # Campaign broadcasts (webhook/broadcast, docs/broadcasts.md): the bulk lane's own rate per
    # channel (set it a little under the provider's limit: conversation replies use the rest),
    # the send window in Vietnam time, at most this many campaign messages per person per day
    # (Decree 91/2020), and the price of one SMS segment for the preview's estimate (no default:
    # the contract's price).
    bulk_rates: Mapping[str, float] = field(default_factory=lambda: {"sms": 9.0, "telegram": 20.0, "zalo": 5.0,
                                                                     "web": 200.0})
    send_window: str = "7-22"
    daily_cap: int = 3
    bulk_senders: int = 4              # campaign messages in flight at once (the pacer keeps the rate)
    # Retention (webhook/retention.py): days after a conversation's last case closed (or its last
    # message) before its texts are blanked and, when the person is gone as long, their address.
    retention_days: float = 90.0
    sms_segment_cost: str = ""
    # The counselling line is offered only when it was verified within this many days (0: the
    # directory's own line_max_age_days, 90; data/kb/services.yml, bot/kb/line.py).
    line_max_age_days: int = 0

    _ENV = {
        "env": "HELPLINE_ENV", "database_url": "HELPLINE_DATABASE_URL", "secret_key": "HELPLINE_SECRET_KEY",
        "encryption_keys": "HELPLINE_ENCRYPTION_KEYS", "encryption_key_file": "HELPLINE_ENCRYPTION_KEY_FILE",
        "api_token": "HELPLINE_GATEWAY_TOKEN", "rasa_url": "HELPLINE_RASA_URL", "rasa_token": "HELPLINE_RASA_TOKEN",
        "actions_url": "HELPLINE_ACTIONS_URL", "rasa_timeout": "HELPLINE_RASA_TIMEOUT", "locale": "HELPLINE_LOCALE",
        "public_url": "HELPLINE_PUBLIC_URL",
        "twilio_account_sid": "TWILIO_ACCOUNT_SID", "twilio_auth_token": "TWILIO_AUTH_TOKEN",
        "twilio_from": "TWILIO_FROM", "twilio_messaging_service_sid": "TWILIO_MESSAGING_SERVICE_SID",
        "twilio_api_base": "TWILIO_API_BASE", "sms_unaccented": "HELPLINE_SMS_UNACCENTED",
        "telegram_token": "TELEGRAM_TOKEN", "telegram_secret": "TELEGRAM_SECRET_TOKEN",
        "telegram_api_base": "TELEGRAM_API_BASE",
        "zalo_app_id": "ZALO_APP_ID", "zalo_secret_key": "ZALO_APP_SECRET", "zalo_oa_secret_key": "ZALO_OA_SECRET_KEY",
        "zalo_access_token": "ZALO_ACCESS_TOKEN", "zalo_refresh_token": "ZALO_REFRESH_TOKEN",
        "zalo_api_base": "ZALO_API_BASE", "zalo_oauth_base": "ZALO_OAUTH_BASE",
        "zalo_max_event_age": "ZALO_MAX_EVENT_AGE",
        "hours": "HELPLINE_HOURS", "holidays": "HELPLINE_HOLIDAYS", "oncall": "HELPLINE_ONCALL",
        "console_idle_minutes": "HELPLINE_CONSOLE_IDLE_MINUTES", "reveal_roles": "HELPLINE_REVEAL_ROLES",
        "followup_days": "HELPLINE_FOLLOWUP_DAYS", "followup_hours": "HELPLINE_FOLLOWUP_HOURS",
        "stats_enabled": "HELPLINE_STATS", "report_to": "HELPLINE_REPORT_TO",
        "webchat_enabled": "HELPLINE_WEBCHAT", "webchat_exit_url": "HELPLINE_WEBCHAT_EXIT_URL",
        "dispatch_threads": "HELPLINE_DISPATCH_THREADS", "send_max_attempts": "HELPLINE_SEND_MAX_ATTEMPTS",
        "send_window": "HELPLINE_SEND_WINDOW", "daily_cap": "HELPLINE_DAILY_CAP",
        "bulk_senders": "HELPLINE_BULK_SENDERS", "retention_days": "HELPLINE_RETENTION_DAYS",
        "sms_segment_cost": "HELPLINE_SMS_SEGMENT_COST", "limits": "HELPLINE_LIMITS",
        "proxy_hops": "HELPLINE_PROXY_HOPS", "line_max_age_days": "HELPLINE_LINE_MAX_AGE_DAYS",
    }

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None, **overrides) -> "Settings":
        environ = os.environ if environ is None else environ
        values: dict = {}
        types = {f.name: f.type for f in fields(cls)}
        for name, var in cls._ENV.items():
            if var in environ and environ[var] != "":
                raw = environ[var]
                kind = types[name]
                try:
                    values[name] = (_bool(raw) if kind in ("bool", bool) else int(raw) if kind in ("int", int)
                                    else float(raw) if kind in ("float", float) else raw)
                except ValueError:
                    raise ConfigError(f"{var} must be a {kind}, not {raw!r}") from None
        # "sms=10,telegram=25,zalo=10,web=0": messages per second per channel; 0 = no limit
        values.update(_pairs(environ, "rate_limits", "HELPLINE_RATE_LIMITS", "sms=10,telegram=25"))
        # "sms=9,telegram=20": the campaign lane's messages per second per channel
        values.update(_pairs(environ, "bulk_rates", "HELPLINE_BULK_RATES", "sms=9,telegram=20"))
        # "imminent=120,high=600": seconds before an unclaimed case alerts the supervisors
        values.update(_pairs(environ, "alert_after", "HELPLINE_ALERT_AFTER", "imminent=120,high=600"))
        values.update(overrides)
        settings = cls(**values)
        return settings.checked()

    def checked(self) -> "Settings":
        if self.env == "production":
            missing = [n for n in ("secret_key", "api_token", "rasa_token") if not getattr(self, n)]
            if missing:
                raise ConfigError("missing settings in production: " + ", ".join(
                    self._ENV[n] for n in missing))
            if len(self.secret_key) < 32:
                raise ConfigError("HELPLINE_SECRET_KEY must be at least 32 characters")
            from webhook.hours import parse
            parse(self.hours)
            if self.telegram_token and not self.telegram_secret:
                raise ConfigError("TELEGRAM_SECRET_TOKEN is required with TELEGRAM_TOKEN")
            weak = [var for name, var, least in (
                ("api_token", "HELPLINE_GATEWAY_TOKEN", 24), ("rasa_token", "HELPLINE_RASA_TOKEN", 24),
                ("telegram_secret", "TELEGRAM_SECRET_TOKEN", 24)) if 0 < len(getattr(self, name)) < least]
            if weak:
                raise ConfigError("too short for production (at least 24 characters): " + ", ".join(weak))
            if not self.public_url.startswith("https://"):
                # providers sign over this address; cookies are Secure only over https
                raise ConfigError("HELPLINE_PUBLIC_URL must be an https:// address in production")
            if (self.twilio_account_sid or self.twilio_from) and not self.twilio_auth_token:
                raise ConfigError("TWILIO_AUTH_TOKEN is required with TWILIO_ACCOUNT_SID (it signs the webhooks)")
            if self.zalo_app_id and not self.zalo_oa_secret_key:
                raise ConfigError("ZALO_OA_SECRET_KEY is required with ZALO_APP_ID (it signs the webhooks)")
            from webhook.security import parse_limits
            parse_limits(self.limits)
            return self
        # Development: a random secret per database is kept in var/ so pseudonyms stay stable.
        if not self.secret_key:
            return replace(self, secret_key=_local_secret())
        return self

    @property
    def sms_enabled(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token and
                    (self.twilio_from or self.twilio_messaging_service_sid))

    @property
    def telegram_enabled(self) -> bool:
        return bool(self.telegram_token and self.telegram_secret)

    @property
    def zalo_enabled(self) -> bool:
        return bool(self.zalo_app_id and self.zalo_oa_secret_key and
                    (self.zalo_access_token or self.zalo_refresh_token))


def _pairs(environ: Mapping[str, str], name: str, var: str, example: str) -> dict:
    if not environ.get(var):
        return {}
    try:
        return {name: {k.strip(): float(v) for k, v in (
            item.split("=", 1) for item in environ[var].split(",") if "=" in item)}}
    except ValueError:
        raise ConfigError(f"{var} must look like {example}") from None


def _local_secret() -> str:
    path = ROOT / "var" / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        return key


def encryption_keys(settings: "Settings") -> list[str]:
    """The configured Fernet keys, first the one that encrypts (empty: derive from the secret)."""
    keys = [k.strip() for k in settings.encryption_keys.split(",") if k.strip()]
    if settings.encryption_key_file:
        try:
            lines = Path(settings.encryption_key_file).read_text("utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"HELPLINE_ENCRYPTION_KEY_FILE cannot be read ({type(exc).__name__})") from None
        keys += [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    from cryptography.fernet import Fernet
    for i, key in enumerate(keys, 1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            # which one, never the key itself
            raise ConfigError(f"encryption key {i} of {len(keys)} is not a Fernet key "
                              "(`helpline keys generate` makes one)") from None
    return keys
