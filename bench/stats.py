"""Statistics benchmark (issue 5): the yearly report and the console's statistics page on
1,000,000 synthetic episodes, on SQLite and PostgreSQL (bar: <= 5 s each, peak memory <= 500 MB).

1. Load: N synthetic episodes of one year (default 1,000,000; 100,000 with --quick) and a smaller
   previous year (--previous, default 10% of N), written straight into ``stat_episodes`` of a
   fresh database migrated by the gateway (``Gateway(...)`` runs Alembic): a SQLite file in a temp
   dir and a fresh schema on PostgreSQL (dropped at the end). Persons appear in 1-4 months of the
   year (~400,000 persons for 1M episodes); districts (the 18 former districts of
   data/kb/localities.yml, skewed to the lowland towns, about 40% not named), GBVIMS types,
   channels, age groups, reporters, sex, relationship, risk, the sought/needed/helped flags and
   consent (~3% "no") follow fixed, invented but plausible distributions (seeded, so both
   databases get the same rows). SQLite: executemany in batches inside one transaction with
   ``PRAGMA synchronous=OFF`` for the load only, then a WAL checkpoint; PostgreSQL: COPY, then
   ``VACUUM ANALYZE`` (what autovacuum would do shortly after a bulk insert). The load time is
   reported, it is not part of the bar.
2. Measure, each in a FRESH Python subprocess (so the peak RSS is the report's, not the
   generator's), --reps times (default 3), after building the gateway the way ``helpline stats``
   does (``Gateway(Settings(...))``, no migration):
   - the yearly report: ``indicator_table`` per quarter and per month, ``table`` for
     former_district, gbv_type, channel, age_group, reporter, sex, relationship and risk, and
     ``cross(former_district, quarter)``, each rendered with ``export.to_csv``;
   - the dashboard (the console's statistics page on load): ``indicator_table(quarter)``,
     ``by_period(month)``, ``table(gbv_type)``, ``table(former_district)``.
   Reported: wall time of the queries (median and max over the repetitions, and per part in the
   JSON), peak RSS of the subprocess (VmHWM; see _rss_kb) and its RSS before the first query, and a
   digest of the rendered tables (the same digest before and after a change to the queries means
   the same published numbers).

Usage:  .venv/bin/python bench/stats.py [--quick] [--episodes N] [--reps 3] [--databases sqlite,postgresql]
Needs PostgreSQL at --pg (default postgresql://postgres@127.0.0.1:5432/test, or BENCH_PG_URL) unless
--databases sqlite. Writes reports/bench_stats.json. Nothing leaves 127.0.0.1.
"""
from __future__ import annotations

import os
import sys

# `python bench/stats.py` puts bench/ first on sys.path, where bench/queue.py would shadow the
# standard library's `queue` (urllib3, imported by the gateway, needs it): drop it.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse  # noqa: E402
import bisect  # noqa: E402
import datetime as dt  # noqa: E402
import hashlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
YEAR = 2025
TARGET_S = 5.0
TARGET_MB = 500
SECRET = "bench-stats-" + "s" * 40
SUPERVISOR = "bench_supervisor"
PASSWORD = "bench-stats-password"

REPORT_DIMS = ("former_district", "gbv_type", "channel", "age_group", "reporter", "sex", "relationship", "risk")
COLUMNS = ("person", "year", "month", "first_day", "last_day", "channel", "locality", "former_district", "topic",
           "gbv_type", "reporter", "age_group", "sex", "relationship", "risk", "sought_help", "needed_help",
           "helped", "consent")

# --- synthetic episodes ---------------------------------------------------------------------------

# former districts (data/kb/localities.yml), weighted roughly by population, towns over-represented
DISTRICTS = {"tam_ky": 13, "dien_ban": 13, "hoi_an": 9, "thang_binh": 10, "nui_thanh": 9, "dai_loc": 8,
             "duy_xuyen": 7, "que_son": 6, "phu_ninh": 5, "tien_phuoc": 4, "hiep_duc": 2.5, "nong_son": 2,
             "bac_tra_my": 2, "nam_tra_my": 1.5, "phuoc_son": 1.5, "nam_giang": 1.5, "dong_giang": 1.5,
             "tay_giang": 1}
DISTRICT_NAMED = 0.6                      # share of persons who name a place at all
LOCALITY_NAMED = 0.5                      # ...and of those, who name the new commune-level unit
# a person's main GBVIMS type for the year (non_gbv: information only)
TYPES = {"non_gbv": 46, "psychological_abuse": 18, "physical_assault": 14, "undetermined": 9, "sexual_assault": 5,
         "denial_of_resources": 4, "rape": 3, "forced_marriage": 1}
