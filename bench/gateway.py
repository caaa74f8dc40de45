"""Gateway benchmark: what the gateway costs on top of Rasa, how much it carries, and whether it
loses or doubles anything when Rasa restarts under load.

One run, everything on loopback (the real Rasa with the trained model and the real action server
as subprocesses; the gateway and its worker as subprocesses, as `make run` starts them; the fake
Telegram Bot API in this process, driven by python-telegram-bot inside the gateway):

1. latency: webhook POST -> the message's last reply at the fake provider, p50/p95 at 1, 10 and
   50 concurrent conversations, next to Rasa's REST channel called directly at the same
   concurrency (the ratio at p95 is the gateway's cost). Every message starts a new conversation
   so the number of replies per message is known in advance (measured on Rasa directly first).
2. sustained throughput: messages per second end to end at 50 concurrent conversations.
3. reliability: 10,000 messages over 500 conversations with 5% duplicate deliveries (some at the
   same time, some later) and one Rasa restart in the middle; counts lost replies (a message
   without its bot answer delivered), duplicated replies (the provider received an outbox row
   twice) and duplicated messages (a delivery stored twice).

Usage:  .venv/bin/python bench/gateway.py [--quick] [--out bench/results/gateway.json]
Message texts are fixed, invented examples; nothing leaves 127.0.0.1.
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
import sqlite3
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot import runner  # noqa: E402
from bot.paths import latest_model  # noqa: E402
from tests.fakes import FakeTelegram  # noqa: E402
from tests.system import free_port  # noqa: E402

TG_SECRET = "bench-secret"
MESSAGES = [
    "cho hỏi số điện thoại đường dây nóng",
    "chong em hay danh em phai lam sao",
    "lệnh cấm tiếp xúc là gì",
    "o Tam Ky co cho nao ho tro khong",
    "toi muon gap tu van vien",
    "bạo lực gia đình bị phạt thế nào",
    "con em bi ban bat nat o truong",
    "tro giup phap ly mien phi o dau",
]


def pct(values, p):
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100 * (len(s) - 1)))))
    return s[k]


class Arrivals:
    """Reply arrival times per chat id, recorded by the fake provider's thread."""

    def __init__(self, fake: FakeTelegram):
        self.times: dict[int, list[float]] = {}
        self.cond = threading.Condition()
        original = fake._record_sent

        def record(item):
            original(item)
            with self.cond:
                self.times.setdefault(int(item["chat_id"]), []).append(time.perf_counter())
                self.cond.notify_all()

        fake._record_sent = record

    def wait(self, chat_id: int, n: int, timeout: float = 60.0):
        deadline = time.perf_counter() + timeout
        with self.cond:
            while len(self.times.get(chat_id, [])) < n:
                left = deadline - time.perf_counter()
                if left <= 0:
                    return None
                self.cond.wait(left)
            return self.times[chat_id][n - 1]


