"""The scale-out shape's pieces that need no second machine: the gateway spreading conversations
over several Rasa servers and moving them when one is gone, and gateways or workers migrating one
new PostgreSQL database at the same time. bench/load.py runs the whole shape."""
from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from sqlalchemy import create_engine, inspect

from bot.paths import ROOT
from tests.fakes.rasa import FakeRasa
from tests.webhook.test_pipeline import _free_port
from webhook.rasa_client import RasaClient, RasaUnavailable


@pytest.fixture
def two_rasas():
    a, b = FakeRasa().start(), FakeRasa().start()
    yield a, b
    for fake in (a, b):
        try:
            fake.stop()
        except OSError:
            pass


def _senders(fake) -> set:
    with fake._lock:
        return {c["sender"] for c in fake.calls}


def test_conversations_spread_over_the_servers_and_each_stays_on_its_own(two_rasas):
    a, b = two_rasas
    client = RasaClient(f"{a.url}, {b.url}/", token=a.token, timeout=3.0)
    assert client.urls == [a.url, b.url]
    for round_ in range(3):
        for i in range(40):
            assert client.send(f"conv-{i}", f"hello {round_}", {}, "sms")[0]["text"].startswith("bot:")
    on_a, on_b = _senders(a), _senders(b)
    assert on_a and on_b, "both servers take conversations"
    assert not on_a & on_b, "a conversation always goes to the same server"
    assert len(on_a | on_b) == 40
    assert len(a.calls) + len(b.calls) == 120


def test_a_server_that_is_gone_moves_its_conversations_to_the_other(two_rasas):
    a, b = two_rasas
    client = RasaClient(f"{a.url},{b.url}", token=a.token, timeout=3.0)
    for i in range(20):
        client.send(f"conv-{i}", "before", {}, "sms")
    moved = _senders(a)
    a.stop()                                         # refused connections from now on
    client._http.close()                             # (a killed server drops its open connections too)
    with b._lock:
        b.calls.clear()
    for i in range(20):
        assert client.send(f"conv-{i}", "after", {}, "sms")
    assert _senders(b) == {f"conv-{i}" for i in range(20)} and moved
    assert client.healthy()
    # pause/resume and XOA reach the tracker store through the server that is left
    client.append_events("conv-0", [{"event": "pause"}])
    assert client.forget("conv-0")
    assert b.events[-1][0] == "conv-0" and b.replaced[-1] == ("conv-0", [])


def test_every_server_gone_is_rasa_unavailable(two_rasas):
    a, b = two_rasas
    client = RasaClient(f"http://127.0.0.1:{_free_port()},http://127.0.0.1:{_free_port()}", token="t", timeout=2.0)
    with pytest.raises(RasaUnavailable):
        client.send("conv-1", "hello", {}, "sms")
    assert not client.healthy()


def test_a_slow_server_is_not_bypassed_the_message_may_still_be_processing(two_rasas):
    """A timeout is not a refusal: the first server may still answer, so sending the message to
    another one could answer it twice. It is reported (and replayed later), not moved."""
    a, b = two_rasas
    client = RasaClient(f"{a.url},{b.url}", token=a.token, timeout=0.5)
    sender = next(f"conv-{i}" for i in range(100) if client._servers(f"conv-{i}")[0] == a.url)
    a.delay = 1.5
    with pytest.raises(RasaUnavailable):
        client.send(sender, "hello", {}, "sms")
    assert not b.calls


def test_a_server_of_an_action_pair_answering_errors_is_reported_not_moved(two_rasas):
    a, b = two_rasas
    client = RasaClient(f"{a.url},{b.url}", token=a.token, timeout=2.0)
    a.down = True                                    # answers 503: it got the message
    sender = next(f"conv-{i}" for i in range(100) if client._servers(f"conv-{i}")[0] == a.url)
    with pytest.raises(RasaUnavailable):
        client.send(sender, "hello", {}, "sms")
    assert not b.calls


def test_the_gateway_reads_a_list_of_rasa_servers(make_app, two_rasas):
    a, b = two_rasas
    app = make_app(rasa_url=f"{a.url},{b.url}", actions_url=f"http://127.0.0.1:{_free_port()}, {a.url}")
    gw = app.extensions["helpline"]
    assert gw.rasa.urls == [a.url, b.url]
    # readiness: one Rasa and one action server answering is enough to take traffic
    a.stop()
    resp = app.test_client().get("/readyz")
    assert resp.get_json()["checks"]["rasa"] is True


def test_gateways_and_workers_starting_together_migrate_a_new_postgresql_database_once(pg_url):
    """Four processes (two gateways, two workers) start at once on an empty schema: one migrates,
    the others wait for it (an advisory lock) and find the schema at head."""
    code = "import sys; from webhook.db import upgrade; upgrade(sys.argv[1])"
    procs = [subprocess.Popen([sys.executable, "-c", code, pg_url], cwd=ROOT, stderr=subprocess.PIPE)
             for _ in range(4)]
    errors = [p.communicate(timeout=180)[1].decode(errors="replace")[-500:] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    engine = create_engine(pg_url, future=True)
    try:
        assert {"messages", "outbox", "cases", "alembic_version"} <= set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar() == 1
    finally:
        engine.dispose()


def test_gateway_processes_starting_together_on_a_new_database_all_start(pg_url):
    """gunicorn starts its processes at once: each builds the app (migrations, the first canned
    responses); none may fail because another did the same a moment before (it once did: a
    duplicate canned response stopped a process from booting and gunicorn with it)."""
    import os

    import yaml

    code = ("from webhook.app import create_app; "
            "app = create_app({'run_dispatcher': False, 'webchat_enabled': False}); "
            "app.extensions['helpline'].close()")
    env = {**os.environ, "HELPLINE_DATABASE_URL": pg_url, "HELPLINE_SECRET_KEY": "s" * 48}
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stderr=subprocess.PIPE)
             for _ in range(4)]
    errors = [p.communicate(timeout=180)[1].decode(errors="replace")[-800:] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    expected = len(yaml.safe_load((ROOT / "data" / "console" / "canned_responses.yml").read_text("utf-8"))["responses"])
    engine = create_engine(pg_url, future=True)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM canned_responses").scalar() == expected
    finally:
        engine.dispose()


def test_a_rasa_server_whose_own_action_server_is_down_is_avoided(two_rasas):
    """One action server per Rasa server: when Rasa 1's is down (an empty answer), Rasa 1 is
    avoided for a while and the conversation's replay goes to Rasa 2, whose actions work."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Health(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/health" else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    up = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=up.serve_forever, daemon=True).start()
    a, b = two_rasas
    try:
        client = RasaClient(f"{a.url},{b.url}", token=a.token, timeout=3.0,
                            actions_url=f"http://127.0.0.1:{_free_port()},http://127.0.0.1:{up.server_address[1]}")
        sender = next(f"conv-{i}" for i in range(100) if client._servers(f"conv-{i}")[0] == a.url)
        client.send(sender, "hello", {}, "sms")
        assert client.last_server() == a.url
        assert client.actions_healthy(server=a.url) is False and client.actions_healthy(server=b.url) is True
        assert client.actions_healthy() is True                 # readiness: one is enough
        client.avoid(a.url)
        client.send(sender, "hello again", {}, "sms")
        assert client.last_server() == b.url and _senders(b) == {sender}
    finally:
        up.shutdown()
        up.server_close()
