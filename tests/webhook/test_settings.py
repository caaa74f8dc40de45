"""Settings from the environment (types, production refuses to start without its secrets, the
development secret is generated once and kept), channels enabled only by their credentials, the
vault (pseudonyms, sealing, masking) and the Alembic migration on SQLite and PostgreSQL."""
from __future__ import annotations

import os
import stat
import uuid

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import OperationalError

from webhook import settings as settings_mod
from webhook.privacy import Vault, mask
from webhook.settings import ConfigError, Settings

TABLES = {"contacts", "conversations", "messages", "outbox", "cases", "provider_tokens", "web_sessions", "staff",
          "console_sessions", "events", "case_notes", "canned_responses", "followups", "stat_year_keys",
          "stat_episodes", "incident_reports", "stat_counts",
          "subscribers", "consent_records", "campaigns", "campaign_sends", "erasures", "kb_checks", "data_requests"}
GOOD_SECRET = "k" * 40


@pytest.fixture
def local_root(tmp_path, monkeypatch):
    """``ROOT`` of the development secret (var/secret_key) moved to tmp_path."""
    monkeypatch.setattr(settings_mod, "ROOT", tmp_path)
    return tmp_path


# --- reading the environment ------------------------------------------------------------------------

def test_from_env_reads_variables_with_their_types(local_root):
    env = {
        "HELPLINE_DATABASE_URL": "sqlite:////tmp/x.db", "HELPLINE_SECRET_KEY": GOOD_SECRET,
        "HELPLINE_GATEWAY_TOKEN": "api-token", "HELPLINE_RASA_URL": "http://rasa:5005",
        "HELPLINE_RASA_TOKEN": "rt", "HELPLINE_ACTIONS_URL": "", "HELPLINE_RASA_TIMEOUT": "2.5",
        "HELPLINE_LOCALE": "en", "HELPLINE_PUBLIC_URL": "https://h.example.org",
        "HELPLINE_DISPATCH_THREADS": "3", "HELPLINE_SEND_MAX_ATTEMPTS": "5", "ZALO_MAX_EVENT_AGE": "300",
        "HELPLINE_WEBCHAT": "no", "HELPLINE_SMS_UNACCENTED": "0",
        "HELPLINE_WEBCHAT_EXIT_URL": "https://vnexpress.net",
    }
    s = Settings.from_env(env)
    assert s.database_url == "sqlite:////tmp/x.db" and s.secret_key == GOOD_SECRET and s.api_token == "api-token"
    assert s.rasa_url == "http://rasa:5005" and s.rasa_token == "rt" and s.locale == "en"
    assert s.public_url == "https://h.example.org" and s.webchat_exit_url == "https://vnexpress.net"
    assert s.actions_url == Settings().actions_url                  # an empty variable keeps the default
    assert s.rasa_timeout == 2.5 and isinstance(s.rasa_timeout, float)
    assert s.dispatch_threads == 3 and isinstance(s.dispatch_threads, int)
    assert s.send_max_attempts == 5 and isinstance(s.send_max_attempts, int)
    assert s.zalo_max_event_age == 300.0 and isinstance(s.zalo_max_event_age, float)
    assert s.webchat_enabled is False and s.sms_unaccented is False
    for yes in ("1", "true", "TRUE", "yes", "on", " on "):
        assert Settings.from_env({"HELPLINE_WEBCHAT": yes, "HELPLINE_SECRET_KEY": GOOD_SECRET}).webchat_enabled is True
    for no in ("0", "false", "no", "off"):
        assert Settings.from_env({"HELPLINE_WEBCHAT": no, "HELPLINE_SECRET_KEY": GOOD_SECRET}).webchat_enabled is False


def test_overrides_win_over_the_environment(local_root):
    s = Settings.from_env({"HELPLINE_RASA_TIMEOUT": "9", "HELPLINE_SECRET_KEY": GOOD_SECRET}, rasa_timeout=0.5)
    assert s.rasa_timeout == 0.5