class Bench:
    def __init__(self, model: Path, tmp: Path):
        self.model, self.tmp = model, tmp
        self.log_dir = tmp / "log"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.rasa_port, self.actions_port, self.gw_port = free_port(), free_port(), free_port()
        self.rasa_token, self.api_token = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        self.endpoints = tmp / "endpoints.yml"
        self.endpoints.write_text(f'action_endpoint:\n  url: "http://127.0.0.1:{self.actions_port}/webhook"\n')
        self.db = tmp / "gateway.db"
        self.fake = FakeTelegram().start()
        self.arrivals = Arrivals(self.fake)
        self.env = runner._env({
            "HELPLINE_DATABASE_URL": f"sqlite:///{self.db}", "HELPLINE_SECRET_KEY": "b" * 48,
            "HELPLINE_GATEWAY_TOKEN": self.api_token, "HELPLINE_RASA_TOKEN": self.rasa_token,
            "HELPLINE_RASA_URL": f"http://127.0.0.1:{self.rasa_port}",
            "HELPLINE_ACTIONS_URL": f"http://127.0.0.1:{self.actions_port}",
            "HELPLINE_GATEWAY_URL": f"http://127.0.0.1:{self.gw_port}",
            "HELPLINE_ESCALATION_JOURNAL": str(tmp / "escalations.jsonl"),
            "HELPLINE_PUBLIC_URL": "https://helpline.example.org",
            "TELEGRAM_TOKEN": self.fake.token, "TELEGRAM_SECRET_TOKEN": TG_SECRET,
            "TELEGRAM_API_BASE": self.fake.url + "/bot",
            # provider rate limits are policy, not capacity: off here (Telegram allows ~30/s per bot)
            "HELPLINE_RATE_LIMITS": "telegram=0", "HELPLINE_DISPATCH_THREADS": "6",
        })
        self.procs: dict[str, object] = {}
        self.http = requests.Session()
        self.update_id = 100_000_000
        self.lock = threading.Lock()

    def start(self):
        self.procs["actions"] = runner.start_actions(self.actions_port, self.log_dir, self.env)
        self.start_rasa()
        gw = runner.start_gateway(self.gw_port, {**self.env, "HELPLINE_PORT": str(self.gw_port)}, self.log_dir)
        self.procs["gateway"], self.procs["worker"] = gw[0], gw[1]
        assert runner._wait(f"http://127.0.0.1:{self.actions_port}/health", self.procs["actions"], 120)
        assert runner._wait(f"http://127.0.0.1:{self.gw_port}/healthz", self.procs["gateway"], 60)

    def start_rasa(self):
        self.procs["rasa"] = runner.start_rasa(self.model, self.rasa_port, self.rasa_token, self.endpoints,
                                               self.log_dir, self.env)
        t0 = time.time()
        assert runner._wait(f"http://127.0.0.1:{self.rasa_port}/", self.procs["rasa"], 300), "Rasa did not start"
        return time.time() - t0

    def stop(self):
        runner.stop([p for p in self.procs.values() if p is not None])
        self.fake.stop()

    # --- one message -----------------------------------------------------------------------
    def next_update(self) -> int:
        with self.lock:
            self.update_id += 1
            return self.update_id

    def post(self, update: dict, session: requests.Session) -> int:
        r = session.post(f"http://127.0.0.1:{self.gw_port}/webhooks/telegram", json=update,
                         headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}, timeout=30)
        return r.status_code

    def rasa_direct(self, sender: str, text: str, session: requests.Session) -> tuple[float, int]:
        t0 = time.perf_counter()
        r = session.post(f"http://127.0.0.1:{self.rasa_port}/webhooks/rest/webhook", params={"token": self.rasa_token},
                         json={"sender": sender, "message": text, "input_channel": "telegram",
                               "metadata": {"channel": "telegram", "language": "vi"}}, timeout=60)
        r.raise_for_status()
        return time.perf_counter() - t0, len([m for m in r.json() if m.get("text")])


