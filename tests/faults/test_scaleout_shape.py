"""The scale-out shape, started as bench/load.py starts it (configuration only: PostgreSQL for the
gateway and Rasa's trackers, Redis for Rasa's locks, 2 Rasa + 2 action servers, gunicorn with 2
gateway processes behind one address, 2 workers), takes traffic while one Rasa server is
SIGKILLed and restarted: nothing lost, nothing doubled, every danger message answered with the
numbers first and queued. bench/load.py measures the same shape's speed."""
from __future__ import annotations

import importlib
import secrets

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from tests.faults.conftest import need
from tests.fakes import FakeTelegram

pytestmark = [pytest.mark.faults, pytest.mark.model, pytest.mark.slow]

load = importlib.import_module("bench.load")
gateway_bench = importlib.import_module("bench.gateway")


@pytest.fixture
def database():
    engine = create_engine(load.PG_URL, future=True)
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        need(f"PostgreSQL unreachable at {load.PG_URL}: {type(exc.orig).__name__}")
    finally:
        engine.dispose()
    name = "helpline_shape_" + secrets.token_hex(4)
    load.create_database(name)
    try:
        yield name
    finally:
        load.drop_database(name)


def test_the_scale_out_shape_loses_nothing_when_a_rasa_server_is_killed(fault_model, tmp_path, database):
    fake = FakeTelegram().start()
    arrivals = gateway_bench.Arrivals(fake)
    try:
        shape = load.start_scaleout(fault_model, tmp_path, fake, database)
        try:
            assert shape.procs["gunicorn"].poll() is None
            result = load.run_phase(shape, arrivals, 60_000_000, seconds=45.0, clients=8, kill_at=8.0)
            engine = create_engine(shape.database_url, future=True)
            try:
                with engine.connect() as c:
                    senders = c.execute(text("SELECT count(DISTINCT sender_id) FROM rasa.events")).scalar()
                    conversations = c.execute(text("SELECT count(*) FROM conversations")).scalar()
            finally:
                engine.dispose()
        finally:
            shape.stop()
    finally:
        fake.stop()
    figures = f"{result} rasa_senders={senders} conversations={conversations}"
    assert "back_at_s" in result, figures             # Rasa 1 was killed and came back during the traffic
    assert result["posted"] >= 60 and result["http_errors"] == 0, figures
    assert result["stored"] == result["posted"] == conversations, figures
    assert result["lost"] == 0, figures
    assert result["duplicated_messages"] == 0 and result["duplicated_replies"] == 0, figures
    assert result["danger_without_numbers_first"] == 0 and result["danger_without_case"] == 0, figures
    # the dialogue state lived in PostgreSQL, shared by both Rasa servers
    assert senders >= conversations, figures
