"""The last line when the database is down: verified messages are written, sealed, to a local
spool directory and ingested as soon as the database is back (``drain``), and the person gets the
safe reply straight from the adapter. Nothing is lost and nobody waits on a broken database."""
from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from dataclasses import asdict
from pathlib import Path

from webhook import replies
from webhook.channels.base import Inbound

logger = logging.getLogger(__name__)


class Spool:
    def __init__(self, directory: Path, vault):
        self.dir = Path(directory)
        self.vault = vault
        self._lock = threading.Lock()

    def put(self, item: Inbound) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        sealed = self.vault.seal(json.dumps(asdict(item), ensure_ascii=False))
        path = self.dir / f"{time.time():.6f}-{uuid.uuid4().hex}.msg"
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(sealed)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        return path

    def drain(self, gw) -> int:
        """Store spooled messages in arrival order; a file is removed only once stored."""
        from webhook import pipeline

        if not self.dir.is_dir():
            return 0
        done = 0
        with self._lock:
            for path in sorted(self.dir.glob("*.msg")):
                raw = self.vault.open(path.read_bytes())
                if raw is None:
                    logger.error("spool_unreadable file=%s", path.name)
                    continue
                item = Inbound(**json.loads(raw))
                received = pipeline.receive(gw, item)
                path.unlink()
                done += 1
                if received.message_id and not received.duplicate:
                    gw.submit(received.conversation_id)
        return done


def safe_reply(gw, item: Inbound) -> None:
    """Straight through the adapter, no database: the rules decide which safe reply."""
    from bot.understanding import understand

    adapter = gw.adapters.get(item.channel)
    if adapter is None or item.channel == "web":
        return
    risk = understand(item.text or "", None)
    name = replies.safe_reply(risk.risk, risk.topic)
    try:
        for part in adapter.render(gw.kb.render(replies.text(name))):
            adapter.send(item.address, part, reply_ref=item.reply_ref)
    except Exception as exc:
        logger.error("safe_reply_failed channel=%s error=%s", item.channel, type(exc).__name__)
