"""Structured logs: one JSON object per line, an event name and ids, never what a person wrote.

Every log call in the gateway is written ``logger.info("event_name key=%s key=%s", id, id)``;
this formatter turns that into ``{"ts": …, "level": …, "logger": …, "event": "event_name",
"key": "id", …}`` so a log pipeline can count and alert on events without parsing prose.

Two guards stand behind the rule that callers log ids only:
- an exception is written as its type and the places it passed (file, line, function), never its
  message: a database error's message quotes the statement's parameters;
- a line from another library (Rasa, Sanic, SQLAlchemy, gunicorn…) keeps only its event name
  (its first word) and the exception's type and places: Rasa logs a timed-out message's text at
  ERROR, and no one reviews what libraries put in their lines;
- any run of 8 or more digits, spaces or dashes allowed between them (a phone number, a Telegram
  or Zalo id), is replaced by ``[digits]``; the gateway's own ids stay shorter for a long while.
"""
from __future__ import annotations

import json
import logging
import re
import sys
import time
import traceback

DIGITS = re.compile(r"\+?\d[\d .-]{5,}\d")
KEY_VALUE = re.compile(r"(\w+)=(\S*)")
EVENT = re.compile(r"^[a-z][a-z0-9_]*$")
DOTTED = re.compile(r"\b[a-z_]+(?:\.[a-z_]+)+\b")       # structlog's event names: rest.message.received
FIRST_WORD = re.compile(r"[A-Za-z][\w-]{0,39}")
OURS = ("webhook", "actions", "bot", "tests", "__main__")


def scrub(text: str) -> str:
    return DIGITS.sub(lambda m: "[digits]" if sum(c.isdigit() for c in m.group()) >= 8 else m.group(), text)


def _library_event(message: str) -> str:
    """What a library's line is about, without the rest of it."""
    if message.startswith("{"):
        try:
            return str(json.loads(message).get("event", "message"))[:80]
        except (ValueError, AttributeError):
            pass
    dotted = DOTTED.search(message[:200])
    if dotted:
        return dotted.group()
    word = FIRST_WORD.search(message)
    return word.group() if word else "message"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        try:
            message = record.getMessage()
        except Exception:               # a caller's bad format string must not lose the event
            message = str(record.msg)
        message = scrub(message)
        head, _, rest = message.partition(" ")
        out = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
               "level": record.levelname, "logger": record.name}
        if record.name.split(".", 1)[0] not in OURS:
            out["event"] = _library_event(message)
        elif EVENT.match(head):
            out["event"] = head
            fields = dict(KEY_VALUE.findall(rest))
            leftover = KEY_VALUE.sub("", rest).strip()
            for key, value in fields.items():
                out.setdefault(key, value)
            if leftover:
                out["detail"] = leftover
        else:
            out["event"] = "message"
            out["detail"] = message
        if record.exc_info and record.exc_info[0] is not None:
            kind, _exc, tb = record.exc_info
            out["error"] = kind.__name__
            out["trace"] = [f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}:{f.name}"
                            for f in traceback.extract_tb(tb)][-8:]
        return json.dumps(out, ensure_ascii=False)


# Libraries whose INFO lines carry URLs with a phone number, a request line or a payload.
QUIET = ("werkzeug", "httpx", "httpcore", "urllib3", "twilio", "twilio.http_client", "telegram",
         "gunicorn.access", "sqlalchemy.engine")


def setup(level: int = logging.INFO, stream=None) -> logging.Handler:
    """JSON lines on stderr (or ``stream``) for the whole process; returns the handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler
