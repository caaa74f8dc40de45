"""Load benchmark: the scale-out shape against the single-process default, and one Rasa server
killed and restarted under load.

Three phases, one run, everything on this machine (the real Rasa with the trained model, the
real action server, the fake Telegram Bot API in this process driven by python-telegram-bot
inside the gateway):

1. single: the default `make run` shape: one Rasa, one action server, `helpline gateway`
   (threaded werkzeug) and `helpline worker`, SQLite.
2. scale-out: the same code, configuration only: a new PostgreSQL database for the gateway and
   Rasa's trackers (schema `rasa`), Redis for Rasa's conversation locks, two Rasa servers (each
   with its own action server), two gateway processes under gunicorn behind one address, two
   workers.
3. scale-out again, with Rasa server 1 killed (SIGKILL) a quarter of the way in and restarted
   on its port at once.

In each phase C concurrent clients post Telegram updates, each from a new chat (so "the reply"
is the first message the provider gets for that chat), 5% of them danger messages, and wait
for the first reply before posting again. Figures: messages per second, first-reply latency
p50/p95, and after the phase drains: lost (posted but not stored, not answered, or a reply not
delivered), duplicated (a delivery stored twice, or the provider receiving more messages than
the gateway's outbox sent), danger messages without the emergency numbers first or without a case.

Usage:  .venv/bin/python bench/load.py [--quick] [--out bench/results/load.json]
Needs PostgreSQL (HELPLINE_TEST_POSTGRES_URL, default postgresql://postgres@127.0.0.1:5432/test;
the run creates and drops its own database) and Redis (127.0.0.1:6379, db 1, its own key prefix).
"""
from __future__ import annotations

import os
import sys

# bench/queue.py would shadow the standard library's queue (urllib3 needs it)
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse
import json
import random
import secrets
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.gateway import MESSAGES, Arrivals, pct  # noqa: E402
from bot import runner  # noqa: E402
from bot.paths import latest_model  # noqa: E402
from tests.fakes import FakeTelegram  # noqa: E402
from tests.system import free_port  # noqa: E402

