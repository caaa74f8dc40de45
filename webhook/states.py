"""Named states and the transitions allowed between them, written once.

Every state change in the gateway goes through ``move``: an impossible transition is a bug, and it
fails loudly instead of leaving a message or a reply in a state nobody will ever pick up again.
"""
from __future__ import annotations

# Conversation mode
BOT, QUEUED, WITH_COUNSELLOR, CLOSED = "bot", "queued", "with_counsellor", "closed"
MODES = {
    BOT: {QUEUED, CLOSED},
    QUEUED: {WITH_COUNSELLOR, BOT, CLOSED},
    WITH_COUNSELLOR: {BOT, QUEUED, CLOSED},     # queued again: the counsellor released the case
    CLOSED: {BOT},
}

# Inbound message
PENDING, ANSWERED, DEFERRED, IGNORED, HELD = "pending", "answered", "deferred", "ignored", "held"
INBOUND = {
    PENDING: {ANSWERED, DEFERRED, IGNORED, HELD},
    DEFERRED: {ANSWERED, DEFERRED, HELD},
    HELD: {ANSWERED},
    ANSWERED: set(),
    IGNORED: set(),
}

# Outbox row
QUEUED_OUT, SENDING, SENT, DELIVERED, FAILED, UNDELIVERABLE = (
    "queued", "sending", "sent", "delivered", "failed", "undeliverable")
OUTBOX = {
    QUEUED_OUT: {SENDING, UNDELIVERABLE},
    SENDING: {SENT, QUEUED_OUT, FAILED, UNDELIVERABLE},
    SENT: {DELIVERED, FAILED, UNDELIVERABLE},
    DELIVERED: set(),
    FAILED: set(),
    UNDELIVERABLE: set(),
}

# Contact
ACTIVE, STOPPED = "active", "stopped"


class TransitionError(RuntimeError):
    pass


def check(table: dict, current: str, new: str) -> str:
    if new not in table.get(current, set()):
        raise TransitionError(f"{current} -> {new} is not allowed")
    return new
