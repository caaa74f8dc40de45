"""Campaign broadcast benchmark (issue 6), in one run:

1. plan a campaign to --subscribers (default 100,000) SMS subscribers (bar: <= 10 s);
2. send it through the worker's bulk lane (``helpline worker``, a real process) to a fake Twilio
   that refuses more than --limit (default 100) messages per second with HTTP 429, as Twilio does
   (bar: achieved rate within 5% of the limit), while people keep writing to the helpline: one
   inbound SMS per second through the gateway (``helpline gateway``, a real process, with the
   stand-in Rasa), timed from the webhook POST to the reply reaching the fake Twilio, against the
   same measured before the campaign (bar: the same latency);
3. kill the worker with SIGKILL three times during the send (at 20%, 45% and 70%) and start a new
   one each time (bar: 0 duplicates, 0 missed, counted at the fake provider per number).

Settings of the processes, and why: ``HELPLINE_BULK_RATES=sms=<98% of the limit>`` (the bulk lane
leaves room for conversation replies on the same account), ``HELPLINE_SEND_WINDOW=0-24`` (the run
must not depend on the hour; the 07:00-22:00 window is tested in tests/webhook/test_broadcast.py).
The campaign is approved by a second supervisor and scheduled inside the next action month (the
calendar check), then its start is moved to now so the run does not wait for that date.

Usage: .venv/bin/python bench/broadcast.py [--quick] [--subscribers N] [--limit 100] [--database sqlite|postgresql]
Writes reports/bench_broadcast.json and prints a Markdown table. Nothing leaves 127.0.0.1.
"""
from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import secrets  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

import requests  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot import runner  # noqa: E402
from tests.fakes import FakeTwilio  # noqa: E402
from tests.system import free_port  # noqa: E402

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
KILLS_AT = (0.20, 0.45, 0.70)
PLAN_TARGET_S = 10.0
RATE_TOLERANCE = 0.05


class BenchTwilio(FakeTwilio):
    """The fake Twilio, keeping only what the bench counts (100,000 messages): arrival times of
    the campaign messages, how many each number got, and when a probe number got its reply."""

    def __init__(self, *a, campaign_prefix: str, **k):
        super().__init__(*a, **k)
        self.keep_calls = False
        self.campaign_prefix = campaign_prefix
        self.per_number: Counter = Counter()
        self.accepted: list[float] = []
        self.replies: dict[str, float] = {}

    def _record_sent(self, item: dict) -> None:
        with self._cond:
            if item["body"].startswith(self.campaign_prefix):
                self.per_number[item["to"]] += 1
                self.accepted.append(item["at"])
            else:
                self.replies.setdefault(item["to"], time.monotonic())
            self._cond.notify_all()


def pct(values, q):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q / 100 * (len(v) - 1))))]


def lat(values) -> dict:
    return {"n": len(values), "p50_ms": round(pct(values, 50) * 1000, 1) if values else None,
            "p95_ms": round(pct(values, 95) * 1000, 1) if values else None,
            "max_ms": round(max(values) * 1000, 1) if values else None}


class Prober(threading.Thread):
    """One inbound SMS per ``every`` seconds through the gateway; the latency of each reply."""

    def __init__(self, base: str, twilio: BenchTwilio, every: float = 1.0):
        super().__init__(daemon=True)
        self.base, self.twilio, self.every = base, twilio, every
        self.latencies: list[float] = []
        self.lost = 0
        self.stop = threading.Event()
        self.http = requests.Session()
        self.http.trust_env = False

    def probe(self) -> None:
        number = f"+8471{secrets.randbelow(10**7):07d}"
        params = self.twilio.inbound_params(number, "cho toi hoi luat phong chong bao luc gia dinh")
        url = self.base + "/webhooks/sms"
        sig = self.twilio.signature(url, params)
        t0 = time.monotonic()
        r = self.http.post(url, data=params, headers={"X-Twilio-Signature": sig}, timeout=30)
        if r.status_code != 200:
            self.lost += 1
            return
        deadline = t0 + 30
        while time.monotonic() < deadline:
            got = self.twilio.replies.get(number)
            if got is not None:
                self.latencies.append(got - t0)
                return
            time.sleep(0.005)
        self.lost += 1

    def run(self) -> None:
        while not self.stop.is_set():
            t = time.monotonic()
            try:
                self.probe()
            except requests.RequestException:
                self.lost += 1
            self.stop.wait(max(0.0, self.every - (time.monotonic() - t)))