TG_SECRET = "load-bench-secret-0123456789"
DANGER = ["chong em dang cam dao doi giet em", "nó đang đánh tôi, cứu tôi với", "toi muon chet, khong muon song nua"]
PG_URL = os.environ.get("HELPLINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


class Shape:
    """A running system: its processes, its gateway address and its database."""

    def __init__(self, name: str, model: Path, tmp: Path, fake: FakeTelegram):
        self.name, self.model, self.fake = name, model, fake
        self.tmp = tmp / name
        self.log_dir = self.tmp / "log"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen] = {}
        self.rasa_token, self.api_token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self.gw_port = free_port()
        self.rasa_ports: list[int] = []
        self.rasa_env: list[dict] = []
        self.endpoints: list[Path] = []
        self.database_url = ""

    def env(self, **extra) -> dict:
        return runner._env({
            "HELPLINE_DATABASE_URL": self.database_url, "HELPLINE_SECRET_KEY": "l" * 48,
            "HELPLINE_GATEWAY_TOKEN": self.api_token, "HELPLINE_RASA_TOKEN": self.rasa_token,
            "HELPLINE_RASA_URL": ",".join(f"http://127.0.0.1:{p}" for p in self.rasa_ports),
            "HELPLINE_GATEWAY_URL": f"http://127.0.0.1:{self.gw_port}",
            "HELPLINE_ESCALATION_JOURNAL": str(self.tmp / "escalations.jsonl"),
            "HELPLINE_PUBLIC_URL": "https://helpline.example.org",
            "TELEGRAM_TOKEN": self.fake.token, "TELEGRAM_SECRET_TOKEN": TG_SECRET,
            "TELEGRAM_API_BASE": self.fake.url + "/bot",
            # provider rate limits are policy, not capacity: off here
            "HELPLINE_RATE_LIMITS": "telegram=0", "HELPLINE_DISPATCH_THREADS": "6",
            **extra})

    def start_rasa(self, i: int) -> float:
        t0 = time.time()
        self.procs[f"rasa{i}"] = runner.start_rasa(self.model, self.rasa_ports[i], self.rasa_token, self.endpoints[i],
                                                   self.log_dir, self.rasa_env[i])
        assert runner._wait(f"http://127.0.0.1:{self.rasa_ports[i]}/", self.procs[f"rasa{i}"], 600), \
            f"Rasa {i} did not start: see {self.log_dir}/rasa.log"
        return time.time() - t0

    def start_bots(self, n: int, postgres: dict | None = None, redis: dict | None = None, extra_env: dict | None = None):
        actions_ports = [free_port() for _ in range(n)]
        self.rasa_ports = [free_port() for _ in range(n)]
        self.endpoints = []
        for i in range(n):
            path = self.tmp / f"endpoints{i}.yml"
            path.write_text(runner.endpoints_yaml(f"http://127.0.0.1:{actions_ports[i]}", postgres, redis))
            self.endpoints.append(path)
        env = self.env(HELPLINE_ACTIONS_URL=",".join(f"http://127.0.0.1:{p}" for p in actions_ports),
                       **(extra_env or {}))
        self.rasa_env = [env] * n
        for i in range(n):
            self.procs[f"actions{i}"] = runner.start_actions(actions_ports[i], self.log_dir, env)
        for i in range(n):          # one after the other: the first creates the tracker tables
            self.start_rasa(i)
        for i in range(n):
            assert runner._wait(f"http://127.0.0.1:{actions_ports[i]}/health", self.procs[f"actions{i}"], 120)
        return env

    def kill_rasa(self, i: int) -> None:
        os.killpg(self.procs[f"rasa{i}"].pid, signal.SIGKILL)
        self.procs[f"rasa{i}"].wait()

    def stop(self) -> None:
        runner.stop(list(self.procs.values()))


def _started(start):
    """A shape whose processes are stopped again when it fails to start (no orphans)."""
    def wrapper(*args, **kwargs) -> Shape:
        box: list[Shape] = []
        try:
            return start(box, *args, **kwargs)
        except BaseException:
            if box:
                box[0].stop()
            raise
    return wrapper


@_started
def start_single(box: list, model: Path, tmp: Path, fake: FakeTelegram) -> Shape:
    s = Shape("single", model, tmp, fake)
    box.append(s)
    s.database_url = f"sqlite:///{s.tmp / 'gateway.db'}"
    env = s.start_bots(1)
    procs = runner.start_gateway(s.gw_port, {**env, "HELPLINE_PORT": str(s.gw_port)}, s.log_dir)
    s.procs["gateway"], s.procs["worker"] = procs[0], procs[1]
    return s


@_started
def start_scaleout(box: list, model: Path, tmp: Path, fake: FakeTelegram, db: str) -> Shape:
    s = Shape("scaleout", model, tmp, fake)
    box.append(s)
    base = PG_URL.rsplit("/", 1)[0]
    s.database_url = f"{base}/{db}"
    host = base.split("@", 1)[-1].split(":")[0] or "127.0.0.1"
    port = int(base.rsplit(":", 1)[-1]) if base.count(":") > 1 else 5432
    env = s.start_bots(2, postgres={"host": host, "port": port, "db": db, "user": "postgres"},
                       redis={"prefix": db.replace("_", "")}, extra_env={"POSTGRESQL_SCHEMA": "rasa"})
    s.procs["gunicorn"] = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:webhook.gunicorn_conf", "webhook.serve:wsgi_app()"],
        cwd=ROOT, env={**env, "HELPLINE_BIND": f"127.0.0.1:{s.gw_port}", "HELPLINE_GATEWAY_PROCESSES": "2"},
        stdout=open(s.log_dir / "gateway.log", "ab"), stderr=subprocess.STDOUT, start_new_session=True)
    assert runner._wait(f"http://127.0.0.1:{s.gw_port}/healthz", s.procs["gunicorn"], 120), "gunicorn did not start"
    for i in range(2):
        s.procs[f"worker{i}"] = subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], cwd=ROOT, env=env,
                                                 stdout=open(s.log_dir / f"worker{i}.log", "ab"),
                                                 stderr=subprocess.STDOUT, start_new_session=True)
    return s


