"""Engine, sessions and migrations. No engine is created at import time.

SQLite (the default) runs in WAL mode with a busy timeout so the gateway's threads and the worker
process can write concurrently; PostgreSQL is reached through the same code with one URL.
"""
from __future__ import annotations

import contextlib
import threading
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Keep connections open (SQLAlchemy 1.4 would open and close one per session): closing the
        # last connection to a WAL database checkpoints it, which costs an fsync per transaction.
        engine = create_engine(url, future=True, poolclass=QueuePool, pool_size=32, max_overflow=32,
                               hide_parameters=True, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # pragma: no cover - exercised by every SQLite test
            # pysqlite's implicit BEGIN is unreliable; we issue BEGIN IMMEDIATE ourselves so a
            # read-then-write transaction never deadlocks with another writer.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):  # pragma: no cover
            # a read-only unit of work (``reading``) takes no write lock: in WAL mode readers and
            # the writer never wait for each other
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("helpline_read") else "BEGIN IMMEDIATE")

        return engine
    # hide_parameters: a database error's message never quotes what was written (sealed bodies,
    # pseudonyms), whoever logs it
    return create_engine(url, future=True, pool_pre_ping=True, pool_size=10, max_overflow=20, hide_parameters=True)


def make_sessionmaker(engine: Engine) -> sessionmaker:
    factory = sessionmaker(bind=engine, future=True, expire_on_commit=False)
    # SQLite has one writer at a time and its busy handler waits by sleeping (up to 100 ms a
    # try); threads of one process queue on a mutex instead, which hands over in microseconds.
    factory.write_lock = threading.RLock() if engine.dialect.name == "sqlite" else None
    return factory


@contextlib.contextmanager
def transaction(factory: sessionmaker):
    """One unit of work: commit on success, roll back on any error."""
    lock = getattr(factory, "write_lock", None)
    with (lock if lock is not None else contextlib.nullcontext()):
        session: Session = factory()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


@contextlib.contextmanager
def reading(factory: sessionmaker):
    """A long read (statistics over a year) that must not hold up a single message: no
    in-process writer lock and, on SQLite, a plain BEGIN instead of BEGIN IMMEDIATE. Nothing it
    changes is committed."""
    with factory.kw["bind"].connect() as conn:
        conn.execution_options(helpline_read=True)
        session = Session(bind=conn, future=True)
        try:
            yield session
        finally:
            session.close()
            conn.rollback()


@contextlib.contextmanager
def connection(engine: Engine, lock=None):
    """A Core connection in one transaction (the hot path: no ORM unit of work)."""
    with (lock if lock is not None else contextlib.nullcontext()):
        with engine.begin() as conn:
            yield conn


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema to ``revision``: the only way tables are created or changed."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)
