"""Start the action server and the Rasa server on loopback, wait until both answer, then chat.
Children are stopped when the chat ends or on Ctrl-C."""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from bot import paths
from bot.messages import _

RASA_PORT = int(os.environ.get("HELPLINE_RASA_PORT", "5005"))
ACTIONS_PORT = int(os.environ.get("HELPLINE_ACTIONS_PORT", "5055"))


def _wait(url: str, proc: subprocess.Popen, timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.5)
    return False


def start_servers(model: Path, log_dir: Path = paths.ROOT / "var" / "log", rasa_port: int = RASA_PORT,
                  actions_port: int = ACTIONS_PORT, endpoints: Path = paths.ENDPOINTS,
                  extra_env: dict | None = None, token: str | None = None) -> list[subprocess.Popen]:
    """Start the action server and Rasa on loopback. Rasa's HTTP API is protected by a token
    (an open API would expose every conversation); the REST channel is what the gateway uses."""
    log_dir.mkdir(parents=True, exist_ok=True)
    env = _env(extra_env)
    token = token or os.environ.get("HELPLINE_RASA_TOKEN") or secrets.token_urlsafe(24)
    return [start_actions(actions_port, log_dir, env), start_rasa(model, rasa_port, token, endpoints, log_dir, env)]


def _env(extra_env: dict | None) -> dict:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "RASA_TELEMETRY_ENABLED": "false",
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1", **(extra_env or {})}


def start_actions(actions_port: int, log_dir: Path, env: dict) -> subprocess.Popen:
    # rasa_sdk binds 0.0.0.0 unless SANIC_HOST says otherwise: keep it on loopback
    return subprocess.Popen(
        [sys.executable, "-m", "rasa_sdk", "--actions", "actions", "-p", str(actions_port), "--cors", "http://127.0.0.1",
         "--logging-config_file", str(paths.ROOT / "bot" / "logging.yml")],
        cwd=paths.ROOT, env={**env, "SANIC_HOST": "127.0.0.1"}, stdout=open(log_dir / "actions.log", "ab"),
        stderr=subprocess.STDOUT, start_new_session=True)


def start_rasa(model: Path, rasa_port: int, token: str, endpoints: Path, log_dir: Path, env: dict) -> subprocess.Popen:
    """Rasa's HTTP API is protected by a token (an open API would expose every conversation)."""
    return subprocess.Popen(
        [sys.executable, "-m", "rasa", "run", "-i", "127.0.0.1", "-p", str(rasa_port), "-m", str(model),
         # "--auth-token=…": a token_urlsafe may begin with "-", which argparse would take for an option
         "--enable-api", f"--auth-token={token}", "--endpoints", str(endpoints),
         "--credentials", str(paths.CREDENTIALS), "--logging-config-file", str(paths.ROOT / "bot" / "logging.yml")],
        cwd=paths.ROOT, env=env, stdout=open(log_dir / "rasa.log", "ab"), stderr=subprocess.STDOUT,
        start_new_session=True)


def endpoints_yaml(actions_url: str, postgres: dict | None = None, redis: dict | None = None) -> str:
    """Rasa's endpoints file. Without ``postgres``/``redis``: trackers and locks in the Rasa
    process (one Rasa). With them, the scale-out shape: trackers in PostgreSQL (set
    POSTGRESQL_SCHEMA in Rasa's environment to keep them in their own schema) and conversation
    locks in Redis, so any Rasa server can take any conversation. docs/deploy.md shows the file."""
    lines = ["action_endpoint:", f'  url: "{actions_url.rstrip("/")}/webhook"']
    if postgres:
        lines += ["tracker_store:", "  type: SQL", "  dialect: postgresql",
                  f'  url: "{postgres.get("host", "127.0.0.1")}"', f'  port: {int(postgres.get("port", 5432))}',
                  f'  db: "{postgres["db"]}"', f'  username: "{postgres.get("user", "postgres")}"',
                  f'  password: "{postgres.get("password", "")}"']
    if redis:
        lines += ["lock_store:", "  type: redis", f'  url: "{redis.get("host", "127.0.0.1")}"',
                  f'  port: {int(redis.get("port", 6379))}', f'  db: {int(redis.get("db", 1))}',
                  f'  key_prefix: "{redis.get("prefix", "helpline")}"']
    return "\n".join(lines) + "\n"


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