TYPE_DRIFT = 0.2                          # a month's type differs from the person's main type
CHANNELS = {"zalo": 45, "sms": 20, "web": 20, "telegram": 15}
CHANNEL_DRIFT = 0.05
AGES = {"unknown": 30, "26-40": 21, "18-25": 19, "12-17": 15, "41-60": 10, "0-11": 3, "61+": 2}
REPORTERS = {"survivor": 45, "unknown": 22, "witness_relative": 12, "student": 10, "parent": 8, "professional": 3}
SEXES = {"unknown": 57, "female": 35, "male": 8}
RELATIONSHIPS = {None: 45, "intimate_partner": 25, "primary_caregiver": 7, "family_other": 6, "schoolmate": 5,
                 "family_friend_neighbour": 3, "teacher": 2, "supervisor_employer": 2, "other": 2,
                 "no_relation": 1.5, "cotenant_housemate": 1, "service_provider": 0.5}
RISKS_DISCLOSED = {"low": 30, "medium": 45, "high": 20, "imminent": 5}
TOPICS = {"domestic_violence": 40, "sexual_violence": 10, "school_violence": 10, "online_violence": 8,
          "child_abuse": 7, "sexual_harassment": 7, "emergency": 5, "forced_marriage_trafficking": 3, "legal_aid": 10}
INFO_TOPICS = {"legal_aid": 40, "hotline": 30, "services": 20, None: 10}
MONTHS_PER_PERSON = {1: 25, 2: 25, 3: 25, 4: 25}       # mean 2.5: 1M episodes ~ 400,000 persons
MONTH_WEIGHTS = [9, 8, 9, 8, 8, 8, 9, 8, 8, 8, 8, 9]     # a little more after Tet, in summer and December
CONSENT = {"not_asked": 77, "yes": 20, "no": 3}


class Picker:
    """Weighted choice from a dict with one random() and a bisect (faster than random.choices)."""

    def __init__(self, rng: random.Random, weights: dict):
        self.rng, self.values = rng, list(weights)
        total, self.cum = 0.0, []
        for w in weights.values():
            total += w
            self.cum.append(total)
        self.total = total

    def __call__(self):
        return self.values[bisect.bisect_right(self.cum, self.rng.random() * self.total)]


def _units() -> dict[str, list[str]]:
    import yaml

    data = yaml.safe_load((ROOT / "data" / "kb" / "localities.yml").read_text("utf-8"))
    out = {}
    for item in data["localities"]:
        named = list(item.get("new_units") or [])
        # the catalogue names new units for a few districts only: invent plausible others
        out[item["id"]] = named or [f"xã {item['id'].replace('_', ' ').title()} {k}" for k in range(1, 6)]
    return out


