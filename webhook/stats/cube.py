"""The statistics' counts, kept up to date as episodes change (``stat_counts``).

A report used to group a year's episodes by person (1M episodes: ~400,000 persons) on every
request: 10 s on SQLite. Instead, each write that changes an episode recomputes the person's
summaries of the year, of the episode's quarter and of its month from that person's own
episodes (at most 12 rows, read under a row lock), and adds the difference between the old and
the new summary to a small table of counts:

    (year, kind, period, dim, value) -> persons, survivors, survivors who sought help,
                                        needed help, needed help and helped, other writers

``kind`` is ``year`` (period 0), ``quarter`` (1-4) or ``month`` (1-12); ``dim`` is "" for the
totals or one of ``report.DIMENSIONS``; ``value`` the person's label ("unknown" when none). A
report reads a few thousand rows of it instead of a million episodes.

The summary rules are those of ``report._ranked`` (the SQL that groups episodes by person), in
Python; ``rebuild`` recomputes the table from the episodes with that SQL (after a bulk import, a
migration, or to check: ``helpline stats rebuild``), and the tests compare both ways after random
writes. Counts are raw: everything published still goes through ``suppress``.
"""
from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from typing import Iterable, Optional

from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from webhook.models import Episode, StatCount
from webhook.stats.profile import AGE_GROUPS, GBV_TYPES, RISKS

DIMENSIONS = ("former_district", "locality", "gbv_type", "channel", "age_group", "reporter", "sex", "relationship",
              "risk")
KINDS = ("year", "quarter", "month")
SURVIVOR_ROLES = ("survivor", "student", "unknown")
DISCLOSED = GBV_TYPES[:7]                     # the six core types and "undetermined"
REPORTER_ORDER = ("survivor", "student", "parent", "witness_relative", "professional", "unknown")
NUMBERS = ("persons", "survivors", "sought", "needed", "helped", "others")


def quarter(month: int) -> int:
    return (month - 1) // 3 + 1


def _rank(value, order) -> int:
    return order.index(value) if value in order else len(order)


def _label(rank: int, order) -> str:
    return order[rank] if rank < len(order) else "unknown"


def summary(rows: Iterable) -> Optional[dict]:
    """One person's summary over their episodes ``rows`` (those of one period), the rules of
    ``report._ranked``: the most serious GBVIMS type, the highest risk, the closest reporter role,
    the youngest known age group, a said sex, the (greatest) named place and relationship, the
    (smallest) channel, and whether any month sought, needed or got help. None: no counted row."""
    rows = [r for r in rows if r.consent != "no"]
    if not rows:
        return None
    known_sex = [r.sex for r in rows if r.sex != "unknown"]

    def greatest(name):
        values = [getattr(r, name) for r in rows if getattr(r, name) is not None]
        return max(values) if values else "unknown"

    return {
        "gbv_type": _label(min(_rank(r.gbv_type, GBV_TYPES) for r in rows), GBV_TYPES),
        "risk": _label(max(_rank(r.risk, RISKS) for r in rows), RISKS),
        "reporter": _label(min(_rank(r.reporter, REPORTER_ORDER) for r in rows), REPORTER_ORDER),
        "age_group": _label(min(_rank(r.age_group, AGE_GROUPS) for r in rows), AGE_GROUPS),
        "sex": max(known_sex) if known_sex else "unknown",
        "former_district": greatest("former_district"),
        "locality": greatest("locality"),
        "relationship": greatest("relationship"),
        "channel": min(r.channel for r in rows),
        "sought": any(r.sought_help is True for r in rows),
        "needed": any(r.needed_help is True for r in rows),
        "helped": any(r.helped is True for r in rows),
    }


def numbers(p: dict) -> tuple:
    """(persons, survivors, sought, needed, helped, others) that one person adds to a cell."""
    disclosed = p["gbv_type"] in DISCLOSED
    survivor = disclosed and p["reporter"] in SURVIVOR_ROLES
    return (1, int(survivor), int(survivor and p["sought"]), int(p["needed"]), int(p["needed"] and p["helped"]),
            int(disclosed and p["reporter"] not in SURVIVOR_ROLES))


def _cells(kind: str, period: int, p: Optional[dict]):
    if p is None:
        return
    n = numbers(p)
    yield (kind, period, "", ""), n
    for dim in DIMENSIONS:
        yield (kind, period, dim, str(p[dim])), n


def summaries(episodes: list, month: int) -> dict:
    """The person's summaries touched by a change to ``month``: the year, its quarter, the month."""
    q = quarter(month)
    return {("year", 0): summary(episodes),
            ("quarter", q): summary(e for e in episodes if quarter(e.month) == q),
            ("month", month): summary(e for e in episodes if e.month == month)}


def delta(before: dict, after: dict) -> dict:
    """The change to the counts when a person's summaries go from ``before`` to ``after``."""
    out: dict = defaultdict(lambda: [0] * 6)
    for (kind, period), p in after.items():
        if p == before.get((kind, period)):
            continue
        for key, n in _cells(kind, period, before.get((kind, period))):
            out[key] = [a - b for a, b in zip(out[key], n)]
        for key, n in _cells(kind, period, p):
            out[key] = [a + b for a, b in zip(out[key], n)]
    return {k: v for k, v in out.items() if any(v)}