def test_from_env_defaults_to_os_environ(local_root, monkeypatch):
    monkeypatch.setenv("HELPLINE_RASA_URL", "http://127.0.0.1:15005")
    monkeypatch.setenv("HELPLINE_SECRET_KEY", GOOD_SECRET)
    assert Settings.from_env().rasa_url == "http://127.0.0.1:15005"


def test_a_malformed_number_is_a_config_error_naming_the_variable(local_root):
    with pytest.raises(ConfigError, match="HELPLINE_DISPATCH_THREADS"):
        Settings.from_env({"HELPLINE_DISPATCH_THREADS": "abc", "HELPLINE_SECRET_KEY": GOOD_SECRET})


# --- production refuses to start without its secrets -------------------------------------------------

def test_production_without_secrets_names_every_missing_variable(local_root):
    with pytest.raises(ConfigError) as exc:
        Settings.from_env({"HELPLINE_ENV": "production"})
    for var in ("HELPLINE_SECRET_KEY", "HELPLINE_GATEWAY_TOKEN", "HELPLINE_RASA_TOKEN"):
        assert var in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        Settings.from_env({"HELPLINE_ENV": "production", "HELPLINE_SECRET_KEY": GOOD_SECRET,
                           "HELPLINE_RASA_TOKEN": "rt"})
    assert "HELPLINE_GATEWAY_TOKEN" in str(exc.value)
    assert "HELPLINE_SECRET_KEY" not in str(exc.value) and "HELPLINE_RASA_TOKEN" not in str(exc.value)
    assert not (local_root / "var" / "secret_key").exists()          # never a generated secret in production


def test_production_rejects_a_short_secret_and_telegram_without_its_secret_token(local_root):
    base = {"HELPLINE_ENV": "production", "HELPLINE_GATEWAY_TOKEN": "a" * 24, "HELPLINE_RASA_TOKEN": "r" * 24,
            "HELPLINE_PUBLIC_URL": "https://helpline.example.org"}
    with pytest.raises(ConfigError, match="HELPLINE_SECRET_KEY"):
        Settings.from_env({**base, "HELPLINE_SECRET_KEY": "k" * 31})
    with pytest.raises(ConfigError, match="TELEGRAM_SECRET_TOKEN"):
        Settings.from_env({**base, "HELPLINE_SECRET_KEY": GOOD_SECRET, "TELEGRAM_TOKEN": "123:abc"})
    s = Settings.from_env({**base, "HELPLINE_SECRET_KEY": "k" * 32})
    assert s.env == "production" and s.secret_key == "k" * 32
    assert not (local_root / "var" / "secret_key").exists()


def test_production_refuses_weak_tokens_plain_http_unsigned_channels_and_bad_limits(local_root):
    good = {"HELPLINE_ENV": "production", "HELPLINE_SECRET_KEY": GOOD_SECRET, "HELPLINE_GATEWAY_TOKEN": "a" * 24,
            "HELPLINE_RASA_TOKEN": "r" * 24, "HELPLINE_PUBLIC_URL": "https://helpline.example.org"}
    assert Settings.from_env(good).env == "production"
    for change, named in (({"HELPLINE_GATEWAY_TOKEN": "tok3n-Xy"}, "HELPLINE_GATEWAY_TOKEN"),
                          ({"HELPLINE_RASA_TOKEN": "r" * 23}, "HELPLINE_RASA_TOKEN"),
                          ({"TELEGRAM_TOKEN": "1:a", "TELEGRAM_SECRET_TOKEN": "guessable"}, "TELEGRAM_SECRET_TOKEN"),
                          ({"HELPLINE_PUBLIC_URL": "http://helpline.example.org"}, "HELPLINE_PUBLIC_URL"),
                          ({"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_FROM": "+1500"}, "TWILIO_AUTH_TOKEN"),
                          ({"ZALO_APP_ID": "1", "ZALO_ACCESS_TOKEN": "t"}, "ZALO_OA_SECRET_KEY"),
                          ({"HELPLINE_LIMITS": "login=ten"}, "HELPLINE_LIMITS")):
        with pytest.raises(ConfigError, match=named) as exc:
            Settings.from_env({**good, **change})
        for value in change.values():
            if len(value) > 4 and "=" not in value and "/" not in value:
                assert value not in str(exc.value)                # a secret is named, never shown
    # development accepts all of it (a newcomer's laptop), except a malformed limit
    dev = {k: v for k, v in good.items() if k != "HELPLINE_ENV"}
    assert Settings.from_env({**dev, "HELPLINE_GATEWAY_TOKEN": "short", "HELPLINE_PUBLIC_URL": "http://x"})


