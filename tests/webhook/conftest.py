"""Fixtures for the gateway: fake providers on loopback driven by the real client libraries, a
fake Rasa for speed (the end-to-end tests use the real one), and a gateway on a fresh SQLite file.
"""
from __future__ import annotations

import json
import os
import threading
import time
import uuid

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import OperationalError
from twilio.request_validator import RequestValidator

from tests.fakes import FakeTelegram, FakeTwilio, FakeZalo
from tests.fakes.rasa import FakeRasa

PUBLIC = "https://helpline.example.org"
TG_SECRET = "tg-secret_123"
API_TOKEN = "gateway-api-token"


@pytest.fixture(scope="module")
def _servers():
    """The fakes, started once per module (each start/stop costs ~0.1 s), with the fake Rasa
    polling for shutdown every 50 ms instead of 500 ms."""
    with FakeTwilio() as tw, FakeTelegram() as tg, FakeZalo() as za:
        rasa = FakeRasa()
        rasa.thread = threading.Thread(target=rasa.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        rasa.start()
        yield {"twilio": tw, "telegram": tg, "zalo": za, "rasa": rasa}
        rasa.stop()


@pytest.fixture
def fakes(_servers):
    """Fresh fakes for each test: recordings, failure switches and blocked sets cleared."""
    for name in ("twilio", "telegram", "zalo"):
        _servers[name].reset()
    rasa = _servers["rasa"]
    with rasa._lock:
        rasa.calls.clear()
        rasa.events.clear()
    rasa.down, rasa.delay = False, 0.0
    yield _servers
    rasa.down, rasa.delay = False, 0.0


PG_URL = os.environ.get("HELPLINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_url():
    """A fresh schema on the PostgreSQL server (CI has one); skipped, with the reason, without."""
    engine = create_engine(PG_URL, future=True)
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        engine.dispose()
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}: {type(exc.orig).__name__}")
    schema = "helpline_test_" + uuid.uuid4().hex[:12]
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def gateway_config(tmp_path, fakes, **over) -> dict:
    tw, tg, za, rasa = fakes["twilio"], fakes["telegram"], fakes["zalo"], fakes["rasa"]
    cfg = dict(
        database_url=f"sqlite:///{tmp_path / 'gw.db'}", secret_key="s" * 48, api_token=API_TOKEN,
        rasa_url=rasa.url, rasa_token=rasa.token, actions_url="", rasa_timeout=3.0, public_url=PUBLIC,
        twilio_account_sid=tw.account_sid, twilio_auth_token=tw.auth_token, twilio_from="+15005550006",
        twilio_api_base=tw.url,
        telegram_token=tg.token, telegram_secret=TG_SECRET, telegram_api_base=tg.url + "/bot",
        zalo_app_id=za.app_id, zalo_secret_key=za.secret_key, zalo_oa_secret_key=za.oa_secret_key,
        zalo_access_token=za.access_token, zalo_refresh_token=za.refresh_token,
        zalo_api_base=za.url, zalo_oauth_base=za.url,
        rate_limits={}, dispatch_threads=4,
    )
    cfg.update(over)
    return cfg


@pytest.fixture
def make_app(tmp_path, fakes):
    apps = []

    def _make(**over):
        from webhook.app import create_app

        app = create_app(gateway_config(tmp_path, fakes, **over))
        app.config["TESTING"] = True
        apps.append(app)
        return app

    yield _make
    for app in apps:
        app.extensions["helpline"].close()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def quiet(make_app, tmp_path):
    """A gateway whose dispatcher does not run: the pipeline, queue or sender are driven by hand."""
    gw = make_app(run_dispatcher=False).extensions["helpline"]
    gw.spool.dir = tmp_path / "spool"
    return gw


@pytest.fixture
def gw(app, tmp_path):
    g = app.extensions["helpline"]
    g.spool.dir = tmp_path / "spool"        # never the repository's var/spool
    return g


# --- helpers used by the channel tests -------------------------------------------------------

def post_sms(client, fakes, params: dict, path: str = "/webhooks/sms", signature: str | None = None):
    params = {k: (v.replace("{account_sid}", fakes["twilio"].account_sid) if isinstance(v, str) else v)
              for k, v in params.items()}
    validator = RequestValidator(fakes["twilio"].auth_token)
    sig = signature if signature is not None else validator.compute_signature(PUBLIC + path, params)
    return client.post(path, data=params, headers={"X-Twilio-Signature": sig})


def post_telegram(client, update: dict, secret: str = TG_SECRET):
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    return client.post("/webhooks/telegram", data=json.dumps(update), headers=headers,
                       content_type="application/json")


def post_zalo(client, fakes, event: dict, tamper: bool = False):
    event = json.loads(json.dumps(event).replace("{app_id}", fakes["zalo"].app_id))
    raw, headers = fakes["zalo"].signed_webhook(event)
    if tamper:
        raw = raw.replace(b"user_send", b"user_sendX", 1)
    return client.post("/webhooks/zalo", data=raw, headers=headers)


def count(gw, model, *where) -> int:
    from webhook.db import transaction

    with transaction(gw.Session) as s:
        return s.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def rows(gw, model, *where):
    from webhook.db import transaction

    with transaction(gw.Session) as s:
        return list(s.execute(select(model).where(*where).order_by(model.id if hasattr(model, "id") else None)).scalars())


def settle(gw, timeout: float = 15.0) -> None:
    """Wait for the fast path to finish (the dispatcher's threads)."""
    assert gw.dispatcher.drain(timeout), "dispatcher did not finish"
    time.sleep(0.01)
