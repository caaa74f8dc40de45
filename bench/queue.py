"""Counsellors' queue benchmark (issue 4): how fast a danger message reaches a counsellor's screen,
and whether twenty counsellors pressing "take the next case" at once ever get the same case.

One run, everything on loopback: the gateway and its worker as subprocesses (`helpline gateway`,
`helpline worker`, as `make run` starts them), a stand-in Rasa in its own process
(`tests.fakes.rasa.FakeRasa`, one instant reply, so Rasa does not dominate), the fake Telegram
Bot API and the console clients in this process.

1. webhook -> console latency, on a fresh PostgreSQL schema and on the SQLite default: one
   counsellor logged in and connected to the live feed (`GET /console/events`, server-sent events,
   read with `requests` in a thread); N danger messages ("chồng tôi đang cầm dao dọa giết tôi",
   imminent by the shared rules) as Telegram webhook POSTs, one at a time, each from a new chat,
   so each opens one new case. Measured: from sending the POST to the `opened` event of that case
   arriving at the client (matched by case id: the case's contact is the chat that wrote).
   Idle, then again under background load (non-danger messages at --load-rate per second).
2. 20 counsellors racing for 1,000 open cases (PostgreSQL): cases made in this process
   (`pipeline.receive` + `pipeline.open_case`), 20 accounts logged in over HTTP, each in its own
   thread calling `POST /console/api/next` until 404. Verified from the database: every case
   claimed exactly once, by the client that was told it won; no id reported twice; exactly one
   `claimed` event per case; a supervisor's live feed saw every claim. Then the same race directly
   against `webhook.queue.claim_next` with 20 threads in this process (no HTTP), and both races
   again on SQLite for comparison.

Usage:  .venv/bin/python bench/queue.py [--quick] [--out reports/bench_queue.json]
Needs PostgreSQL at --pg (default postgresql://postgres@127.0.0.1:5432/test); each run uses its
own schemas and drops them at the end (also on Ctrl-C / SIGTERM). Nothing leaves 127.0.0.1.
"""
from __future__ import annotations

import os
import sys

# `python bench/queue.py` puts bench/ first on sys.path, where this file would shadow the standard
# library's `queue` (urllib3, concurrent.futures and the gateway's dispatcher import it): drop it.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import secrets  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

import requests  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.gateway import pct  # noqa: E402
from bot import runner  # noqa: E402
from bot.understanding import understand  # noqa: E402
from tests.fakes import FakeTelegram  # noqa: E402
from tests.system import free_port  # noqa: E402

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
TG_SECRET = "bench-queue-secret"
PASSWORD = "bench-" + secrets.token_urlsafe(12)
DANGER = "chồng tôi đang cầm dao dọa giết tôi"
CHATTER = ["cho hỏi số điện thoại đường dây nóng", "lệnh cấm tiếp xúc là gì", "tro giup phap ly mien phi o dau",
           "bạo lực gia đình bị phạt thế nào", "o Tam Ky co cho nao ho tro khong"]
COUNSELLORS = 20
# `python -m tests.fakes.rasa PORT TOKEN` with a listen backlog of 128 instead of 5: twenty claims
# opening their first connection to Rasa at once (the pause event) overflow a backlog of 5, and
# the dropped SYNs come back after 1 s (TCP's retransmit), which is the fake's cost, not ours.
FAKE_RASA = """
import sys, threading, time
from http.server import ThreadingHTTPServer
from tests.fakes.rasa import FakeRasa
class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
fake = FakeRasa(token=sys.argv[2])
fake.server.server_close()
fake.server = Server(("127.0.0.1", int(sys.argv[1])), fake.server.RequestHandlerClass)
threading.Thread(target=fake.server.serve_forever, daemon=True).start()
while True:
    time.sleep(3600)
"""


def ms(seconds):
    return None if seconds is None else round(1000 * seconds, 1)


def stats(values: list[float]) -> dict:
    """p50/p95/max in ms of a list of seconds."""
    if not values:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "max_ms": None}
    return {"n": len(values), "p50_ms": ms(pct(values, 50)), "p95_ms": ms(pct(values, 95)), "max_ms": ms(max(values))}


# --- the processes and databases of one run ---------------------------------------------------------