def cpu_seconds(b: Bench) -> dict:
    """CPU time used so far by each process (Linux /proc), to see where a message's cost goes."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for name, proc in b.procs.items():
        try:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[name] = (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            out[name] = None
    import resource
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out["bench+fake"] = ru.ru_utime + ru.ru_stime
    return out


def cpu_per_message(before: dict, after: dict, messages: int) -> dict:
    return {k: round(1000 * (after[k] - before[k]) / messages, 1) for k in after
            if after.get(k) is not None and before.get(k) is not None}


def gateway_capacity(b: Bench, concurrency: int, per_worker: int) -> dict:
    """The gateway alone: a second gateway process in front of a stand-in Rasa (its own process,
    answering at once with one reply), same fake Telegram. What the gateway could carry if Rasa
    were free."""
    import subprocess

    port, gw_port = free_port(), free_port()
    env = {**b.env, "HELPLINE_RASA_URL": f"http://127.0.0.1:{port}", "HELPLINE_DATABASE_URL": f"sqlite:///{b.tmp / 'cap.db'}",
           "HELPLINE_ACTIONS_URL": "", "HELPLINE_PORT": str(gw_port)}
    fake_rasa = subprocess.Popen([sys.executable, "-m", "tests.fakes.rasa", str(port), b.rasa_token], cwd=ROOT, env=env,
                                 start_new_session=True)
    procs = runner.start_gateway(gw_port, env, b.log_dir, worker=False)
    saved = b.gw_port
    try:
        assert runner._wait(f"http://127.0.0.1:{gw_port}/healthz", procs[0], 60)
        b.gw_port = saved_port = gw_port
        expect = {t: 1 for t in MESSAGES}
        run_level(b, 8, 5, expect, via_gateway=True)          # warm
        tick = os.sysconf("SC_CLK_TCK")

        def cpu():
            f = Path(f"/proc/{procs[0].pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(f[11]) + int(f[12])) / tick
        c0 = cpu()
        res = run_level(b, concurrency, per_worker, expect, via_gateway=True)
        res["gateway_cpu_ms_per_message"] = round(1000 * (cpu() - c0) / max(1, res["messages"]), 1)
        return res
    finally:
        b.gw_port = saved
        runner.stop(procs + [fake_rasa])


def calibrate(b: Bench) -> dict[str, int]:
    """Replies per message for a fresh conversation, measured on Rasa directly."""
    s = requests.Session()
    return {text: b.rasa_direct(f"calib-{i}-{secrets.token_hex(4)}", text, s)[1] for i, text in enumerate(MESSAGES)}


def run_level(b: Bench, concurrency: int, per_worker: int, expect: dict[str, int], via_gateway: bool) -> dict:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    def worker(w: int):
        nonlocal errors
        s = requests.Session()
        rnd = random.Random(w)
        for i in range(per_worker):
            text = rnd.choice(MESSAGES)
            if via_gateway:
                uid = b.next_update()
                chat = 10_000_000 + uid
                update = b.fake.make_update(uid, chat, text)
                t0 = time.perf_counter()
                if b.post(update, s) != 200:
                    with lock:
                        errors += 1
                    continue
                done = b.arrivals.wait(chat, expect[text], 60)
                if done is None:
                    with lock:
                        errors += 1
                    continue
                dt = done - t0
            else:
                dt, _n = b.rasa_direct(f"direct-{w}-{i}-{secrets.token_hex(3)}", text, s)
            with lock:
                latencies.append(dt)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(worker, range(concurrency)))
    elapsed = time.perf_counter() - t0
    return {"messages": len(latencies), "errors": errors, "elapsed_s": round(elapsed, 2),
            "per_second": round(len(latencies) / elapsed, 1),
            "p50_ms": round(1000 * pct(latencies, 50), 1), "p95_ms": round(1000 * pct(latencies, 95), 1)}


def reliability(b: Bench, total: int, conversations: int, dup_rate: float, concurrency: int = 50) -> dict:
    rnd = random.Random(7)
    plan = []
    for i in range(total):
        plan.append((b.next_update(), 20_000_000 + rnd.randrange(conversations), rnd.choice(MESSAGES)))
    posted, duplicates, status_errors = set(), 0, 0
    late: list[dict] = []
    lock = threading.Lock()
    restart = {"at_message": total // 2}
    index = iter(range(total))

    def worker(w: int):
        nonlocal duplicates, status_errors
        s = requests.Session()
        while True:
            with lock:
                i = next(index, None)
            if i is None:
                return
            if i == restart["at_message"]:
                threading.Thread(target=do_restart, daemon=True).start()
            uid, chat, text = plan[i]
            update = b.fake.make_update(uid, chat, text)
            code = b.post(update, s)
            if rnd.random() < dup_rate:
                # the provider delivers it again: now, from another connection, or later
                code2 = b.post(update, requests.Session())
                with lock:
                    duplicates += 1
                    late.append(update)
                    status_errors += code2 != 200
            with lock:
                posted.add(uid)
                status_errors += code != 200

    def do_restart():
        t0 = time.time()
        runner.stop([b.procs["rasa"]])
        restart["down_at_s"] = round(t0 - started, 1)
        restart["startup_s"] = round(b.start_rasa(), 1)
        restart["back_at_s"] = round(time.time() - started, 1)

    started = time.time()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(worker, range(concurrency)))
    for update in late[: len(late) // 2]:          # half of the duplicates again, after the fact
        b.post(update, b.http)
    sending_done = time.time() - started
    # wait until every message is answered and every reply is out (the worker replays deferred ones)
    deadline = time.time() + 900
    con = sqlite3.connect(str(b.db), timeout=30)
    while time.time() < deadline:
        waiting = con.execute("select count(*) from messages where state in ('pending','deferred')").fetchone()[0]
        unsent = con.execute("select count(*) from outbox where state in ('queued','sending')").fetchone()[0]
        if waiting == 0 and unsent == 0 and "back_at_s" in restart:
            break
        time.sleep(1)
    time.sleep(2)
    drained = time.time() - started
    low, high = min(posted), max(posted)
    in_run = "channel = 'telegram' and cast(provider_msg_id as integer) between %d and %d" % (low, high)
    stored_rows = [int(r[0]) for r in con.execute(f"select provider_msg_id from messages where {in_run}")]
    stored_ids = set(stored_rows)
    stored = len(stored_rows)
    not_answered = con.execute(f"select count(*) from messages where {in_run} and state != 'answered'").fetchone()[0]
    undelivered = con.execute("select count(distinct source_message_id) from outbox where seq < 1000 "
                              "and state not in ('sent','delivered')").fetchone()[0]
    no_text_reply = con.execute("select count(*) from messages m where state = 'answered' and not exists "
                                "(select 1 from outbox o where o.source_message_id = m.id and o.seq < 1000)").fetchone()[0]
    # only this run's conversations and chats: the latency and capacity phases share the fake
    convs = ",".join(str(r[0]) for r in con.execute(f"select distinct conversation_id from messages where {in_run}"))
    outbox_sent = con.execute(f"select count(*) from outbox where state in ('sent','delivered') "
                              f"and conversation_id in ({convs})").fetchone()[0]
    safe_replies = con.execute(f"select count(*) from outbox where seq >= 1000 and conversation_id in ({convs})"
                               ).fetchone()[0]
    deferred_ever = con.execute(f"select count(distinct source_message_id) from outbox where seq >= 1000 "
                                f"and conversation_id in ({convs})").fetchone()[0]
    failed = con.execute("select count(*) from outbox where state in ('failed','undeliverable')").fetchone()[0]
    first_chat = 20_000_000
    provider_received = sum(1 for m in b.fake.sent if first_chat <= m["chat_id"] < first_chat + conversations)
    con.close()
    lost = len(posted - stored_ids) + not_answered + undelivered
    return {"messages": total, "unique_posted": len(posted), "duplicate_deliveries": duplicates + len(late) // 2,
            "conversations": conversations, "http_errors": status_errors, "stored_messages": stored,
            "duplicated_messages": stored - len(posted), "lost": lost,
            "answered_without_text_reply": no_text_reply,
            "duplicated_replies": provider_received - outbox_sent, "replies_delivered": outbox_sent,
            "failed_or_undeliverable": failed, "safe_replies_during_restart": safe_replies,
            "messages_deferred_and_replayed": deferred_ever, "restart": restart,
            "sending_s": round(sending_done, 1), "all_answered_s": round(drained, 1),
            "end_to_end_per_second": round(len(posted) / drained, 1)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer messages (a smoke run)")
    ap.add_argument("--skip-reliability", action="store_true", help="latency and throughput only")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "gateway.json"))
    args = ap.parse_args()
    model = latest_model()
    if model is None:
        print("no trained model: run `make model`", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    b = Bench(model, tmp)
    result: dict = {"machine": {"cpus": os.cpu_count()}, "model": model.name}
    try:
        b.start()
        expect = calibrate(b)
        result["replies_per_message"] = expect
        # warm both paths
        run_level(b, 4, 5, expect, via_gateway=False)
        run_level(b, 4, 5, expect, via_gateway=True)
        levels = {}
        for conc, per in ((1, 60), (10, 20), (50, 8)) if not args.quick else ((1, 10), (10, 3), (50, 1)):
            direct = run_level(b, conc, per, expect, via_gateway=False)
            gateway = run_level(b, conc, per, expect, via_gateway=True)
            levels[conc] = {"rasa_direct": direct, "gateway": gateway,
                            "p95_ratio": round(gateway["p95_ms"] / direct["p95_ms"], 2)}
            print(f"concurrency {conc}: rasa p50/p95 {direct['p50_ms']}/{direct['p95_ms']} ms; "
                  f"gateway p50/p95 {gateway['p50_ms']}/{gateway['p95_ms']} ms; ratio {levels[conc]['p95_ratio']}",
                  flush=True)
        result["latency"] = levels
        before = cpu_seconds(b)
        direct = run_level(b, 50, 40 if not args.quick else 4, expect, via_gateway=False)
        mid = cpu_seconds(b)
        sustained = run_level(b, 50, 40 if not args.quick else 4, expect, via_gateway=True)
        after = cpu_seconds(b)
        sustained["cpu_ms_per_message"] = cpu_per_message(mid, after, sustained["messages"])
        direct["cpu_ms_per_message"] = cpu_per_message(before, mid, direct["messages"])
        result["sustained"] = sustained
        result["sustained_rasa_direct"] = direct
        print(f"cpu ms/message: direct {direct['cpu_ms_per_message']}; gateway {sustained['cpu_ms_per_message']}",
              flush=True)
        print(f"sustained at 50 concurrent: {sustained['per_second']} msg/s "
              f"(Rasa alone: {direct['per_second']} msg/s)", flush=True)
        cap = gateway_capacity(b, 50, 40 if not args.quick else 4)
        result["gateway_capacity"] = cap
        print(f"gateway alone (stand-in Rasa): {cap['per_second']} msg/s, p50/p95 {cap['p50_ms']}/{cap['p95_ms']} ms, "
              f"{cap['gateway_cpu_ms_per_message']} ms CPU per message", flush=True)
        total = 10_000 if not args.quick else 600
        if args.skip_reliability:
            return 0
        result["reliability"] = reliability(b, total, 500 if not args.quick else 50, 0.05)
        print(json.dumps(result["reliability"], indent=1), flush=True)
    finally:
        b.stop()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
