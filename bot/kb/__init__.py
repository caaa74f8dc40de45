"""The knowledge base in ``data/kb/`` as Python objects: facts of law, the service directory, the
counselling line, places and their services, the plans behind the indicators.

Everything here is plain Python and YAML/CSV (no Rasa, no Flask, no database), so the NLU, the
action server, the gateway and the ``helpline kb`` commands read the same facts the same way.
Files are re-read when they change on disk (an import by the provincial office takes effect in a
running action server without a restart).

What a verification recorded in the counsellors' console adds ("checked by phone on …") lives in
the gateway's database; callers pass those records in as ``checks`` (see ``bot.kb.facts``).
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

import yaml

from bot.paths import KB

_lock = threading.Lock()
_cache: dict[tuple[str, str], tuple[float, Any]] = {}


def cached(path: Path, kind: str, build: Callable[[Path], Any]) -> Any:
    """``build(path)``, re-run only when the file's modification time changes."""
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        mtime = -1.0
    key = (str(path), kind)
    with _lock:
        hit = _cache.get(key)
        if hit and hit[0] == mtime:
            return hit[1]
    value = build(path)
    with _lock:
        _cache[key] = (mtime, value)
    return value


def read_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text("utf-8")) or {}


__all__ = ["KB", "cached", "read_yaml"]