def episodes(n: int, year: int, seed: int, batch: int = 50_000):
    """Batches of row tuples (COLUMNS order) for exactly ``n`` episodes of ``year``, in the order
    the helpline would write them: month by month, persons shuffled within the month (so one
    person's episodes are scattered over the table, as in real use, not stored side by side).
    Yields (rows, truth): truth counts what the report must find (persons with consent not "no")."""
    rng = random.Random(seed)
    units = _units()
    missing = set(DISTRICTS) ^ set(units)
    assert not missing, f"districts do not match data/kb/localities.yml: {sorted(missing)}"
    district, kind, channel = Picker(rng, DISTRICTS), Picker(rng, TYPES), Picker(rng, CHANNELS)
    age, reporter, sex, rel = Picker(rng, AGES), Picker(rng, REPORTERS), Picker(rng, SEXES), Picker(rng, RELATIONSHIPS)
    risk, topic, info_topic = Picker(rng, RISKS_DISCLOSED), Picker(rng, TOPICS), Picker(rng, INFO_TOPICS)
    months_n, consent = Picker(rng, MONTHS_PER_PERSON), Picker(rng, CONSENT)
    month_pick = Picker(rng, dict(zip(range(1, 13), MONTH_WEIGHTS)))
    all_types = list(TYPES)
    truth = {"episodes": n, "persons": 0, "persons_counted": 0, "episodes_consent_no": 0}
    # 1. the persons of the year and their months (a bit mask), drawn once
    persons: list[tuple] = []
    made = 0
    while made < n:
        k = min(months_n(), n - made)
        months: set[int] = set()
        while len(months) < k:
            months.add(month_pick())
        p_type = kind()
        disclosed = p_type != "non_gbv"
        p_district = district() if rng.random() < DISTRICT_NAMED else None
        p_locality = rng.choice(units[p_district]) if p_district and rng.random() < LOCALITY_NAMED else None
        p_consent = consent()
        persons.append((sum(1 << m for m in months), f"{rng.getrandbits(128):032x}", p_type, p_district, p_locality,
                        channel(), age(), sex(), reporter() if disclosed or rng.random() < 0.2 else "unknown",
                        rel() if disclosed else None, p_consent,
                        rng.random() < 0.25))          # asks for a counsellor at some point
        made += k
        truth["persons"] += 1
        truth["persons_counted"] += p_consent != "no"
    # 2. their episodes, month by month
    out: list[tuple] = []
    for m in range(1, 13):
        bit = 1 << m
        todays = [p for p in persons if p[0] & bit]
        rng.shuffle(todays)
        for (_mask, person, p_type, p_district, p_locality, p_channel, p_age, p_sex, p_reporter, p_rel, p_consent,
             asks) in todays:
            t = p_type if rng.random() >= TYPE_DRIFT else rng.choice(all_types)
            dis = t != "non_gbv"
            r = risk() if dis else "none"
            needed = r in ("high", "imminent") or (dis and asks and rng.random() < 0.6)
            sought = needed and rng.random() < 0.7 or dis and rng.random() < 0.15
            helped = (True if rng.random() < 0.6 else False if rng.random() < 0.4 else None) if needed else None
            first = rng.randint(1, 28)
            last = min(28, first + int(rng.expovariate(0.3)))
            # a month may not name what another month did (labels are set when the words say so)
            out.append((person, year, m, dt.date(year, m, first).isoformat(), dt.date(year, m, last).isoformat(),
                        p_channel if rng.random() >= CHANNEL_DRIFT else channel(),
                        p_locality if rng.random() < 0.8 else None,
                        p_district if rng.random() < 0.85 else None,
                        topic() if dis else info_topic(), t,
                        p_reporter if rng.random() < 0.9 else "unknown",
                        p_age if rng.random() < 0.85 else "unknown",
                        p_sex if rng.random() < 0.85 else "unknown",
                        p_rel if rng.random() < 0.85 else None,
                        r, sought, needed, helped, p_consent))
            truth["episodes_consent_no"] += p_consent == "no"
            if len(out) >= batch:
                yield out, truth
                out = []
    if out:
        yield out, truth


# --- databases ------------------------------------------------------------------------------------

def gateway(url: str, migrate: bool):
    from webhook.app import Gateway
    from webhook.settings import Settings

    return Gateway(Settings.from_env({}, database_url=url, run_dispatcher=False, secret_key=SECRET), migrate=migrate)


def spool_dir(url: str) -> Path:
    return ROOT / "var" / "spool" / hashlib.sha256(url.encode()).hexdigest()[:16]


def load_sqlite(path: Path, years: list[tuple[int, int, int]]) -> dict:
    """years: (year, episodes, seed). The schema is already migrated."""
    con = sqlite3.connect(str(path), isolation_level=None)
    con.execute("PRAGMA synchronous=OFF")          # the load only; the app uses NORMAL
    con.execute("PRAGMA cache_size=-262144")       # 256 MB page cache for the index inserts
    sql = f"INSERT INTO stat_episodes ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    truths = {}
    t0 = time.perf_counter()
    con.execute("BEGIN")
    for year, n, seed in years:
        for rows, truth in episodes(n, year, seed):
            con.executemany(sql, [(*r[:15], int(r[15]), int(r[16]), None if r[17] is None else int(r[17]), r[18])
                                  for r in rows])
        truths[year] = truth
    con.execute("COMMIT")
    load_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    checkpoint_s = time.perf_counter() - t1
    con.close()
    return {"load_s": round(load_s, 1), "checkpoint_s": round(checkpoint_s, 1), "truth": truths,
            "file_mb": round(path.stat().st_size / 2**20, 1)}


def _copy_text(v) -> str:
    if v is None:
        return r"\N"
    if v is True:
        return "t"
    if v is False:
        return "f"
    return str(v)


def load_pg(engine, years: list[tuple[int, int, int]]) -> dict:
    truths = {}
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        t0 = time.perf_counter()
        for year, n, seed in years:
            for rows, truth in episodes(n, year, seed):
                buf = io.StringIO("".join("\t".join(_copy_text(v) for v in r) + "\n" for r in rows))
                cur.copy_expert(f"COPY stat_episodes ({', '.join(COLUMNS)}) FROM STDIN", buf)
            truths[year] = truth
        raw.commit()
        load_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        raw.set_isolation_level(0)                  # VACUUM runs outside a transaction
        cur.execute("VACUUM ANALYZE stat_episodes")
        analyze_s = time.perf_counter() - t1
        cur.execute("SELECT pg_total_relation_size('stat_episodes')")
        size = cur.fetchone()[0]
    finally:
        raw.close()
    return {"load_s": round(load_s, 1), "vacuum_analyze_s": round(analyze_s, 1), "truth": truths,
            "table_with_indexes_mb": round(size / 2**20, 1)}


