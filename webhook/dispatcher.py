"""Threads that move messages along without making the provider wait.

``Dispatcher``: the gateway's fast path. A webhook stores its message and drops the conversation
id here; a pool thread processes it at once (Rasa, outbox, send). Nothing is lost if the process
dies in between: the message is in the database and the worker's sweep picks it up.

``Worker``: the sweep loop (``pipeline.sweep``), run by ``helpline worker`` as its own process, or
in a thread by tests and the single-process demo: replays deferred messages when Rasa is back,
retries failed sends with backoff, releases stale claims.
"""
from __future__ import annotations

import logging
import queue
import threading
import time

from webhook import pipeline

logger = logging.getLogger(__name__)


class Dispatcher:
    def __init__(self, gw, threads: int = 8):
        self.gw = gw
        self.queue: "queue.Queue[int | None]" = queue.Queue()
        self._pending: set[int] = set()
        self._dirty: set[int] = set()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._busy = 0
        self.threads = [threading.Thread(target=self._run, name=f"dispatch-{i}", daemon=True) for i in range(threads)]
        for t in self.threads:
            t.start()

    def submit(self, conversation_id: int) -> None:
        with self._lock:
            if conversation_id in self._pending:
                return      # already waiting: the thread that takes it will see the new message
            self._pending.add(conversation_id)
        self.queue.put(conversation_id)

    def _run(self) -> None:
        while True:
            conv_id = self.queue.get()
            if conv_id is None:
                return
            with self._lock:
                self._pending.discard(conv_id)
                self._busy += 1
            try:
                if pipeline.process_conversation(self.gw, conv_id) is None:
                    # another thread holds the conversation: it may have looked for new messages
                    # before this one was stored, so it looks again when it is done
                    with self._lock:
                        self._dirty.add(conv_id)
                else:
                    with self._lock:
                        again = conv_id in self._dirty
                        self._dirty.discard(conv_id)
                    if again:
                        self.submit(conv_id)
            except Exception:
                logger.exception("dispatch_failed conversation=%s", conv_id)
            finally:
                with self._lock:
                    self._busy -= 1
                    self._idle.notify_all()

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until nothing is queued or running (tests and the benchmark use this)."""
        deadline = time.time() + timeout
        with self._lock:
            while self._pending or self._busy:
                left = deadline - time.time()
                if left <= 0:
                    return False
                self._idle.wait(min(left, 0.1))
        return True

    def stop(self) -> None:
        for _ in self.threads:
            self.queue.put(None)
        for t in self.threads:
            t.join(timeout=5)


class Worker:
    def __init__(self, gw, interval: float = 1.0):
        from webhook.retention import Scheduler

        self.gw = gw
        self.interval = interval
        self.retention = Scheduler()
        self._stop = threading.Event()
        self.thread = None

    def run_once(self) -> dict:
        stats = pipeline.sweep(self.gw)
        purged = self.retention.maybe(self.gw)          # at most once an hour
        if purged:
            stats["purged"] = sum(purged.values())
        return stats

    def run_forever(self) -> None:
        while not self._stop.is_set():
            try:
                stats = self.run_once()
                if any(stats.values()):
                    logger.info("sweep replayed=%s sent=%s reset=%s", stats["replayed"], stats["sent"], stats["reset"])
            except Exception:
                logger.exception("sweep_failed")
            self._stop.wait(self.interval)

    def start(self) -> "Worker":
        self.thread = threading.Thread(target=self.run_forever, name="worker", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self.thread:
            self.thread.join(timeout=10)


class BulkLane:
    """The worker's campaign thread (webhook/broadcast/sender.py): sends while campaigns run,
    polls every ``idle`` seconds otherwise. Stopping lets the message being sent finish (and be
    recorded) first, so a SIGTERM never leaves a half-sent campaign message."""

    def __init__(self, gw, idle: float = 2.0, budget: float = 5.0):
        self.gw, self.idle, self.budget = gw, idle, budget
        self._stop = threading.Event()
        self.thread = None

    def run_forever(self) -> None:
        from webhook.broadcast import sender

        while not self._stop.is_set():
            busy = False
            try:
                if sender.pending(self.gw):
                    stats = sender.run_once(self.gw, budget=self.budget, stop=self._stop)
                    busy = bool(stats["sent"] or stats["started"] or stats["reconciled"])
            except Exception:
                logger.exception("bulk_lane_failed")
            if not busy:
                self._stop.wait(self.idle)

    def start(self) -> "BulkLane":
        self.thread = threading.Thread(target=self.run_forever, name="bulk", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self.thread:
            self.thread.join(timeout=30)