def load_subscribers(gw, n: int) -> float:
    """``n`` SMS contacts who wrote DK and CÓ (as the keyword path stores them), written in bulk."""
    from sqlalchemy import insert, literal, select

    from webhook.broadcast import content
    from webhook.db import transaction
    from webhook.models import ConsentRecord, Contact, Subscriber

    t = time.perf_counter()
    now = time.time()
    batch = 5000
    for start in range(0, n, batch):
        contacts = []
        for i in range(start, min(n, start + batch)):
            address = f"+8490{i:07d}"
            contacts.append({"channel": "sms", "pseudonym": gw.vault.pseudonym("sms", address),
                             "address_enc": gw.vault.seal(address), "status": "active", "created_at": now,
                             "last_inbound_at": now, "replies_since_inbound": 0})
        with transaction(gw.Session) as s:
            s.execute(insert(Contact), contacts)
    with transaction(gw.Session) as s:                                   # every contact subscribed
        cols = ["contact_id", "status", "audience", "language", "consent_version", "consent_at", "self_opted_in",
                "do_not_contact", "created_at", "updated_at"]
        s.execute(insert(Subscriber).from_select(cols, select(
            Contact.id, literal("subscribed"), literal("public"), literal("vi"), literal(content.CONSENT_VERSION),
            literal(now), literal(True), literal(False), literal(now), literal(now))))
        s.execute(insert(ConsentRecord).from_select(
            ["subscriber_id", "action", "at", "channel", "version", "method", "actor"],
            select(Subscriber.id, literal("opt_in"), literal(now), literal("sms"), literal(content.CONSENT_VERSION),
                   literal("keyword"), literal("person"))))
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="10,000 subscribers (a smoke run, ~2 minutes)")
    ap.add_argument("--subscribers", type=int)
    ap.add_argument("--limit", type=float, default=100.0, help="the fake provider's messages per second")
    ap.add_argument("--database", default="sqlite", choices=["sqlite", "postgresql"])
    ap.add_argument("--pg", default=os.environ.get("BENCH_PG_URL", PG_DEFAULT))
    ap.add_argument("--kills", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "reports" / "bench_broadcast.json"))
    args = ap.parse_args()
    n = args.subscribers or (10_000 if args.quick else 100_000)

    from sqlalchemy import create_engine, text, update

    from webhook.app import Gateway
    from webhook.broadcast import calendar, campaigns as C, content
    from webhook.console import auth
    from webhook.db import transaction
    from webhook.models import Campaign
    from webhook.settings import Settings

    tmp = Path(tempfile.mkdtemp(prefix="bench_broadcast_"))
    log_dir = tmp / "log"
    log_dir.mkdir()
    procs: list[subprocess.Popen] = []
    schema = None
    admin = None
    if args.database == "sqlite":
        url = f"sqlite:///{tmp / 'broadcast.db'}"
    else:
        schema = f"bench_broadcast_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.pg, future=True)
        with admin.begin() as c:
            c.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{args.pg}{'&' if '?' in args.pg else '?'}options=-csearch_path%3D{schema}"
    prefix = content.message("gbv_action_month", "vi")
    from bot.nlu.normalize import strip_diacritics
    prefix = strip_diacritics(prefix)[:40]
    twilio = BenchTwilio(campaign_prefix=prefix).start()
    twilio.rate_limit, twilio.burst = args.limit, 5.0
    rasa_token = secrets.token_urlsafe(12)
    rasa_port, port = free_port(), free_port()
    rasa = subprocess.Popen([sys.executable, "-m", "tests.fakes.rasa", str(rasa_port), rasa_token], cwd=ROOT,
                            env=runner._env({}), stdout=open(log_dir / "rasa.log", "ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    procs.append(rasa)
    bulk_rate = round(args.limit * 0.98, 1)
    env = runner._env({
        "HELPLINE_DATABASE_URL": url, "HELPLINE_SECRET_KEY": "b" * 48, "HELPLINE_GATEWAY_TOKEN": "t" * 24,
        "HELPLINE_RASA_URL": f"http://127.0.0.1:{rasa_port}", "HELPLINE_RASA_TOKEN": rasa_token,
        "HELPLINE_ACTIONS_URL": "", "HELPLINE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "HELPLINE_ESCALATION_JOURNAL": str(tmp / "escalations.jsonl"),
        "TWILIO_ACCOUNT_SID": twilio.account_sid, "TWILIO_AUTH_TOKEN": twilio.auth_token,
        "TWILIO_FROM": "+15005550006", "TWILIO_API_BASE": twilio.url,
        "HELPLINE_BULK_RATES": f"sms={bulk_rate}", "HELPLINE_SEND_WINDOW": "0-24",
        "HELPLINE_ALERT_AFTER": "imminent=3600,high=3600", "HELPLINE_STATS": "0",
    })
    result: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                "platform": platform.platform(), "database": args.database},
                    "settings": {"subscribers": n, "limit_per_s": args.limit, "bulk_rate_per_s": bulk_rate,
                                 "kills": args.kills}}
    try:
        gw = Gateway(Settings.from_env(env, run_dispatcher=False))          # migrates
        for name in ("bench_a", "bench_b"):
            auth.create_staff(gw, name, "bench-broadcast-password", "supervisor")
        result["load_s"] = round(load_subscribers(gw, n), 1)
        print(f"{n:,} subscribers loaded in {result['load_s']} s", flush=True)
        cid = C.create(gw, "bench_a", "bench", "gbv_action_month", channels=["sms"])
        C.approve(gw, cid, "bench_b")
        today = dt.date.today()
        occ, first, _last = next(x for x in calendar.upcoming(today) if x[0].key == "gbv_action_month")
        start = dt.datetime(first.year, first.month, first.day, 10, tzinfo=dt.timezone(dt.timedelta(hours=7)))
        start_at = max(start.timestamp(), time.time()) if calendar.allowed(today, occ.key) else start.timestamp()
        C.schedule(gw, cid, "bench_b", start_at=start_at)
        with transaction(gw.Session) as s:                               # do not wait for that date
            s.execute(update(Campaign).where(Campaign.id == cid).values(start_at=time.time()))
        t = time.perf_counter()
        planned = C.plan(gw, cid)
        result["plan_s"] = round(time.perf_counter() - t, 2)
        result["planned"] = planned
        print(f"planned {planned:,} in {result['plan_s']} s", flush=True)
        gw.close()

        procs += runner.start_gateway(port, env, log_dir, worker=False)
        if not runner._wait(f"http://127.0.0.1:{port}/healthz", procs[-1], 60):
            raise RuntimeError(f"the gateway did not start: see {log_dir}")
        base = f"http://127.0.0.1:{port}"
        before = Prober(base, twilio)
        for _ in range(30):                                              # conversation latency, no campaign
            before.probe()
            time.sleep(0.5)
        result["latency_before"] = lat(before.latencies)
        print(f"conversation latency before: {result['latency_before']}", flush=True)

        def start_worker():
            p = subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], cwd=ROOT, env=env,
                                 stdout=open(log_dir / "worker.log", "ab"), stderr=subprocess.STDOUT,
                                 start_new_session=True)
            procs.append(p)
            return p

        worker = start_worker()
        during = Prober(base, twilio)
        during.start()
        kills, kill_times = [], []
        marks = list(KILLS_AT[: args.kills])
        t_start = time.monotonic()
        deadline = t_start + n / args.limit * 3 + 300
        while time.monotonic() < deadline:
            done = len(twilio.accepted)
            if marks and done >= marks[0] * n:
                marks.pop(0)
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
                kill_times.append(time.monotonic())
                kills.append(done)
                print(f"  killed the worker at {done:,} sent; starting a new one", flush=True)
                worker = start_worker()
            if done >= n:
                break
            time.sleep(0.2)
        during.stop.set()
        during.join(40)
        # settle: the campaign's rows all finished (a reconciled row may land a little later)
        gw = Gateway(Settings.from_env(env, run_dispatcher=False))
        for _ in range(120):
            rep = C.report(gw, cid)
            if rep["state"] == "done":
                break
            time.sleep(0.5)
        rep = C.report(gw, cid)
        from sqlalchemy import func, select

        from webhook.models import CampaignSend
        with transaction(gw.Session) as s:                               # what the restarts had to settle
            result["settled_after_kills"] = {str(r or "-"): n for r, n in s.execute(
                select(CampaignSend.reason, func.count()).where(CampaignSend.campaign_id == cid,
                                                                CampaignSend.reason.like("reconciled%"))
                .group_by(CampaignSend.reason)).all()}
        gw.close()
        times = sorted(twilio.accepted)
        span = (times[-1] - times[0]) if len(times) > 1 else 0.0
        # steady rate: per 10-second window, leaving out windows with a kill and the first/last
        windows = Counter(int((x - times[0]) // 10) for x in times)
        killed_w = {int((k - times[0]) // 10) for k in kill_times} | {int((k - times[0]) // 10) + 1 for k in kill_times}
        steady = [c / 10 for w, c in sorted(windows.items()) if w not in killed_w and 0 < w < max(windows)]
        dup = sum(c - 1 for c in twilio.per_number.values() if c > 1)
        missed = n - len(twilio.per_number)
        result.update({
            "kills_at_sent": kills, "sent_at_provider": len(times), "duplicates": dup, "missed": missed,
            "throttled_by_provider": twilio.throttled, "send_span_s": round(span, 1),
            "rate_overall_per_s": round(len(times) / span, 2) if span else None,
            "rate_steady_median_per_s": round(statistics.median(steady), 2) if steady else None,
            "latency_during": lat(during.latencies), "probes_lost": during.lost + before.lost,
            "report": rep,
        })
        lo = args.limit * (1 - RATE_TOLERANCE)
        result["checks"] = {
            f"plan <= {PLAN_TARGET_S:g} s": result["plan_s"] <= PLAN_TARGET_S,
            "steady rate within 5% of the limit": bool(result["rate_steady_median_per_s"]) and
            lo <= result["rate_steady_median_per_s"] <= args.limit * (1 + RATE_TOLERANCE),
            "overall rate, the restarts included, within 5% of the limit": bool(result["rate_overall_per_s"]) and
            lo <= result["rate_overall_per_s"] <= args.limit * (1 + RATE_TOLERANCE),
            "0 duplicates": dup == 0, "0 missed": missed == 0,
            "every row settled as sent": rep["by_state"].get("sent", 0) + rep["by_state"].get("delivered", 0) == n,
            "conversation p95 during <= 1.5 x before + 50 ms": (
                result["latency_during"]["p95_ms"] is not None and result["latency_before"]["p95_ms"] is not None
                and result["latency_during"]["p95_ms"] <= 1.5 * result["latency_before"]["p95_ms"] + 50),
            "no probe lost": result["probes_lost"] == 0,
        }
    finally:
        runner.stop(procs)
        twilio.stop()
        if admin is not None and schema:
            with admin.begin() as c:
                c.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            admin.dispose()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print(json.dumps({k: v for k, v in result.items() if k not in ("report",)}, indent=2, ensure_ascii=False))
    print("\nchecks:")
    for name, ok in result.get("checks", {}).items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
    return 0 if all(result.get("checks", {}).values()) else 1


if __name__ == "__main__":
    sys.exit(main())