class Run:
    """Everything started by this run, so that one `close()` stops and drops it all."""

    def __init__(self, pg_base: str, tmp: Path):
        self.pg_base, self.tmp = pg_base, tmp
        self.log_dir = tmp / "log"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.procs: list[subprocess.Popen] = []
        self.schemas: list[str] = []
        self.gateways: list = []            # in-process Gateway objects (engines to dispose)
        self.admin = create_engine(pg_base, future=True)
        self.telegram = FakeTelegram().start()
        self.rasa_token = secrets.token_urlsafe(16)
        self.rasa_port = free_port()
        self.rasa = subprocess.Popen([sys.executable, "-c", FAKE_RASA, str(self.rasa_port), self.rasa_token],
                                     cwd=ROOT, env=runner._env({}), stdout=open(self.log_dir / "fake_rasa.log", "ab"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(self.rasa)
        if not runner._wait(f"http://127.0.0.1:{self.rasa_port}/?token={self.rasa_token}", self.rasa, 30):
            self.close()
            raise RuntimeError(f"the stand-in Rasa did not start; see {self.log_dir / 'fake_rasa.log'}")
        self.update_id = 500_000_000
        self.lock = threading.Lock()

    # databases
    def pg_url(self, label: str) -> str:
        schema = f"bench_queue_{label}_{uuid.uuid4().hex[:8]}"
        with self.admin.begin() as c:
            c.execute(text(f'CREATE SCHEMA "{schema}"'))
        self.schemas.append(schema)
        return f"{self.pg_base}{'&' if '?' in self.pg_base else '?'}options=-csearch_path%3D{schema}"

    def sqlite_url(self, label: str) -> str:
        return f"sqlite:///{self.tmp / (label + '.db')}"

    def env(self, database_url: str, port: int) -> dict:
        return runner._env({
            "HELPLINE_DATABASE_URL": database_url, "HELPLINE_SECRET_KEY": "q" * 48,
            "HELPLINE_GATEWAY_TOKEN": secrets.token_urlsafe(16),
            "HELPLINE_RASA_URL": f"http://127.0.0.1:{self.rasa_port}", "HELPLINE_RASA_TOKEN": self.rasa_token,
            "HELPLINE_ACTIONS_URL": "", "HELPLINE_PORT": str(port),
            # http, so the console cookie is not `Secure` (requests would not send it to 127.0.0.1)
            "HELPLINE_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "HELPLINE_ESCALATION_JOURNAL": str(self.tmp / "escalations.jsonl"),
            "TELEGRAM_TOKEN": self.telegram.token, "TELEGRAM_SECRET_TOKEN": TG_SECRET,
            "TELEGRAM_API_BASE": self.telegram.url + "/bot",
            # provider rate limits are policy, not capacity; no unclaimed-case alerts mid-race
            "HELPLINE_RATE_LIMITS": "telegram=0", "HELPLINE_ALERT_AFTER": "imminent=3600,high=3600",
            "HELPLINE_CONSOLE_IDLE_MINUTES": "120",
        })

    def gateway_here(self, env: dict, staff: list[tuple[str, str]]):
        """An in-process Gateway on the same database (migrates it), with console accounts."""
        from webhook.app import Gateway
        from webhook.console import auth
        from webhook.settings import Settings

        gw = Gateway(Settings.from_env(env, run_dispatcher=False))
        self.gateways.append(gw)
        for name, role in staff:
            auth.create_staff(gw, name, PASSWORD, role)
        return gw

    def start_gateway(self, env: dict) -> list[subprocess.Popen]:
        port = int(env["HELPLINE_PORT"])
        procs = runner.start_gateway(port, env, self.log_dir)
        self.procs += procs
        if len(procs) < 2 or not runner._wait(f"http://127.0.0.1:{port}/healthz", procs[0], 60):
            raise RuntimeError(f"the gateway did not start; see {self.log_dir / 'gateway.log'}")
        return procs

    def stop(self, procs: list[subprocess.Popen]) -> None:
        runner.stop(procs)
        self.procs = [p for p in self.procs if p not in procs]

    def next_update(self) -> int:
        with self.lock:
            self.update_id += 1
            return self.update_id

    def close(self) -> list[str]:
        problems = []
        runner.stop(self.procs)
        self.procs = []
        for gw in self.gateways:
            try:
                gw.close()
            except Exception as exc:  # noqa: BLE001 - cleanup goes on
                problems.append(f"gateway close: {exc!r}")
        self.telegram.stop()
        for schema in self.schemas:
            try:
                with self.admin.begin() as c:
                    c.execute(text("SET LOCAL lock_timeout = '15s'"))
                    c.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            except Exception as exc:  # noqa: BLE001
                problems.append(f"could not drop schema {schema} ({type(exc).__name__}): DROP SCHEMA \"{schema}\" CASCADE")
        self.admin.dispose()
        return problems


def post_update(run: Run, base: str, session: requests.Session, chat_id: int, body: str) -> int:
    update = run.telegram.make_update(run.next_update(), chat_id, body)
    r = session.post(f"{base}/webhooks/telegram", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET},
                     timeout=30)
    return r.status_code


# --- a console client ------------------------------------------------------------------------------

class Console:
    """One logged-in counsellor: a requests session with the `hl_console` cookie and the CSRF token."""

    def __init__(self, base: str, username: str):
        self.base, self.username = base, username
        self.s = requests.Session()
        self.s.trust_env = False
        page = self.s.get(f"{base}/console/login", timeout=10).text
        login_csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        r = self.s.post(f"{base}/console/login", data={"username": username, "password": PASSWORD, "csrf": login_csrf},
                        allow_redirects=False, timeout=30)
        if r.status_code != 302 or not self.s.cookies.get("hl_console"):
            raise RuntimeError(f"login of {username} failed: {r.status_code}")
        html = self.s.get(f"{base}/console/", timeout=10).text
        self.csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)

    def feed_from(self) -> int:
        return self.s.get(f"{self.base}/console/api/queue", timeout=10).json()["feed_from"]

    def take_next(self) -> requests.Response:
        return self.s.post(f"{self.base}/console/api/next", headers={"X-CSRF-Token": self.csrf}, timeout=30)