def person_episodes(s, person: str, year: int) -> list:
    """The person's episodes of the year, with the person's year locked until the transaction
    ends. On PostgreSQL a transaction-scoped advisory lock on (person, year), taken before the
    episodes are read: two messages of one person are folded one after the other, and the second
    reads the first's episodes, also one it created (a row lock could not cover a row not yet
    made). SQLite writers are serialised already (one writer at a time)."""
    if s.get_bind().dialect.name == "postgresql":
        key = int(hashlib.blake2b(f"{person}:{year}".encode(), digest_size=7).hexdigest(), 16)
        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
    return list(s.execute(select(Episode).where(Episode.person == person, Episode.year == year)
                          .order_by(Episode.month)).scalars())


_UPSERT: dict = {}


def _upsert(dialect: str):
    """INSERT ... ON CONFLICT DO UPDATE adding the numbers, built once per dialect (one compiled
    statement, run with executemany)."""
    if dialect not in _UPSERT:
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        stmt = insert(StatCount.__table__)
        _UPSERT[dialect] = stmt.on_conflict_do_update(
            index_elements=["year", "kind", "period", "dim", "value"],
            set_={name: getattr(StatCount.__table__.c, name) + getattr(stmt.excluded, name) for name in NUMBERS})
    return _UPSERT[dialect]


def apply(s, year: int, changes: dict) -> None:
    """Add ``changes`` (from ``delta``) to ``stat_counts``, keys in a fixed order (concurrent
    writers lock the rows they share in the same order: no deadlock)."""
    if not changes:
        return
    dialect = s.get_bind().dialect.name
    if dialect == "postgresql":             # one round trip (psycopg2 runs an executemany row by row)
        from psycopg2.extras import execute_values

        cursor = s.connection().connection.cursor()
        execute_values(cursor, _PG_UPSERT, [(year, *key, *n) for key, n in sorted(changes.items())])
        return
    values = [dict(year=year, kind=k, period=p, dim=d, value=v, **dict(zip(NUMBERS, n)))
              for (k, p, d, v), n in sorted(changes.items())]
    s.execute(_upsert(dialect), values)


_PG_UPSERT = (f"INSERT INTO stat_counts (year, kind, period, dim, value, {', '.join(NUMBERS)}) VALUES %s "
              "ON CONFLICT (year, kind, period, dim, value) DO UPDATE SET "
              + ", ".join(f"{n} = stat_counts.{n} + EXCLUDED.{n}" for n in NUMBERS))


class Tracker:
    """Wraps one change to a person's episodes: ``begin`` before (locks and summarises),
    ``commit`` after (summarises again and applies the difference), inside the same transaction."""

    def __init__(self, s, person: str, year: int, month: int):
        self.s, self.person, self.year, self.month = s, person, year, month
        self.episodes = person_episodes(s, person, year)
        self.before = summaries(self.episodes, month)

    def add(self, episode) -> None:
        """A new episode of the person (added to the session by the caller)."""
        self.episodes.append(episode)

    def commit(self) -> None:
        """The episodes were changed in memory (under the lock): apply the difference."""
        apply(self.s, self.year, delta(self.before, summaries(self.episodes, self.month)))


# --- rebuilding from the episodes ------------------------------------------------------------------

def scan(s, year: int, kind: str) -> Counter:
    """The counts of one kind of period computed from the episodes by SQL (``report.ScanCounts``)."""
    from webhook.stats.report import ScanCounts

    counts = ScanCounts(s, year, None if kind == "year" else kind, DIMENSIONS)
    out: Counter = Counter()
    for (dim, period), cells in counts.data.items():
        for value, n in cells.items():
            out[(kind, period, dim, "" if dim == "" else value)] = tuple(n)
    return out


def stored(s, year: int, kind: Optional[str] = None) -> dict:
    where = [StatCount.year == year, StatCount.persons > 0]
    if kind:
        where.append(StatCount.kind == kind)
    return {(r.kind, r.period, r.dim, r.value): tuple(getattr(r, n) for n in NUMBERS)
            for r in s.execute(select(StatCount).where(*where)).scalars()}


def rebuild(s, year: int) -> int:
    """Recompute ``stat_counts`` of ``year`` from its episodes; returns the number of cells."""
    from webhook.stats.report import tune_for_scan

    tune_for_scan(s)
    s.execute(delete(StatCount).where(StatCount.year == year))
    cells = {}
    for kind in KINDS:
        cells.update(scan(s, year, kind))
    values = [dict(year=year, kind=k, period=p, dim=d, value=v, **dict(zip(NUMBERS, n)))
              for (k, p, d, v), n in sorted(cells.items())]
    for i in range(0, len(values), 500):
        s.execute(StatCount.__table__.insert(), values[i:i + 500])
    return len(values)


def years(s) -> list[int]:
    return [int(y) for (y,) in s.execute(select(Episode.year).distinct().order_by(Episode.year))]


def check(s, year: int) -> list:
    """The cells where the kept counts differ from a fresh computation (empty: they agree)."""
    from webhook.stats.report import tune_for_scan

    tune_for_scan(s)
    want = {}
    for kind in KINDS:
        want.update(scan(s, year, kind))
    have = stored(s, year)
    return sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))


def cli(gw, action: str, year: Optional[int] = None) -> int:
    """``helpline stats rebuild|check [--year Y]``: recompute the counts, or compare them with the
    episodes (exit 1 when they differ; only the number of differing cells is printed)."""
    from webhook.db import transaction

    with transaction(gw.Session) as s:
        todo = [year] if year else years(s)
        bad = 0
        for y in todo:
            if action == "rebuild":
                print(f"year {y}: {rebuild(s, y)} cells")
            else:
                wrong = len(check(s, y))
                bad += wrong
                print(f"year {y}: " + (f"{wrong} cells differ from the episodes" if wrong else "agrees with the episodes"))
    return 1 if bad else 0