def run_bot_and_chat(model: Path | None, chat: bool = True) -> int:
    if model is None:
        print(_("No trained model. Run `make model` first."), file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    procs = start_servers(model)
    try:
        print(_("Starting the bot (about 30 seconds)..."), flush=True)
        ok = _wait(f"http://127.0.0.1:{ACTIONS_PORT}/health", procs[0], 60) and \
            _wait(f"http://127.0.0.1:{RASA_PORT}/", procs[1], 180)
        if not ok:
            print(_("The bot did not start; see var/log/rasa.log and var/log/actions.log."), file=sys.stderr)
            return 1
        if not chat:
            print(_("Rasa on 127.0.0.1:%(r)s, actions on 127.0.0.1:%(a)s. Ctrl-C stops.") % {"r": RASA_PORT, "a": ACTIONS_PORT})
            while all(p.poll() is None for p in procs):
                time.sleep(1)
            return 1
        from bot.chat import chat_loop

        return chat_loop(f"http://127.0.0.1:{RASA_PORT}")
    finally:
        stop(procs)


def start_gateway(port: int, env: dict, log_dir: Path, worker: bool = True) -> list[subprocess.Popen]:
    procs = [subprocess.Popen([sys.executable, "-m", "bot.cli", "gateway", "--port", str(port)], cwd=paths.ROOT,
                              env=env, stdout=open(log_dir / "gateway.log", "ab"), stderr=subprocess.STDOUT,
                              start_new_session=True)]
    if worker:
        # after the gateway has migrated the database
        if not _wait(f"http://127.0.0.1:{port}/healthz", procs[0], 60):
            return procs
        procs.append(subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], cwd=paths.ROOT, env=env,
                                      stdout=open(log_dir / "worker.log", "ab"), stderr=subprocess.STDOUT,
                                      start_new_session=True))
    return procs


def system_env(rasa_port: int = RASA_PORT, actions_port: int = ACTIONS_PORT, gateway_port: int = 8000) -> dict:
    """One random token per run for each internal API unless the environment sets them."""
    return {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "3", "RASA_TELEMETRY_ENABLED": "false",
        "HELPLINE_RASA_URL": f"http://127.0.0.1:{rasa_port}",
        "HELPLINE_ACTIONS_URL": f"http://127.0.0.1:{actions_port}",
        "HELPLINE_RASA_TOKEN": os.environ.get("HELPLINE_RASA_TOKEN") or secrets.token_urlsafe(24),
        "HELPLINE_GATEWAY_URL": f"http://127.0.0.1:{gateway_port}",
        "HELPLINE_GATEWAY_TOKEN": os.environ.get("HELPLINE_GATEWAY_TOKEN") or secrets.token_urlsafe(24),
    }


def first_admin(env: dict, port: int) -> None:
    """A first console account on a new local database, so `make run` can be tried at once;
    its random password is printed this once (change it with `helpline staff password admin`)."""
    import secrets

    from webhook.app import Gateway
    from webhook.console import auth
    from webhook.settings import Settings

    settings = Settings.from_env({**os.environ, **env}, run_dispatcher=False)
    if settings.env == "production":
        return
    gw = Gateway(settings, migrate=False)
    try:
        if auth.active_staff(gw):
            print(_("Counsellor console: http://127.0.0.1:%(port)s/console/") % {"port": port}, flush=True)
            return
        password = secrets.token_urlsafe(12)
        auth.create_staff(gw, "admin", password, "admin", "Admin", actor="make run")
        print(_("Counsellor console: http://127.0.0.1:%(port)s/console/ (user admin, password %(password)s; "
                "shown once)") % {"port": port, "password": password}, flush=True)
    finally:
        gw.close()


def run_system(model: Path | None, port: int = 8000) -> int:
    """`make run`: Rasa, the action server, the gateway and the worker, all on loopback with
    SQLite. The web chat at http://127.0.0.1:<port>/ is the way to try it."""
    if model is None:
        print(_("No trained model. Run `make model` first."), file=sys.stderr)
        return 2
    log_dir = paths.ROOT / "var" / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    # SIGTERM (a supervisor, `timeout`) must stop the children too: they run in their own sessions
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    env = system_env(gateway_port=port)
    procs = start_servers(model, log_dir, extra_env=env, token=env["HELPLINE_RASA_TOKEN"])
    try:
        procs += start_gateway(port, env, log_dir)
        print(_("Starting the bot (about 30 seconds)..."), flush=True)
        ok = _wait(f"http://127.0.0.1:{ACTIONS_PORT}/health", procs[0], 60) and \
            _wait(f"http://127.0.0.1:{RASA_PORT}/", procs[1], 180) and \
            _wait(f"http://127.0.0.1:{port}/healthz", procs[2], 60)
        if not ok or len(procs) < 4:
            print(_("The system did not start; see the logs in var/log/."), file=sys.stderr)
            return 1
        print(_("Ready. Open http://127.0.0.1:%(port)s/ for the web chat. Ctrl-C stops everything.") % {"port": port},
              flush=True)
        first_admin(env, port)
        while all(p.poll() is None for p in procs):
            time.sleep(1)
        print(_("A process stopped; see the logs in var/log/."), file=sys.stderr)
        return 1
    finally:
        stop(procs)