class Feed(threading.Thread):
    """The live feed of one console client, parsed as it arrives; arrival times are taken when the
    chunk holding the event is read from the socket."""

    def __init__(self, console: Console, after: int):
        super().__init__(daemon=True, name=f"feed-{console.username}")
        self.resp = console.s.get(f"{console.base}/console/events", params={"after": after}, stream=True,
                                  timeout=(5, 120))
        self.resp.raise_for_status()
        self.chunked = "chunked" in self.resp.headers.get("Transfer-Encoding", "").lower()
        self.cond = threading.Condition()
        self.opened: list[dict] = []        # {"case_id", "at" (server), "t" (perf_counter), "wall"}
        self.claimed: list[int] = []
        self.claimed_event_ids: list[int] = []
        self.actions: Counter = Counter()
        self.connected = threading.Event()
        self.error: str | None = None
        self.closing = False
        self.start()

    def run(self):
        buf = ""
        try:
            for chunk in self.resp.iter_content(chunk_size=None, decode_unicode=False):
                t, wall = time.perf_counter(), time.time()
                self.connected.set()
                buf += chunk.decode("utf-8")
                while "\n\n" in buf:
                    block, buf = buf.split("\n\n", 1)
                    self._block(block, t, wall)
        except Exception as exc:  # noqa: BLE001 - the stream ends with the run
            if not self.closing:
                self.error = repr(exc)
        finally:
            self.connected.set()
            with self.cond:
                self.cond.notify_all()

    def _block(self, block: str, t: float, wall: float):
        fields = {}
        for line in block.split("\n"):
            if line and not line.startswith(":") and ":" in line:
                key, _sep, value = line.partition(":")
                fields[key] = value[1:] if value.startswith(" ") else value
        if fields.get("event") != "case" or "data" not in fields:
            return
        data = json.loads(fields["data"])
        with self.cond:
            self.actions[data["action"]] += 1
            if data["action"] == "opened":
                self.opened.append({"case_id": data["case_id"], "at": data["at"], "t": t, "wall": wall})
            elif data["action"] == "claimed":
                self.claimed.append(data["case_id"])
                self.claimed_event_ids.append(data["id"])
            self.cond.notify_all()

    def wait_opened(self, index: int, timeout: float):
        deadline = time.perf_counter() + timeout
        with self.cond:
            while len(self.opened) <= index:
                left = deadline - time.perf_counter()
                if left <= 0 or not self.is_alive():
                    return None
                self.cond.wait(left)
            return self.opened[index]

    def close(self):
        self.closing = True
        try:
            self.resp.close()
        except Exception:  # noqa: BLE001
            pass


