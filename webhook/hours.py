"""Counsellors' working hours and holidays, in Asia/Ho_Chi_Minh time.

``HELPLINE_HOURS`` lists the staffed hours, e.g. ``"mon-fri 07:30-11:30,13:30-17:00; sat 07:30-11:30"``;
``HELPLINE_HOLIDAYS`` lists dates (``2026-09-02,2027-02-16``). Empty hours means staffed around
the clock (the default: the Social Work Center's hours are not verified, see data/kb/services.yml).
"""
from __future__ import annotations

from bot.kb.hours import DAYS, TZ, HoursError, open_at, parse  # noqa: F401  (one grammar, bot/kb/hours.py)


def staffed(when: float, spec: str, holidays: str = "") -> bool:
    """Is a counsellor on duty at the Unix time ``when``?"""
    if not spec.strip():
        return True
    return open_at(when, spec, holidays)