def test_development_generates_a_local_secret_once_and_reuses_it(local_root):
    path = local_root / "var" / "secret_key"
    assert not path.exists()
    first = Settings.from_env({})
    assert first.env == "development" and len(first.secret_key) >= 32
    assert path.read_text().strip() == first.secret_key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = Settings.from_env({})
    assert second.secret_key == first.secret_key                     # pseudonyms stay stable
    assert Vault(second.secret_key).pseudonym("sms", "+84905000001") == \
        Vault(first.secret_key).pseudonym("sms", "+84905000001")
    given = Settings.from_env({"HELPLINE_SECRET_KEY": GOOD_SECRET})
    assert given.secret_key == GOOD_SECRET and path.read_text().strip() == first.secret_key


# --- channels: enabled only with their credentials ------------------------------------------------

def test_channels_are_enabled_only_with_their_credentials(local_root):
    def s(**env):
        return Settings.from_env({"HELPLINE_SECRET_KEY": GOOD_SECRET, **env})

    none = s()
    assert (none.sms_enabled, none.telegram_enabled, none.zalo_enabled) == (False, False, False)
    assert none.webchat_enabled is True
    tw = {"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "tok"}
    assert not s(**tw).sms_enabled                                   # no sender
    assert s(**tw, TWILIO_FROM="+15005550006").sms_enabled
    assert s(**tw, TWILIO_MESSAGING_SERVICE_SID="MG1").sms_enabled
    assert not s(TWILIO_ACCOUNT_SID="AC1", TWILIO_FROM="+15005550006").sms_enabled
    assert not s(TELEGRAM_TOKEN="123:abc").telegram_enabled          # no secret token: nobody could verify
    assert not s(TELEGRAM_SECRET_TOKEN="x").telegram_enabled
    assert s(TELEGRAM_TOKEN="123:abc", TELEGRAM_SECRET_TOKEN="x").telegram_enabled
    za = {"ZALO_APP_ID": "1", "ZALO_OA_SECRET_KEY": "oa"}
    assert not s(**za).zalo_enabled                                  # no token
    assert not s(ZALO_APP_ID="1", ZALO_ACCESS_TOKEN="a").zalo_enabled  # no webhook secret
    assert s(**za, ZALO_ACCESS_TOKEN="a").zalo_enabled
    assert s(**za, ZALO_REFRESH_TOKEN="r").zalo_enabled


def test_a_channel_without_credentials_has_no_webhook(make_app):
    app = make_app(telegram_token="", zalo_access_token="", zalo_refresh_token="", twilio_from="")
    assert set(app.extensions["helpline"].adapters) == {"web"}
    client = app.test_client()
    for channel in ("sms", "telegram", "zalo", "web", "nope"):
        resp = client.post(f"/webhooks/{channel}", data=b"{}", content_type="application/json")
        assert resp.status_code == 404 and resp.get_json()["error"]
    assert client.post("/webhooks/sms/status", data={}).status_code == 404


# --- the vault -----------------------------------------------------------------------------------------

def test_pseudonyms_are_stable_per_secret_and_differ_across_secrets_and_channels():
    a, a2, b = Vault("a" * 40), Vault("a" * 40), Vault("b" * 40)
    p = a.pseudonym("sms", "+84905000001")
    assert p == a2.pseudonym("sms", "+84905000001")
    assert len(p) == 32 and all(c in "0123456789abcdef" for c in p)
    assert "84905000001" not in p
    assert p != b.pseudonym("sms", "+84905000001")
    assert p != a.pseudonym("zalo", "+84905000001")
    assert p != a.pseudonym("sms", "+84905000002")
    # the channel and address cannot run into each other
    assert a.pseudonym("sms", "1x") != a.pseudonym("sms1", "x")


def test_seal_and_open_round_trip_and_another_key_cannot_open():
    a, b = Vault("a" * 40), Vault("b" * 40)
    for message in ("xin chào, em cần giúp 😢", "", "x" * 10_000, "\u0301\u200b\ufeff"):
        sealed = a.seal(message)
        assert isinstance(sealed, bytes)
        if message.strip("\u0301\u200b\ufeff"):
            assert message.encode() not in sealed
        assert a.open(sealed) == message
        assert b.open(sealed) is None
    assert a.seal("same") != a.seal("same")          # randomised: equal texts are not visible at rest
    assert a.seal(None) is None and a.open(None) is None
    assert a.open(b"not a token") is None
    with pytest.raises(ValueError):
        Vault("")


def test_mask_hides_the_middle_of_a_phone_number():
    phone = "+84905123456"
    masked = mask(phone)
    assert masked.startswith("+84") and masked.endswith("456")
    assert "905123" not in masked and "5123" not in masked
    assert sum(ch.isdigit() for ch in masked) <= 5                   # +84 and the last three
    assert len(masked) == len(phone)
    assert mask("2512523625412599").startswith("251") and "2523625412" not in mask("2512523625412599")
    assert mask(None) == mask("") == "—"
    assert mask("12345") == "••••5"


# --- the migration ------------------------------------------------------------------------------------

def _schema_snapshot(url: str) -> dict:
    engine = create_engine(url, future=True)
    try:
        insp = inspect(engine)
        return {t: sorted(c["name"] for c in insp.get_columns(t)) for t in insp.get_table_names()}
    finally:
        engine.dispose()


def _model_differences(url: str) -> list:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from webhook.models import Base

    engine = create_engine(url, future=True)
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()


def _version(url: str) -> list:
    engine = create_engine(url, future=True)
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))]
    finally:
        engine.dispose()