def cpu_snapshot(procs: dict) -> dict:
    """CPU seconds so far of our processes (Linux /proc) and of the whole machine (/proc/stat)."""
    import resource

    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for name, proc in procs.items():
        try:
            f = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[name] = (int(f[11]) + int(f[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out["bench+fake telegram"] = ru.ru_utime + ru.ru_stime
    cpu = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    out["_busy"], out["_all"] = (sum(cpu) - cpu[3] - cpu[4]) / tick, sum(cpu) / tick
    out["_t"] = time.perf_counter()
    return out


def cpu_used(before: dict, after: dict) -> dict:
    """Cores used in between, per process, and the machine's busy share (everything, PostgreSQL too)."""
    dt = after["_t"] - before["_t"]
    out = {k: round((after[k] - before[k]) / dt, 2) for k in after if not k.startswith("_") and k in before}
    out["machine_busy_pct"] = round(100 * (after["_busy"] - before["_busy"]) / max(1e-9, after["_all"] - before["_all"]))
    return out


def chat_of_case(gw, case_id: int) -> str | None:
    with gw.engine.connect() as c:
        row = c.execute(text("select ct.address_enc from cases k join conversations v on v.id = k.conversation_id "
                             "join contacts ct on ct.id = v.contact_id where k.id = :id"), {"id": case_id}).first()
    return gw.vault.open(bytes(row[0])) if row else None


# --- 1. webhook -> console latency -------------------------------------------------------------------

class Load:
    """Non-danger messages at `rate` per second over 50 conversations, from up to 10 threads."""

    def __init__(self, run: Run, base: str, rate: float):
        import queue as stdqueue

        self.run, self.base, self.rate = run, base, rate
        self.jobs: stdqueue.Queue = stdqueue.Queue(maxsize=100)
        self.stop_ev = threading.Event()
        self.sent = self.errors = self.dropped = 0
        self.post_times: list[float] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._poster, daemon=True) for _ in range(10)]
        self.ticker = threading.Thread(target=self._tick, daemon=True)

    def __enter__(self):
        self.started = time.perf_counter()
        for t in self.threads:
            t.start()
        self.ticker.start()
        return self

    def __exit__(self, *exc):
        self.stop_ev.set()
        self.elapsed = time.perf_counter() - self.started
        self.ticker.join(5)
        for t in self.threads:
            t.join(5)

    def _tick(self):
        k, nxt = 0, time.perf_counter()
        while not self.stop_ev.is_set():
            try:
                self.jobs.put_nowait((40_000_000 + k % 50, CHATTER[k % len(CHATTER)]))
            except Exception:  # noqa: BLE001 - full: the gateway is not keeping up
                with self.lock:
                    self.dropped += 1
            k += 1
            nxt += 1.0 / self.rate
            self.stop_ev.wait(max(0.0, nxt - time.perf_counter()))

    def _poster(self):
        s = requests.Session()
        s.trust_env = False
        while not self.stop_ev.is_set():
            try:
                chat, body = self.jobs.get(timeout=0.2)
            except Exception:  # noqa: BLE001 - empty
                continue
            t0 = time.perf_counter()
            try:
                ok = post_update(self.run, self.base, s, chat, body) == 200
            except requests.RequestException:
                ok = False
            with self.lock:
                self.sent += 1
                self.errors += not ok
                self.post_times.append(time.perf_counter() - t0)

    def summary(self) -> dict:
        return {"rate_target": self.rate, "sent": self.sent, "achieved_per_s": round(self.sent / self.elapsed, 1),
                "errors": self.errors, "not_sent_backlog": self.dropped, "post": stats(self.post_times)}


def measure_latency(run: Run, gw, base: str, feed: Feed, n: int, gap: float, chat0: int) -> dict:
    """N danger messages, one at a time; for each, POST -> its case's `opened` event at the client."""
    s = requests.Session()
    s.trust_env = False
    total, feed_part, post_t, matched = [], [], [], []
    timeouts = strays = http_errors = 0
    seen = len(feed.opened)
    for i in range(n):
        chat = chat0 + i
        t0, wall0 = time.perf_counter(), time.time()
        code = post_update(run, base, s, chat, DANGER)
        post_t.append(time.perf_counter() - t0)
        if code != 200:
            http_errors += 1
            continue
        found = None
        while found is None:
            ev = feed.wait_opened(seen, timeout=10.0)
            if ev is None:
                break
            seen += 1
            # the event's case must belong to this chat (the look-up runs after the arrival time
            # was taken, so it does not count); anything else is a late event of an earlier message
            if chat_of_case(gw, ev["case_id"]) == str(chat):
                found = ev
            else:
                strays += 1
        if found is None:
            timeouts += 1
            continue
        total.append(found["t"] - t0)
        feed_part.append(max(0.0, found["wall"] - found["at"]))
        matched.append((found["case_id"], wall0))
        time.sleep(gap)
    # where the time went, from the rows' own clocks (same machine): POST -> message stored ->
    # case opened (the dispatcher's queue, the rules, the case transaction) -> event at the client
    stored, dispatched = [], []
    with gw.engine.connect() as c:
        for case_id, wall0 in matched:
            received, opened = c.execute(text(
                "select m.received_at, k.created_at from cases k join messages m on m.conversation_id = "
                "k.conversation_id where k.id = :id order by m.id limit 1"), {"id": case_id}).first()
            stored.append(max(0.0, received - wall0))
            dispatched.append(max(0.0, opened - received))
    return {"messages": n, "measured": len(total), "timeouts": timeouts, "stray_events": strays,
            "http_errors": http_errors, "post_to_console": stats(total),
            "stages": {"post_to_stored": stats(stored), "stored_to_case_opened": stats(dispatched),
                       "case_opened_to_console": stats(feed_part)},
            "webhook_ack": stats(post_t), "p95_within_1s": bool(total) and pct(total, 95) <= 1.0}


def latency_phase(run: Run, db: str, n: int, gap: float, load_rate: float) -> dict:
    port = free_port()
    url = run.pg_url("latency") if db == "postgresql" else run.sqlite_url("latency")
    env = run.env(url, port)
    gw = run.gateway_here(env, [("watcher", "counsellor")])
    procs = run.start_gateway(env)
    base = f"http://127.0.0.1:{port}"
    feed = None
    try:
        console = Console(base, "watcher")
        feed = Feed(console, console.feed_from())
        if not feed.connected.wait(10):
            raise RuntimeError("the live feed did not connect")
        out = {"database": db, "feed_chunked": feed.chunked}
        measure_latency(run, gw, base, feed, 5, gap, 30_000_000)            # warm-up
        named = {"gateway": procs[0], "worker": procs[1], "fake rasa": run.rasa}
        c0 = cpu_snapshot(named)
        out["idle"] = measure_latency(run, gw, base, feed, n, gap, 31_000_000)
        out["idle"]["cpu_cores_used"] = cpu_used(c0, cpu_snapshot(named))
        print(f"  {db} idle: POST -> console p50/p95/max "
              f"{out['idle']['post_to_console']['p50_ms']}/{out['idle']['post_to_console']['p95_ms']}/"
              f"{out['idle']['post_to_console']['max_ms']} ms", flush=True)
        if load_rate > 0:
            with Load(run, base, load_rate) as load:
                time.sleep(1.0)
                c0 = cpu_snapshot(named)
                out["under_load"] = measure_latency(run, gw, base, feed, n, gap, 32_000_000)
                out["under_load"]["cpu_cores_used"] = cpu_used(c0, cpu_snapshot(named))
            out["under_load"]["load"] = load.summary()
            print(f"  {db} under {load_rate:g} msg/s: POST -> console p50/p95/max "
                  f"{out['under_load']['post_to_console']['p50_ms']}/{out['under_load']['post_to_console']['p95_ms']}/"
                  f"{out['under_load']['post_to_console']['max_ms']} ms", flush=True)
        out["feed_error"] = feed.error
        return out
    finally:
        if feed is not None:
            feed.close()
        run.stop(procs)


# --- 2. the race for the queue -----------------------------------------------------------------------

RISKS = ["imminent", "high", "high", "high", "medium", "medium", "medium", "medium", "medium", "medium"]


def make_cases(gw, n: int, chat0: int) -> float:
    """n open cases with a realistic mix (10% imminent, 30% high, 30% asked for a counsellor, 30%
    medium), each on its own new Telegram conversation. Their messages are marked answered so no
    worker hands them to Rasa in the middle of the race."""
    from webhook import pipeline
    from webhook.channels.base import Inbound

    t0 = time.perf_counter()

    def make(lo: int, hi: int):
        for i in range(lo, hi):
            r = pipeline.receive(gw, Inbound("telegram", str(chat0 + i), f"race-{chat0 + i}", text=DANGER))
            risk = RISKS[i % 10]
            pipeline.open_case(gw, r.conversation_id, risk, "domestic_violence", reason="bench", source="rules",
                               requested=risk == "medium" and i % 10 < 7)
    threads = [threading.Thread(target=make, args=(k * n // 4, (k + 1) * n // 4)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with gw.engine.begin() as c:
        c.execute(text("update messages set state = 'answered', answered_at = :now where state = 'pending'"),
                  {"now": time.time()})
        opened = c.execute(text("select count(*) from cases where status = 'open'")).scalar()
    assert opened == n, f"{opened} open cases instead of {n}"
    return time.perf_counter() - t0


def race(n_clients: int, take) -> dict:
    """n_clients threads, started together, each calling take(i) -> (status, case_id) until 'empty'."""
    wins: list[list[int]] = [[] for _ in range(n_clients)]
    lat: list[float] = []
    empty_lat: list[float] = []
    errors: list[str] = []
    spans = [[None, None] for _ in range(n_clients)]
    lock = threading.Lock()
    barrier = threading.Barrier(n_clients + 1)

    def client(i: int):
        barrier.wait()
        spans[i][0] = time.perf_counter()
        failures = 0
        while failures < 20:
            t0 = time.perf_counter()
            try:
                status, case_id = take(i)
            except Exception as exc:  # noqa: BLE001 - counted, and the client tries again
                status, case_id = "error", repr(exc)[:200]
            dt = time.perf_counter() - t0
            with lock:
                if status == "won":
                    wins[i].append(case_id)
                    lat.append(dt)
                elif status == "empty":
                    empty_lat.append(dt)
                else:
                    errors.append(str(case_id))
            if status == "empty":
                break
            failures += status == "error"
        spans[i][1] = time.perf_counter()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(n_clients)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    claims = sum(len(w) for w in wins)
    per_client = [len(w) / (b - a) for w, (a, b) in zip(wins, spans) if b and a and b > a]
    return {"wins": wins, "claims": claims, "elapsed_s": round(elapsed, 2),
            "claims_per_s": round(claims / elapsed, 1) if elapsed else None,
            "per_client_claims": {"min": min(len(w) for w in wins), "max": max(len(w) for w in wins),
                                  "mean": round(claims / n_clients, 1)},
            "per_client_claims_per_s": {"min": round(min(per_client), 1), "max": round(max(per_client), 1),
                                        "mean": round(sum(per_client) / len(per_client), 1)} if per_client else None,
            "claim_latency": stats(lat), "empty_answer_latency": stats(empty_lat),
            "errors": len(errors), "error_samples": errors[:5]}


def verify(gw, wins: list[list[int]], names: list[str], n: int) -> dict:
    """What the database says about the race, next to what the clients were told."""
    reported = [(cid, names[i]) for i, ids in enumerate(wins) for cid in ids]
    ids = [cid for cid, _ in reported]
    with gw.engine.connect() as c:
        cases = {r[0]: (r[1], r[2], r[3], r[4]) for r in c.execute(text(
            "select id, status, claimed_by, priority, created_at from cases"))}
        per_case = dict(c.execute(text("select case_id, count(*) from events where action = 'claimed' "
                                       "group by case_id")).all())
        claim_order = [r[0] for r in c.execute(text("select case_id from events where action = 'claimed' "
                                                    "order by id"))]
    status = Counter(v[0] for v in cases.values())
    claimed_ok = sum(1 for v in cases.values() if v[0] == "claimed" and v[1])
    owner_mismatch = sum(1 for cid, name in reported if cases.get(cid, (None, None))[1] != name)
    twice_reported = len(ids) - len(set(ids))
    events_not_one = sum(1 for cid in cases if per_case.get(cid, 0) != 1)
    events_extra = sum(max(0, k - 1) for k in per_case.values())
    # how far the claims strayed from the queue order (priority, then oldest first)
    queue_pos = {cid: k for k, cid in enumerate(sorted(cases, key=lambda cid: (cases[cid][2], cases[cid][3], cid)))}
    displacement = [abs(queue_pos[cid] - k) for k, cid in enumerate(claim_order) if cid in queue_pos]
    double_claims = twice_reported + events_extra
    ok = (len(cases) == n and claimed_ok == n and len(set(ids)) == n and twice_reported == 0
          and owner_mismatch == 0 and events_not_one == 0)
    return {"cases": len(cases), "status": dict(status), "claimed_with_owner": claimed_ok,
            "distinct_ids_reported": len(set(ids)), "ids_reported_twice": twice_reported,
            "owner_mismatch": owner_mismatch, "cases_without_exactly_one_claimed_event": events_not_one,
            "double_claims": double_claims,
            "queue_order_displacement": {"max": max(displacement) if displacement else None,
                                         "p95": pct(displacement, 95) if displacement else None},
            "ok": ok}


def race_phase(run: Run, db: str, n: int, via_http: bool) -> dict:
    names = [f"counsellor{i:02d}" for i in range(COUNSELLORS)]
    port = free_port()
    url = run.pg_url("race") if db == "postgresql" else run.sqlite_url(f"race_{'http' if via_http else 'inproc'}")
    env = run.env(url, port)
    staff = [(name, "counsellor") for name in names] + [("overseer", "supervisor")] if via_http else []
    gw = run.gateway_here(env, staff)
    made = make_cases(gw, n, 50_000_000 if via_http else 60_000_000)
    out: dict = {"database": db, "via": "HTTP POST /console/api/next" if via_http else "queue.claim_next in-process",
                 "cases": n, "counsellors": COUNSELLORS, "cases_made_s": round(made, 1)}
    if not via_http:
        from webhook import queue as hq

        def take(i):
            cid = hq.claim_next(gw, names[i])
            return ("won", cid) if cid is not None else ("empty", None)
        c0 = cpu_snapshot({"fake rasa": run.rasa})
        res = race(COUNSELLORS, take)
        out["cpu_cores_used"] = cpu_used(c0, cpu_snapshot({"fake rasa": run.rasa}))
    else:
        procs = run.start_gateway(env)
        base = f"http://127.0.0.1:{port}"
        feed = None
        try:
            clients = [Console(base, name) for name in names]
            overseer = Console(base, "overseer")
            feed = Feed(overseer, overseer.feed_from())
            if not feed.connected.wait(10):
                raise RuntimeError("the live feed did not connect")

            named = {"gateway": procs[0], "worker": procs[1], "fake rasa": run.rasa}
            c0 = cpu_snapshot(named)

            def take(i):
                r = clients[i].take_next()
                if r.status_code == 200:
                    return "won", r.json()["case_id"]
                if r.status_code == 404:
                    return "empty", None
                return "error", f"HTTP {r.status_code} {r.text[:100]}"
            res = race(COUNSELLORS, take)
            # the supervisor's live feed must show every claim
            # (until it has them all, or nothing new came for 3 s)
            deadline, last, quiet_since = time.time() + 30, -1, time.time()
            while time.time() < deadline and len(set(feed.claimed)) < n and time.time() - quiet_since < 3:
                if len(feed.claimed) != last:
                    last, quiet_since = len(feed.claimed), time.time()
                time.sleep(0.1)
            out["cpu_cores_used"] = cpu_used(c0, cpu_snapshot(named))
            # a missed event whose id is below one the stream had already sent was committed after
            # that later id: the stream's cursor (`id > after`) had moved past it
            with gw.engine.connect() as c:
                claimed_ids = [r[0] for r in c.execute(text("select id from events where action = 'claimed'"))]
            missed = sorted(set(claimed_ids) - set(feed.claimed_event_ids))
            first_seen = {}
            for k, eid in enumerate(feed.claimed_event_ids):
                first_seen.setdefault(eid, k)
            out["feed"] = {"claimed_events_seen": len(feed.claimed), "distinct": len(set(feed.claimed)),
                           "missed": n - len(set(feed.claimed)), "error": feed.error,
                           "missed_below_an_id_already_sent": sum(
                               1 for eid in missed if feed.claimed_event_ids and eid < max(feed.claimed_event_ids)),
                           "missed_event_ids_sample": missed[:10],
                           "sent_out_of_order": sum(1 for a, b in zip(feed.claimed_event_ids, feed.claimed_event_ids[1:])
                                                    if b <= a)}
        finally:
            if feed is not None:
                feed.close()
            run.stop(procs)
    wins = res.pop("wins")
    out.update(res)
    out["verify"] = verify(gw, wins, names, n)
    v = out["verify"]
    print(f"  {db} {'HTTP' if via_http else 'in-process'}: {out['claims']} claims in {out['elapsed_s']} s = "
          f"{out['claims_per_s']}/s; latency p50/p95 {out['claim_latency']['p50_ms']}/{out['claim_latency']['p95_ms']} ms; "
          f"double claims {v['double_claims']}; verified {'OK' if v['ok'] else 'FAILED'}"
          + (f"; feed missed {out['feed']['missed']}" if "feed" in out else ""), flush=True)
    return out


# --- report ------------------------------------------------------------------------------------------

def table(result: dict) -> str:
    lines = ["", "### Webhook -> console (`opened` event at a logged-in client), ms",
             "", "| database | load | n | p50 | p95 | max | p95 of: POST->stored | stored->case opened | "
                 "opened->client | machine busy | p95 <= 1 s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for lat in result.get("latency", []):
        for key in ("idle", "under_load"):
            if key not in lat:
                continue
            r = lat[key]
            load = "idle" if key == "idle" else f"{r['load']['achieved_per_s']} msg/s"
            t, st = r["post_to_console"], r["stages"]
            lines.append(f"| {lat['database']} | {load} | {t['n']} | {t['p50_ms']} | {t['p95_ms']} | {t['max_ms']} | "
                         f"{st['post_to_stored']['p95_ms']} | {st['stored_to_case_opened']['p95_ms']} | "
                         f"{st['case_opened_to_console']['p95_ms']} | {r['cpu_cores_used']['machine_busy_pct']}% | "
                         f"{'yes' if r['p95_within_1s'] else 'NO'} |")
    lines += ["", f"### {COUNSELLORS} counsellors racing for the queue",
              "", "| database | via | cases | claims/s | per client /s (min-max) | p50 ms | p95 ms | max ms | "
                  "double claims | errors | feed missed | verified |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result.get("race", []):
        pc = r["per_client_claims_per_s"] or {}
        lat = r["claim_latency"]
        lines.append(f"| {r['database']} | {r['via']} | {r['cases']} | {r['claims_per_s']} | "
                     f"{pc.get('min')}-{pc.get('max')} | {lat['p50_ms']} | {lat['p95_ms']} | {lat['max_ms']} | "
                     f"{r['verify']['double_claims']} | {r['errors']} | "
                     f"{r['feed']['missed'] if 'feed' in r else '-'} | {'OK' if r['verify']['ok'] else 'FAILED'} |")
    return "\n".join(lines)


def machine(pg_base: str) -> dict:
    info = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    try:
        e = create_engine(pg_base, future=True)
        with e.connect() as c:
            info["postgresql"] = c.execute(text("show server_version")).scalar()
        e.dispose()
    except Exception as exc:  # noqa: BLE001
        info["postgresql"] = f"unreachable: {type(exc).__name__}"
    try:
        info["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                        text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="30 messages, 200 cases (a smoke run)")
    ap.add_argument("--messages", type=int, help="danger messages per latency run (default 200; 30 with --quick)")
    ap.add_argument("--cases", type=int, help="cases in each race (default 1000; 200 with --quick)")
    ap.add_argument("--gap", type=float, default=0.05, help="seconds between two danger messages")
    ap.add_argument("--load-rate", type=float, default=10.0, help="background messages per second (0: no load run)")
    ap.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    ap.add_argument("--pg", default=os.environ.get("BENCH_PG_URL", PG_DEFAULT))
    ap.add_argument("--out", default=str(ROOT / "reports" / "bench_queue.json"))
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (logs, SQLite files)")
    args = ap.parse_args()
    n = args.messages or (30 if args.quick else 200)
    cases = args.cases or (200 if args.quick else 1000)
    for body in CHATTER:
        assert understand(body, None).risk not in ("high", "imminent"), body
    risk = understand(DANGER, None).risk
    assert risk in ("high", "imminent"), risk

    info = machine(args.pg)
    if info["postgresql"].startswith("unreachable"):
        print(f"PostgreSQL at {args.pg} is {info['postgresql']}: start it, or pass --pg", file=sys.stderr)
        return 2
    # SIGTERM (a supervisor, `timeout`) must clean up too: the children run in their own sessions
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # Ctrl-C too, even when started from a shell that ignores SIGINT in background jobs
    signal.signal(signal.SIGINT, signal.default_int_handler)
    tmp = Path(tempfile.mkdtemp(prefix="bench-queue-"))
    result: dict = {"machine": info, "danger_message_risk": risk,
                    "settings": {"messages": n, "cases": cases, "gap_s": args.gap, "load_rate": args.load_rate,
                                 "counsellors": COUNSELLORS, "quick": args.quick}}
    print(f"bench/queue.py: {n} danger messages per latency run, {cases} cases per race, "
          f"{result['machine']['cpus']} CPUs; logs in {tmp / 'log'}", flush=True)
    run = None
    interrupted = None
    started = time.time()
    try:
        run = Run(args.pg, tmp)
        dbs = ["postgresql"] + ([] if args.no_sqlite else ["sqlite"])
        print("1. webhook -> console latency", flush=True)
        result["latency"] = [latency_phase(run, db, n, args.gap, args.load_rate) for db in dbs]
        print(f"2. {COUNSELLORS} counsellors racing for {cases} cases", flush=True)
        result["race"] = []
        for db in dbs:
            for via_http in (True, False):
                result["race"].append(race_phase(run, db, cases, via_http))
    except (KeyboardInterrupt, SystemExit) as exc:
        interrupted = exc
        print(f"\ninterrupted ({type(exc).__name__}); cleaning up", file=sys.stderr, flush=True)
    except Exception as exc:  # noqa: BLE001 - reported, cleaned up, and the run fails
        import traceback

        traceback.print_exc()
        result["error"] = repr(exc)
    finally:
        if run is not None:
            for problem in run.close():
                print(problem, file=sys.stderr)
    result["wall_s"] = round(time.time() - started, 1)
    if interrupted is not None:
        print(f"nothing written; logs in {tmp / 'log'}", file=sys.stderr)
        return 130 if isinstance(interrupted, KeyboardInterrupt) else (interrupted.code or 1)
    result["checks"] = checks(result)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    print(table(result))
    print("\nchecks:")
    for name, ok in result["checks"].items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
    print(f"\nwritten {out} ({result['wall_s']} s)")
    failed = "error" in result or not all(result["checks"].values())
    if failed or args.keep_tmp:
        print(f"temp dir kept: {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


def checks(result: dict) -> dict:
    """The bars of issue 4, one line each."""
    out = {}
    for lat in result.get("latency", []):
        for key in ("idle", "under_load"):
            if key in lat:
                r = lat[key]
                out[f"{lat['database']} {key}: every danger message reached the console"] = \
                    r["measured"] == r["messages"]
                out[f"{lat['database']} {key}: POST -> console p95 <= 1 s"] = bool(r["p95_within_1s"])
    for r in result.get("race", []):
        tag = f"{r['database']} race {'HTTP' if 'feed' in r else 'in-process'}"
        out[f"{tag}: every case claimed exactly once, no double claims, no errors"] = \
            r["verify"]["ok"] and r["errors"] == 0
        if "feed" in r:
            out[f"{tag}: the live feed showed every claim"] = r["feed"]["missed"] == 0
    return out


if __name__ == "__main__":
    sys.exit(main())
