"""Fixtures for the fault tests: one whole system per module (the real Rasa with the trained
model, the real action server, the gateway served over HTTP, fake providers), a fresh gateway and
database for each test, and the processes a test kills.

Without the trained model or the PostgreSQL server the tests skip with the reason; in CI (CI set)
they fail instead, so a missing piece can never pass silently.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from bot import runner
from bot.paths import ROOT

PG_URL = os.environ.get("HELPLINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "faults: kills or cuts a part of the running system in the middle of traffic "
                   "(select with -m faults; needs the trained model, and PostgreSQL for one test)")


def need(reason: str) -> None:
    """Skip with the reason; in CI fail with it (a skipped safety test passes silently)."""
    if os.environ.get("CI"):
        pytest.fail(reason + " (CI must provide it)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def fault_model():
    from bot.paths import latest_model

    model = latest_model()
    if model is None:
        need("no trained model in models/: run `make model`")
    return model


# --- the system, once per module ---------------------------------------------------------------

@pytest.fixture(scope="module")
def system(fault_model, tmp_path_factory):
    from tests.system import System

    for attempt in range(3):
        sys_ = System(fault_model, tmp_path_factory.mktemp("faults"))
        try:
            sys_.start()
            break
        except (RuntimeError, OSError) as exc:
            # System picks its ports before starting anything: another process (a fake of ours,
            # a concurrent test) may take one in between; the action server, unlike Rasa, is not
            # retried on another port by System itself
            sys_.close()
            if "address already in use" not in str(exc).lower() or attempt == 2:
                raise
    try:
        # the model's first answer is slow (lazy loading): not while a test is timing replies
        requests.post(f"{sys_.rasa_url}/webhooks/rest/webhook", params={"token": sys_.rasa_token},
                      json={"sender": "warm-up", "message": "xin chao"}, timeout=120)
        yield sys_
    finally:
        sys_.close()


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL a child started in its own session (Rasa, the action server, a worker) and its
    children: no shutdown handler runs."""
    if proc is not None and proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if proc is not None:
        proc.wait(timeout=30)


class Rig:
    """One test's view of the module's system: its own gateway and database, the worker (a thread
    or ``helpline worker`` processes), and the processes it may kill and restart."""

    def __init__(self, system, tmp: Path):
        self.system, self.tmp = system, tmp
        self.workers: list = []                     # in-process Worker threads
        self.processes: list[subprocess.Popen] = []  # helpline worker processes
        self.worker_logs: list[Path] = []

    # --- processes of the module's system ------------------------------------------------------
    def ensure_running(self) -> None:
        """A previous test may have killed Rasa or the action server and failed before restarting."""
        s = self.system
        if s.actions.poll() is not None:
            self.restart_actions()
        if s.rasa.poll() is not None:
            s.start_rasa(same_port=True)

    def kill(self, proc: subprocess.Popen) -> None:
        kill(proc)

    def kill_rasa(self) -> None:
        kill(self.system.rasa)

    def restart_rasa(self) -> None:
        self.system.start_rasa(same_port=True)

    def kill_actions(self) -> None:
        kill(self.system.actions)

    def restart_actions(self) -> None:
        s = self.system
        s.actions = runner.start_actions(s.actions_port, s.log_dir, s.env)
        if not runner._wait(f"http://127.0.0.1:{s.actions_port}/health", s.actions, 120):
            raise RuntimeError("action server did not restart:\n" + s.log("actions.log")[-3000:])

    # --- the gateway ---------------------------------------------------------------------------
    def gateway(self, database_url: str | None = None, **overrides):
        """A new gateway on the system's port (the action server's escalations reach it), on a
        new database, with these settings."""
        s = self.system
        self.close_gateway()
        s.database_url = database_url or f"sqlite:///{self.tmp / 'gateway.db'}"
        s.overrides = {"dispatch_threads": 4, **overrides}
        s.start_gateway()
        s.gw.spool.dir = self.tmp / "spool"          # never the repository's var/spool
        return s.gw

    def close_gateway(self) -> None:
        s = self.system
        self.stop_workers()
        if s.server is not None:
            s.server.shutdown()
            s.server.server_close()
            s.server = None
        if s.app is not None:
            s.gw.close()
            s.app = None

    def worker_thread(self, interval: float = 0.5):
        from webhook.dispatcher import Worker

        worker = Worker(self.system.gw, interval=interval).start()
        self.workers.append(worker)
        return worker

    def worker_env(self) -> dict:
        """``helpline worker``'s environment: the same settings as the in-process gateway."""
        from webhook.settings import Settings

        cfg = self.system.settings()
        env = dict(self.system.env)
        for name, var in Settings._ENV.items():
            value = cfg.get(name)
            if value is not None and not isinstance(value, dict):
                env[var] = str(value)
        env["HELPLINE_RATE_LIMITS"] = "sms=0,telegram=0,zalo=0"
        return env

    def worker_process(self, interval: float = 0.5) -> subprocess.Popen:
        log = self.tmp / f"worker-{len(self.processes) + 1}.log"
        self.worker_logs.append(log)
        proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "worker", "--interval", str(interval)], cwd=ROOT,
                                env=self.worker_env(), stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.processes.append(proc)
        return proc

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers = []
        for proc in self.processes:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    kill(proc)
        self.processes = []

    def reset_fakes(self) -> None:
        for fake in (self.system.twilio, self.system.telegram, self.system.zalo):
            fake.reset()


@pytest.fixture
def rig(system, tmp_path):
    r = Rig(system, tmp_path)
    r.ensure_running()
    r.reset_fakes()
    try:
        yield r
    finally:
        r.close_gateway()
        r.reset_fakes()


# --- PostgreSQL: a schema of its own, connections the test can find and cut -----------------------

@dataclass
class Pg:
    url: str            # the gateway's URL: this schema, this application_name
    app_name: str       # what the cut looks for in pg_stat_activity
    schema: str
    admin: object       # an engine on the server outside the schema (AUTOCOMMIT)

    def cut(self) -> int:
        """Terminate every server connection of this test's gateway; how many there were."""
        from sqlalchemy import text

        with self.admin.connect() as conn:
            return conn.execute(text(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = :app AND pid <> pg_backend_pid()"), {"app": self.app_name}).scalar_one()


@pytest.fixture
def pg():
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    sep = "&" if "?" in PG_URL else "?"
    admin = create_engine(f"{PG_URL}{sep}application_name=helpline_fault_admin", future=True,
                          isolation_level="AUTOCOMMIT")
    try:
        with admin.connect():
            pass
    except OperationalError as exc:
        admin.dispose()
        need(f"PostgreSQL unreachable at {PG_URL} (HELPLINE_TEST_POSTGRES_URL): {type(exc.orig).__name__}")
    tag = uuid.uuid4().hex[:12]
    schema, app_name = f"helpline_fault_{tag}", f"helpline_fault_{tag}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield Pg(f"{PG_URL}{sep}options=-csearch_path%3D{schema}&application_name={app_name}", app_name, schema, admin)
    finally:
        pg = Pg("", app_name, schema, admin)
        pg.cut()                        # a connection left in a transaction would hold the drop up
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
