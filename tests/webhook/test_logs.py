"""Structured logs (webhook/logs.py): JSON lines of event names and ids; an exception's message
and long digit runs never reach the log. The end-to-end scan is in test_e2e.py."""
from __future__ import annotations

import io
import json
import logging

import yaml

from bot.paths import ROOT
from webhook.logs import JsonFormatter, scrub, setup


def _line(logger_name: str, *args, exc: BaseException | None = None) -> dict:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger(logger_name)
    log.addHandler(handler)
    log.propagate, before = False, log.propagate
    try:
        if exc is None:
            log.warning(*args)
        else:
            try:
                raise exc
            except BaseException:
                log.exception(*args)
    finally:
        log.removeHandler(handler)
        log.propagate = before
    return json.loads(stream.getvalue())


def test_an_event_line_becomes_a_json_object_of_its_ids():
    line = _line("webhook.test", "send_failed outbox=%s channel=%s error=%s", 41, "sms", "30007")
    assert line["event"] == "send_failed" and line["outbox"] == "41" and line["channel"] == "sms"
    assert line["error"] == "30007" and line["level"] == "WARNING" and line["logger"] == "webhook.test"
    assert line["ts"].endswith("Z")


def test_an_exception_is_its_type_and_where_never_its_message():
    secret = "INSERT INTO contacts VALUES ('+84905123456', 'chong toi danh toi')"
    line = _line("webhook.test", "dispatch_failed conversation=%s", 7, exc=RuntimeError(secret))
    text = json.dumps(line)
    assert line["event"] == "dispatch_failed" and line["error"] == "RuntimeError"
    assert line["trace"] and all(":" in frame for frame in line["trace"])
    assert "chong toi" not in text and "905123456" not in text


def test_phone_numbers_and_chat_ids_are_scrubbed_short_ids_are_kept():
    assert scrub("to=+84905123456 chat=906660911 zalo=7712345000911") == "to=[digits] chat=[digits] zalo=[digits]"
    assert scrub("call 0905 123 456 now") == "call [digits] now"
    assert scrub("conversation=1234567 case=42 took=0.25") == "conversation=1234567 case=42 took=0.25"
    line = _line("webhook.test", "oncall_alert_failed case=%s target=%s", 3, "+84905123456")
    assert line["target"] == "[digits]" and line["case"] == "3"


def test_a_library_line_keeps_only_its_event_name():
    """Rasa logs a timed-out message's text at ERROR (structlog): only the event name is kept."""
    structlog_json = '{"event": "rest.message.received.timeout", "text": "chong toi danh toi 0905123456"}'
    console = "2026-11-29 12:00:00 [error    ] rest.message.received.timeout text='chong toi danh toi'"
    for message in (structlog_json, console):
        line = _line("rasa.core.channels.rest", message)
        assert line == {**line, "event": "rest.message.received.timeout"} and "chong" not in json.dumps(line)
    line = _line("sqlalchemy.pool", "Exception during reset of connection holding chong toi", exc=ValueError("x"))
    assert line["event"] == "Exception" and line["error"] == "ValueError" and "chong" not in json.dumps(line)


def test_free_text_lines_are_kept_as_detail():
    line = _line("webhook.serve", "Loading model from %s", "models/helpline.tar.gz")
    assert line["event"] == "message" and line["detail"] == "Loading model from models/helpline.tar.gz"


def test_the_processes_log_json_lines(monkeypatch):
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        setup(stream=stream)
        logging.getLogger("webhook.pipeline").info("case_opened case=%s risk=%s", 5, "imminent")
        logging.getLogger("werkzeug").info('127.0.0.1 - "POST /webhooks/sms HTTP/1.1" 200')   # access log: quiet
        lines = [json.loads(x) for x in stream.getvalue().splitlines()]
        assert lines == [{**lines[0], "event": "case_opened", "case": "5", "risk": "imminent"}]
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    # Rasa and the action server use the same formatter through their logging config
    config = yaml.safe_load((ROOT / "bot" / "logging.yml").read_text())
    assert config["formatters"]["json"]["()"] == "webhook.logs.JsonFormatter"
    assert config["root"]["level"] == "WARNING"