def _check_migration(url: str) -> None:
    from webhook.db import upgrade
    from webhook.models import Base

    upgrade(url)
    snapshot = _schema_snapshot(url)
    assert set(snapshot) == TABLES | {"alembic_version"}
    for table in TABLES:
        assert snapshot[table] == sorted(c.name for c in Base.metadata.tables[table].columns), table
    assert _model_differences(url) == []                 # the models describe what the migration made
    version = _version(url)
    assert len(version) == 1
    engine = create_engine(url, future=True)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO web_sessions (token_hash, created_at, last_seen_at) VALUES ('h', 1, 1)"))
    finally:
        engine.dispose()
    upgrade(url)                                          # twice: a no-op
    assert _schema_snapshot(url) == snapshot and _version(url) == version
    engine = create_engine(url, future=True)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM web_sessions")).scalar_one() == 1
    finally:
        engine.dispose()


def test_migration_on_a_fresh_sqlite_file(tmp_path):
    db = tmp_path / "sub" / "fresh.db"
    db.parent.mkdir()
    _check_migration(f"sqlite:///{db}")




def test_migration_on_postgresql(pg_url):
    _check_migration(pg_url)


def test_the_gateway_runs_on_postgresql(make_app, pg_url, fakes, tmp_path):
    from tests.webhook.conftest import count, post_telegram, rows, settle
    from webhook.models import Message

    app = make_app(database_url=pg_url)
    gw = app.extensions["helpline"]
    gw.spool.dir = tmp_path / "spool"
    client = app.test_client()
    update = fakes["telegram"].make_update(990000001, 5701, "xin chào")
    assert post_telegram(client, update).status_code == 200
    assert post_telegram(client, update).status_code == 200          # the unique constraint de-duplicates
    settle(gw)
    assert count(gw, Message) == 1 and rows(gw, Message)[0].state == "answered"
    assert fakes["telegram"].wait_for(1)[0]["text"] == "bot: xin chào"