def create_database(name: str) -> None:
    engine = create_engine(PG_URL, isolation_level="AUTOCOMMIT", future=True)
    with engine.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    engine = create_engine(f"{PG_URL.rsplit('/', 1)[0]}/{name}", future=True)
    with engine.begin() as c:
        c.execute(text("CREATE SCHEMA rasa"))
    engine.dispose()


def drop_database(name: str) -> None:
    engine = create_engine(PG_URL, isolation_level="AUTOCOMMIT", future=True)
    with engine.connect() as c:
        c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"), {"d": name})
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    engine.dispose()


def machine_cpu() -> float:
    """CPU seconds the whole machine has been busy (every process of the shape, PostgreSQL,
    Redis, this driver): /proc/stat, Linux."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def cpu_by_part(shape: Shape) -> dict[str, float]:
    """CPU seconds used so far per part of the system: each started process with everything in
    its session (gunicorn's workers, Rasa's children), PostgreSQL's and Redis's processes, and
    this driver (clients and the fake provider). /proc, Linux."""
    names = {p.pid: name.rstrip("0123456789") for name, p in shape.procs.items()}
    tick, out = os.sysconf("SC_CLK_TCK"), {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2:].split()
        session, cpu = int(fields[3]), (int(fields[11]) + int(fields[12])) / tick
        if session in names:
            part = names[session]
        elif int(entry.name) == os.getpid():
            part = "driver"
        elif comm.startswith("postgres"):
            part = "postgresql"
        elif comm.startswith("redis"):
            part = "redis"
        else:
            continue
        out[part] = out.get(part, 0.0) + cpu
    return out


def run_phase(shape: Shape, arrivals: Arrivals, first_chat: int, seconds: float, clients: int,
              kill_at: float | None = None) -> dict:
    rnd = random.Random(first_chat)
    lock = threading.Lock()
    counter = iter(range(10_000_000))
    latencies, posted, danger, errors, no_reply = [], {}, {}, [0], [0]
    events: dict = {}
    started, cpu0, parts0 = time.perf_counter(), machine_cpu(), cpu_by_part(shape)
    stop_at = started + seconds
    url = f"http://127.0.0.1:{shape.gw_port}/webhooks/telegram"

    def client(_: int):
        http = requests.Session()
        while time.perf_counter() < stop_at:
            with lock:
                i = next(counter)
            chat, update_id = first_chat + i, first_chat + i
            is_danger = rnd.random() < 0.05
            body = rnd.choice(DANGER if is_danger else MESSAGES)
            update = shape.fake.make_update(update_id, chat, body)
            t0 = time.perf_counter()
            try:
                code = http.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET},
                                 timeout=30).status_code
            except requests.RequestException:
                code = 0
            if code != 200:
                with lock:
                    errors[0] += 1
                continue
            with lock:
                posted[update_id] = chat
                if is_danger:
                    danger[update_id] = chat
            at = arrivals.wait(chat, 1, timeout=120)
            with lock:
                if at is None:
                    no_reply[0] += 1
                else:
                    latencies.append(at - t0)

    def killer():
        time.sleep(kill_at)
        events["killed_at_s"] = round(time.perf_counter() - started, 1)
        shape.kill_rasa(0)
        events["restart_s"] = round(shape.start_rasa(0), 1)
        events["back_at_s"] = round(time.perf_counter() - started, 1)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    if kill_at is not None:
        threads.append(threading.Thread(target=killer))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed, cpu = time.perf_counter() - started, machine_cpu() - cpu0
    parts = {k: v - parts0.get(k, 0.0) for k, v in cpu_by_part(shape).items()}
    result = {"clients": clients, "seconds": round(elapsed, 1), "posted": len(posted), "http_errors": errors[0],
              "messages_per_s": round(len(latencies) / elapsed, 2),
              "first_reply_p50_ms": round(1000 * pct(latencies, 50), 1) if latencies else None,
              "first_reply_p95_ms": round(1000 * pct(latencies, 95), 1) if latencies else None,
              "no_first_reply_in_120s": no_reply[0],
              "machine_cpu_busy": round(cpu / (elapsed * (os.cpu_count() or 1)), 2),
              "cpu_ms_per_message": round(1000 * cpu / max(1, len(latencies)), 1),
              "cpu_ms_per_message_by_part": {k: round(1000 * v / max(1, len(latencies)), 1)
                                             for k, v in sorted(parts.items()) if v > 0}, **events}
    result.update(settle(shape, posted, danger, first_chat))
    return result


def settle(shape: Shape, posted: dict, danger: dict, first_chat: int, timeout: float = 600) -> dict:
    """Wait until the phase's messages are answered and replies out, then count what was lost
    or doubled, from the gateway's database and the fake provider's record."""
    engine = create_engine(shape.database_url, future=True)
    low, high = first_chat, first_chat + 10_000_000
    in_run = (f"channel = 'telegram' and cast(provider_msg_id as bigint) between {low} and {high}"
              if not shape.database_url.startswith("sqlite") else
              f"channel = 'telegram' and cast(provider_msg_id as integer) between {low} and {high}")
    t0 = time.time()
    with engine.connect() as c:
        while time.time() - t0 < timeout:
            waiting = c.execute(text(f"select count(*) from messages where {in_run} and state in ('pending','deferred')")
                                ).scalar()
            unsent = c.execute(text("select count(*) from outbox where state in ('queued','sending')")).scalar()
            c.commit()
            if not waiting and not unsent:
                break
            time.sleep(1)
        time.sleep(2)
        rows = c.execute(text(f"select provider_msg_id, state, conversation_id, id from messages where {in_run}")).all()
        stored = [int(r[0]) for r in rows]
        convs = {r[2] for r in rows} or {-1}
        conv_list = ",".join(map(str, convs))
        not_answered = sum(1 for r in rows if r[1] != "answered")
        sent_rows = c.execute(text(f"select count(*) from outbox where state in ('sent','delivered') "
                                   f"and conversation_id in ({conv_list})")).scalar()
        undelivered = c.execute(text(f"select count(*) from outbox where state not in ('sent','delivered') "
                                     f"and conversation_id in ({conv_list})")).scalar()
        no_reply = c.execute(text(f"select count(*) from messages m where {in_run} and not exists "
                                  f"(select 1 from outbox o where o.source_message_id = m.id)")).scalar()
        by_provider_id = {int(r[0]): r[2] for r in rows}
        danger_convs = {by_provider_id[u] for u in danger if u in by_provider_id}
        with_case = {r[0] for r in c.execute(text(
            f"select conversation_id from cases where risk in ('high','imminent') "
            f"and conversation_id in ({conv_list})"))}
    engine.dispose()
    received = [m for m in shape.fake.sent if low <= int(m["chat_id"]) <= high]
    first_by_chat: dict[int, str] = {}
    for m in received:
        first_by_chat.setdefault(int(m["chat_id"]), m["text"])
    # the verified emergency numbers (the counselling line is offered only while verified and open)
    danger_without_numbers = sum(1 for chat in danger.values()
                                 if not all(n in first_by_chat.get(chat, "") for n in ("113", "115", "111")))
    lost = len(set(posted) - set(stored)) + not_answered + undelivered + no_reply
    return {"drained_after_s": round(time.time() - t0, 1), "stored": len(stored),
            "duplicated_messages": len(stored) - len(set(stored)), "lost": lost,
            "replies_sent": sent_rows, "replies_received_by_provider": len(received),
            "duplicated_replies": len(received) - sent_rows,
            "danger_messages": len(danger), "danger_without_numbers_first": danger_without_numbers,
            "danger_without_case": len(danger_convs - with_case) + (len(danger) - len(danger_convs))}


def storage(database_url: str) -> dict:
    """Bytes on disk per stored message: the gateway's tables (messages, replies, cases,
    statistics, audit) and Rasa's trackers (schema rasa), indexes included."""
    engine = create_engine(database_url, future=True)
    with engine.connect() as c:
        messages = c.execute(text("select count(*) from messages")).scalar() or 1
        replies = c.execute(text("select count(*) from outbox")).scalar()
        sizes = dict(c.execute(text(
            "select n.nspname, sum(pg_total_relation_size(cl.oid)) from pg_class cl "
            "join pg_namespace n on n.oid = cl.relnamespace where cl.relkind = 'r' "
            "and n.nspname in ('public', 'rasa') group by n.nspname")).all())
    engine.dispose()
    return {"messages": messages, "replies": replies,
            "gateway_bytes_per_message": round(int(sizes.get("public", 0)) / messages),
            "rasa_tracker_bytes_per_message": round(int(sizes.get("rasa", 0)) / messages)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short phases (a smoke run, not for the figures)")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "load.json")
    args = ap.parse_args()
    model = latest_model()
    if model is None:
        print("no trained model: run `make model` first", file=sys.stderr)
        return 2
    steady, killed = (20.0, 60.0) if args.quick else (90.0, 150.0)
    fake = FakeTelegram().start()
    arrivals = Arrivals(fake)
    db = "helpline_load_" + secrets.token_hex(4)
    out = {"machine": {"cpus": os.cpu_count()}, "clients": args.clients}
    with tempfile.TemporaryDirectory(prefix="helpline-load-") as tmp:
        tmp = Path(tmp)
        single = start_single(model, tmp, fake)
        try:
            run_phase(single, arrivals, 10_000_000, 10.0, args.clients)         # warm-up, not counted
            out["single"] = run_phase(single, arrivals, 20_000_000, steady, args.clients)
            print(json.dumps({"single": out["single"]}), flush=True)
        finally:
            single.stop()
        create_database(db)
        try:
            scale = start_scaleout(model, tmp, fake, db)
            try:
                run_phase(scale, arrivals, 30_000_000, 10.0, args.clients)
                out["scaleout"] = run_phase(scale, arrivals, 40_000_000, steady, args.clients)
                print(json.dumps({"scaleout": out["scaleout"]}), flush=True)
                out["scaleout_rasa_killed"] = run_phase(scale, arrivals, 50_000_000, killed, args.clients,
                                                        kill_at=killed / 4)
                print(json.dumps({"scaleout_rasa_killed": out["scaleout_rasa_killed"]}), flush=True)
                out["storage"] = storage(scale.database_url)
            finally:
                scale.stop()
        finally:
            drop_database(db)
            fake.stop()
    a, b = out["single"], out["scaleout"]
    out["ratio"] = {"messages_per_s": round(b["messages_per_s"] / a["messages_per_s"], 2) if a["messages_per_s"] else None,
                    "p95": round(b["first_reply_p95_ms"] / a["first_reply_p95_ms"], 2)
                    if a["first_reply_p95_ms"] else None}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, ensure_ascii=False))
    print(json.dumps(out["ratio"]))
    bad = sum(out[k]["lost"] + out[k]["duplicated_messages"] + out[k]["duplicated_replies"] +
              out[k]["danger_without_numbers_first"] + out[k]["danger_without_case"]
              for k in ("single", "scaleout", "scaleout_rasa_killed"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