# --- what is measured (runs in the child process) -------------------------------------------------

def _rss_kb() -> int:
    """Peak RSS of this process in kB: VmHWM of /proc/self/status. Not ``ru_maxrss``: on Linux
    that survives execve, so a child forked from this (large) generator process would report the
    parent's size at the fork (both are in the JSON)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _instrument(parts: dict, captured: list) -> None:
    """Time every table builder the report and the page call (by patching the module attributes
    they are called through), and keep the tables they return (for the digest and the checks)."""
    from webhook.stats import charts, export, incidents, report

    def wrap(mod, name, label):
        orig = getattr(mod, name)

        def timed(*a, **k):
            t = time.perf_counter()
            value = orig(*a, **k)
            key = label(a, k)
            parts[key] = round(parts.get(key, 0.0) + time.perf_counter() - t, 3)
            if isinstance(value, report.Table):
                captured.append((key, value))
            return value
        setattr(mod, name, timed)

    def args_label(name):
        return lambda a, k: f"{name}({', '.join(str(x) for x in (*a[2:], *k.values()) if isinstance(x, (str, int)))})"
    for name in ("indicator_table", "locality_table", "table", "cross"):
        if hasattr(report, name):
            wrap(report, name, args_label(name))
    for mod, name in ((incidents, "pending"), (export, "to_docx"), (charts, "trend"), (charts, "bars")):
        if hasattr(mod, name):
            wrap(mod, name, lambda a, k, n=f"{mod.__name__.rsplit('.', 1)[-1]}.{name}": n)


def _count_sql(engine, sql: dict) -> None:
    """Statements and their time as the database driver sees them (the rest is Python)."""
    from sqlalchemy import event

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn, cursor, statement, parameters, context, executemany):
        conn.info["bench_t"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn, cursor, statement, parameters, context, executemany):
        took = time.perf_counter() - conn.info.pop("bench_t", time.perf_counter())
        sql["statements"] += 1
        sql["seconds"] += took
        sql["slowest_s"] = max(sql["slowest_s"], took)


def child(spec: dict) -> dict:
    """One measurement in this (fresh) process: build the gateway (or the console app), then time
    the yearly report or the statistics page with its two charts."""
    t_start = time.perf_counter()
    from webhook.stats import export, report

    year = spec["year"]
    parts: dict[str, float] = {}
    captured: list = []
    _instrument(parts, captured)
    out: dict = {}
    sql = {"statements": 0, "seconds": 0.0, "slowest_s": 0.0}
    if spec["what"] == "report":
        gw = gateway(spec["url"], migrate=False)
        _count_sql(gw.engine, sql)
        rss_before = _rss_kb()
        t0 = time.perf_counter()
        body = report.yearly_docx(gw, year)          # what `helpline stats export --out r.docx` writes
        wall = time.perf_counter() - t0
        out["docx_bytes"] = len(body)
        gw.close()
    else:
        import re

        import webhook.app
        from webhook.settings import Settings

        webhook.app.upgrade = lambda *_a, **_k: None   # migrated by the parent: measure, do not change
        app = webhook.app.create_app(Settings.from_env({}, database_url=spec["url"], run_dispatcher=False, secret_key=SECRET))
        app.config["TESTING"] = True
        client = app.test_client()
        page = client.get("/console/login").get_data(as_text=True)
        token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        r = client.post("/console/login", data={"username": SUPERVISOR, "password": PASSWORD, "csrf": token})
        assert r.status_code in (302, 303), f"login failed: {r.status_code}"
        _count_sql(app.extensions["helpline"].engine, sql)
        rss_before = _rss_kb()
        urls = [f"/console/stats?year={year}", f"/console/stats/chart/trend.svg?year={year}&period=quarter",
                f"/console/stats/chart/breakdown.svg?year={year}&by=gbv_type"]
        t0 = time.perf_counter()
        sizes = []
        for url in urls:                              # the page, then the two <img> it loads
            t = time.perf_counter()
            r = client.get(url)
            assert r.status_code == 200, f"GET {url}: {r.status_code}"
            sizes.append(len(r.data))
            parts[f"GET {url.split('?')[0]}"] = round(time.perf_counter() - t, 3)
        wall = time.perf_counter() - t0
        out["response_bytes"] = sizes
        app.extensions["helpline"].close()
    blob = "\n".join(f"# {key}\n{export.to_csv(t)}" for key, t in captured)
    total = None                                      # the year's total of the gbv_type table
    for key, t in captured:
        if key == "table(gbv_type)" and t.total:
            total = str(t.total[1])
    import webhook

    sql.update(seconds=round(sql["seconds"], 3), slowest_s=round(sql["slowest_s"], 3))
    out.update({"wall_s": round(wall, 3), "parts": parts, "sql": sql, "tables": [k for k, _t in captured],
                "rss_before_kb": rss_before, "peak_rss_kb": _rss_kb(),
                "ru_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "process_s": round(time.perf_counter() - t_start, 3), "csv_bytes": len(blob.encode()),
                "digest": hashlib.sha256(blob.encode()).hexdigest()[:16], "year_total": total,
                "webhook": str(Path(webhook.__file__).parent), "csv": blob if spec.get("keep_csv") else None})
    return out


class WriteProbe:
    """SQLite only: a small write transaction (BEGIN IMMEDIATE, as the gateway's) every 50 ms from
    another process's point of view (its own connection, in a thread of this process), timed. A
    statistics query that holds the database's write lock shows up as a long write here."""

    def __init__(self, path: Path):
        import threading

        self.path, self.times, self.stop = path, [], threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        con = sqlite3.connect(str(self.path), isolation_level=None, timeout=120)
        con.execute("CREATE TABLE IF NOT EXISTS bench_probe (at REAL)")
        while not self.stop.is_set():
            t = time.perf_counter()
            con.execute("BEGIN IMMEDIATE")
            con.execute("INSERT INTO bench_probe VALUES (?)", (time.time(),))
            con.execute("COMMIT")
            self.times.append(time.perf_counter() - t)
            self.stop.wait(0.05)
        con.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(150)

    def summary(self) -> dict:
        if not self.times:
            return {"writes": 0}
        return {"writes": len(self.times), "max_s": round(max(self.times), 3),
                "over_1s": sum(1 for t in self.times if t > 1.0)}


def measure(url: str, what: str, reps: int, timeout: float, keep_csv: bool = False, probe_path=None) -> dict:
    runs = []
    for i in range(reps):
        spec = {"url": url, "year": YEAR, "what": what, "keep_csv": keep_csv and i == 0}
        t = time.perf_counter()
        probe = WriteProbe(probe_path) if probe_path else None
        if probe:
            probe.__enter__()
        try:
            p = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)], cwd=ROOT,
                               capture_output=True, text=True, timeout=timeout)
        finally:
            if probe:
                probe.__exit__()
        if p.returncode != 0:
            raise RuntimeError(f"{what} measurement failed:\n{p.stderr[-3000:]}")
        r = json.loads(p.stdout.strip().splitlines()[-1])
        r["subprocess_s"] = round(time.perf_counter() - t, 2)
        r["loadavg"] = os.getloadavg()[0]
        if probe:
            r["write_probe"] = probe.summary()
        runs.append(r)
        stall = f", longest write meanwhile {r['write_probe']['max_s']:.2f} s" if probe and r["write_probe"].get("writes") else ""
        print(f"    {what} #{i + 1}: {r['wall_s']:.2f} s, peak {r['peak_rss_kb'] / 1024:.0f} MB "
              f"(before the queries {r['rss_before_kb'] / 1024:.0f} MB), load {r['loadavg']:.2f}{stall}", flush=True)
    walls = [r["wall_s"] for r in runs]
    peaks = [r["peak_rss_kb"] / 1024 for r in runs]
    parts = {k: round(statistics.median(r["parts"].get(k, 0.0) for r in runs), 3) for k in runs[0]["parts"]}
    out = {"what": what, "reps": reps, "median_s": round(statistics.median(walls), 2), "max_s": round(max(walls), 2),
           "peak_mb_max": round(max(peaks), 1), "rss_before_mb": round(runs[0]["rss_before_kb"] / 1024, 1),
           "parts_median_s": parts, "tables": runs[0]["tables"],
           "sql_statements": runs[0]["sql"]["statements"],
           "sql_median_s": round(statistics.median(r["sql"]["seconds"] for r in runs), 2),
           "sql_slowest_s": round(max(r["sql"]["slowest_s"] for r in runs), 2), "digest": runs[0]["digest"],
           "digests_agree": len({r["digest"] for r in runs}) == 1,
           "year_total": runs[0]["year_total"], "webhook": runs[0]["webhook"], "csv": runs[0].get("csv"),
           "runs": [{k: v for k, v in r.items() if k not in ("csv", "tables")} for r in runs]}
    if probe_path:
        out["longest_write_s"] = max(r["write_probe"].get("max_s", 0) for r in runs)
    return out


# --- the run --------------------------------------------------------------------------------------

def machine(pg_base: str) -> dict:
    info = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "sqlite": sqlite3.sqlite_version, "loadavg_at_start": os.getloadavg()}
    try:
        import sqlalchemy

        info["sqlalchemy"] = sqlalchemy.__version__
        e = sqlalchemy.create_engine(pg_base, future=True)
        with e.connect() as c:
            info["postgresql"] = c.execute(sqlalchemy.text("show server_version")).scalar()
            info["pg_work_mem"] = c.execute(sqlalchemy.text("show work_mem")).scalar()
            info["pg_shared_buffers"] = c.execute(sqlalchemy.text("show shared_buffers")).scalar()
        e.dispose()
    except Exception as exc:  # noqa: BLE001
        info["postgresql"] = f"unreachable: {type(exc).__name__}"
    try:
        info["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                        text=True, timeout=10).stdout.strip()
        info["worktree_dirty"] = bool(subprocess.run(["git", "status", "--porcelain", "webhook/stats", "webhook/models.py",
                                                      "webhook/migrations"], cwd=ROOT, capture_output=True,
                                                     text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def run_database(db: str, args, tmp: Path, cleanup: list) -> dict:
    from sqlalchemy import create_engine, text

    n, prev = args.episodes, args.previous
    years = [(YEAR, n, args.seed)] + ([(YEAR - 1, prev, args.seed + 1)] if prev else [])
    print(f"{db}: loading {n:,} episodes of {YEAR}" + (f" and {prev:,} of {YEAR - 1}" if prev else ""), flush=True)
    if db == "sqlite":
        path = tmp / "stats.db"
        url = f"sqlite:///{path}"
        cleanup.append(("spool", url))
        gateway(url, migrate=True).close()
        loaded = load_sqlite(path, years)
        probe = None if args.no_probe else path
    else:
        schema = f"bench_stats_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.pg, future=True)
        with admin.begin() as c:
            c.execute(text(f'CREATE SCHEMA "{schema}"'))
        cleanup.append(("schema", (admin, schema)))
        url = f"{args.pg}{'&' if '?' in args.pg else '?'}options=-csearch_path%3D{schema}"
        cleanup.append(("spool", url))
        gw = gateway(url, migrate=True)
        try:
            loaded = load_pg(gw.engine, years)
        finally:
            gw.close()
        probe = None                    # PostgreSQL readers do not block writers
    from webhook.console import auth
    from webhook.db import transaction
    from webhook.stats import cube

    gw = gateway(url, migrate=False)
    try:
        auth.create_staff(gw, SUPERVISOR, PASSWORD, "supervisor")
        # episodes written straight into the table: the kept counts are computed from them once,
        # as `helpline stats rebuild` does after an import (the helpline keeps them at write time)
        t = time.perf_counter()
        with transaction(gw.Session) as s:
            loaded["counts_cells"] = sum(cube.rebuild(s, y) for y, _n, _seed in years)
        loaded["counts_rebuild_s"] = round(time.perf_counter() - t, 1)
    finally:
        gw.close()
    truth = loaded.pop("truth")
    print(f"  loaded in {loaded['load_s']} s; {truth[YEAR]['persons']:,} persons in {YEAR}, "
          f"{truth[YEAR]['persons_counted']:,} counted (consent not \"no\"); counts rebuilt in "
          f"{loaded['counts_rebuild_s']} s ({loaded['counts_cells']:,} cells)", flush=True)
    out = {"database": db, "load": loaded, "truth": {str(k): v for k, v in truth.items()}}
    for what in ("report", "dashboard"):
        out[what] = measure(url, what, args.reps, args.timeout, keep_csv=bool(args.keep_csv), probe_path=probe)
        got = out[what]["year_total"]
        out[what]["total_matches_truth"] = got == str(truth[YEAR]["persons_counted"])
        csv = out[what].pop("csv", None)
        if args.keep_csv:
            Path(args.keep_csv).mkdir(parents=True, exist_ok=True)
            (Path(args.keep_csv) / f"{db}_{what}.csv").write_text(csv or "")
    out["write"] = write_cost(url, args.writes)
    w = out["write"]
    print(f"    write: record_message on the loaded database, median {w['median_ms']} ms, p95 {w['p95_ms']} ms "
          f"over {w['messages']} messages of {w['persons']} persons", flush=True)
    return out


def write_cost(url: str, n: int, persons: int = 100) -> dict:
    """What keeping the counts costs a write: ``record_message`` (one episode folded and its
    person's count changes applied) timed on the loaded database, for new and returning persons
    over the months of the measured year. Runs after the report measurements (it adds episodes)."""
    from webhook import pipeline
    from webhook.channels.base import Inbound
    from webhook.stats import episodes as E

    rng = random.Random(7)
    texts = ["chồng tôi đánh tôi ở Núi Thành", "em là học sinh lớp 8, bị bạn bắt nạt", "xin chào",
             "con gái tôi 13 tuổi bị thầy giáo sàm sỡ", "luật phòng chống bạo lực gia đình phạt bao nhiêu"]
    gw = gateway(url, migrate=False)
    try:
        convs = [pipeline.receive(gw, Inbound("web", f"bench-w-{uuid.uuid4().hex[:8]}", f"w{i}", text="x"))
                 .conversation_id for i in range(persons)]
        start = dt.datetime(YEAR, 1, 1, 3, tzinfo=dt.timezone.utc).timestamp()
        times = []
        for _ in range(n):
            t = time.perf_counter()
            E.record_message(gw, rng.choice(convs), rng.choice(texts), rng.choice(["none", "medium", "high"]),
                             "domestic_violence", at=start + rng.randrange(360) * 86400)
            times.append((time.perf_counter() - t) * 1000)
    finally:
        gw.close()
    times.sort()
    return {"messages": n, "persons": persons, "median_ms": round(statistics.median(times), 2),
            "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2), "max_ms": round(times[-1], 2)}


def cleanup_all(cleanup: list) -> list[str]:
    from sqlalchemy import text

    problems = []
    for kind, what in reversed(cleanup):
        try:
            if kind == "schema":
                admin, schema = what
                with admin.begin() as c:
                    c.execute(text("SET LOCAL lock_timeout = '15s'"))
                    c.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
                admin.dispose()
            elif kind == "spool":
                d = spool_dir(what)
                if d.is_dir() and not any(d.iterdir()):
                    d.rmdir()
        except Exception as exc:  # noqa: BLE001 - cleanup goes on
            problems.append(f"cleanup {kind}: {exc!r}")
    return problems


LABELS = {"report": "yearly report (DOCX)", "dashboard": "statistics page + 2 charts"}


def table(result: dict) -> str:
    n = result["settings"]["episodes"]
    lines = [f"| database | load {n:,} episodes s | what | median s | max s | SQL statements | slowest s | "
             f"peak RSS MB | RSS before MB | longest concurrent write s | ≤ {TARGET_S:g} s | ≤ {TARGET_MB} MB |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result.get("databases", []):
        for what in ("report", "dashboard"):
            m = r[what]
            lines.append(f"| {r['database']} | {r['load']['load_s']} | {LABELS[what]} | {m['median_s']} | {m['max_s']} | "
                         f"{m['sql_statements']} | {m['sql_slowest_s']} | {m['peak_mb_max']} | {m['rss_before_mb']} | "
                         f"{m.get('longest_write_s', '—')} | {'yes' if m['max_s'] <= TARGET_S else 'NO'} | "
                         f"{'yes' if m['peak_mb_max'] <= TARGET_MB else 'NO'} |")
    lines += ["", "Median seconds per part (a part called twice is summed; the page's parts are inside its GET):", ""]
    for r in result.get("databases", []):
        for what in ("report", "dashboard"):
            parts = ", ".join(f"{k} {v}" for k, v in r[what]["parts_median_s"].items() if v >= 0.01)
            lines.append(f"- {r['database']} {what}: {parts}")
    lines += ["", "Keeping the counts (webhook/stats/cube.py): rebuilt from the loaded episodes once, then the cost "
                  "of one write:", ""]
    for r in result.get("databases", []):
        w = r.get("write", {})
        lines.append(f"- {r['database']}: rebuild {r['load'].get('counts_rebuild_s')} s ({r['load'].get('counts_cells', 0):,} "
                     f"cells); record_message median {w.get('median_ms')} ms, p95 {w.get('p95_ms')} ms, max "
                     f"{w.get('max_ms')} ms ({w.get('messages')} messages)")
    loads = [x["loadavg"] for r in result.get("databases", []) for w in ("report", "dashboard") for x in r[w]["runs"]]
    if loads:
        lines += ["", f"1-minute load average during the measurements: {min(loads):.2f} to {max(loads):.2f} "
                      f"({result['machine']['cpus']} CPUs)"]
    return "\n".join(lines)


def checks(result: dict) -> dict:
    out = {}
    for r in result.get("databases", []):
        for what in ("report", "dashboard"):
            m = r[what]
            out[f"{r['database']} {what}: <= {TARGET_S:g} s (max of {m['reps']})"] = m["max_s"] <= TARGET_S
            out[f"{r['database']} {what}: peak RSS <= {TARGET_MB} MB"] = m["peak_mb_max"] <= TARGET_MB
            out[f"{r['database']} {what}: year total = persons generated (consent not \"no\")"] = m["total_matches_truth"]
            out[f"{r['database']} {what}: same tables in every repetition"] = m["digests_agree"]
    dbs = result.get("databases", [])
    if len(dbs) == 2:
        for what in ("report", "dashboard"):
            out[f"sqlite and postgresql give the same tables ({what})"] = dbs[0][what]["digest"] == dbs[1][what]["digest"]
    return out


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(child(json.loads(sys.argv[2]))))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="100,000 episodes, 2 repetitions (a smoke run)")
    ap.add_argument("--episodes", type=int, help="episodes of the measured year (default 1,000,000; 100,000 with --quick)")
    ap.add_argument("--previous", type=int, help="episodes of the year before (default 10%% of --episodes; 0: none)")
    ap.add_argument("--reps", type=int, help="fresh-process repetitions per query (default 3; 2 with --quick)")
    ap.add_argument("--databases", default="sqlite,postgresql")
    ap.add_argument("--pg", default=os.environ.get("BENCH_PG_URL", PG_DEFAULT))
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=900, help="seconds per measurement subprocess")
    ap.add_argument("--out", default=str(ROOT / "reports" / "bench_stats.json"))
    ap.add_argument("--keep-csv", metavar="DIR", help="write each database's yearly report CSV into DIR")
    ap.add_argument("--no-probe", action="store_true", help="SQLite: no concurrent writer while measuring")
    ap.add_argument("--writes", type=int, default=500, help="record_message calls timed after the reads (the write cost)")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (the SQLite file)")
    args = ap.parse_args()
    args.episodes = args.episodes or (100_000 if args.quick else 1_000_000)
    args.previous = args.episodes // 10 if args.previous is None else args.previous
    args.reps = args.reps or (2 if args.quick else 3)
    dbs = [d.strip() for d in args.databases.split(",") if d.strip()]
    if set(dbs) - {"sqlite", "postgresql"}:
        ap.error("--databases: sqlite and/or postgresql")
    info = machine(args.pg)
    if "postgresql" in dbs and str(info["postgresql"]).startswith("unreachable"):
        print(f"PostgreSQL at {args.pg} is {info['postgresql']}: start it, pass --pg, or --databases sqlite",
              file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    tmp = Path(tempfile.mkdtemp(prefix="bench-stats-"))
    result: dict = {"machine": info, "settings": {"episodes": args.episodes, "previous_year": args.previous,
                                                  "year": YEAR, "reps": args.reps, "seed": args.seed,
                                                  "quick": args.quick, "databases": dbs},
                    "bar": {"seconds": TARGET_S, "peak_mb": TARGET_MB}}
    print(f"bench/stats.py: {args.episodes:,} episodes, {args.reps} repetitions, {info['cpus']} CPUs, "
          f"load average {info['loadavg_at_start'][0]:.2f}", flush=True)
    cleanup: list = []
    interrupted = None
    started = time.time()
    try:
        result["databases"] = [run_database(db, args, tmp, cleanup) for db in dbs]
    except (KeyboardInterrupt, SystemExit) as exc:
        interrupted = exc
        print(f"\ninterrupted ({type(exc).__name__}); cleaning up", file=sys.stderr, flush=True)
    except Exception as exc:  # noqa: BLE001 - reported, cleaned up, and the run fails
        import traceback

        traceback.print_exc()
        result["error"] = repr(exc)
    finally:
        for problem in cleanup_all(cleanup):
            print(problem, file=sys.stderr)
        if args.keep_tmp:
            print(f"temp dir kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    result["machine"]["loadavg_at_end"] = os.getloadavg()
    result["wall_s"] = round(time.time() - started, 1)
    if interrupted is not None:
        return 130 if isinstance(interrupted, KeyboardInterrupt) else (interrupted.code or 1)
    result["checks"] = checks(result)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    print()
    print(table(result))
    print("\nchecks:")
    for name, ok in result["checks"].items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
    print(f"\nwritten {out} ({result['wall_s']} s)")
    return 1 if "error" in result or not all(result["checks"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
