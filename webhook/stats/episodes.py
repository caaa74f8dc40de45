"""Anonymised contact episodes: one row per person per month, labels only.

- The person is a keyed hash of the contact's pseudonym with a random salt of the year
  (``stat_year_keys``): the same person in the same year is one person, and nothing links two
  years. ``close_year`` deletes the salt: from then on not even the operator can link an episode
  to a contact.
- No text, no address, no time finer than the day; the labels come from ``profile.profile`` on
  the message, from the case (needed help, sought help, helped, consent, the counsellor's GBVIMS
  type) and the follow-up answer.
- Recording never blocks or fails a reply: errors are logged (without content) and dropped.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
import time
from typing import Optional

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from webhook.db import transaction
from webhook.hours import TZ
from webhook.models import Case, Contact, Conversation, Episode, StatYearKey
from webhook.stats import cube
from webhook.stats.profile import GBV_TYPES, RISKS, Profile, profile

logger = logging.getLogger(__name__)
SPECIFIC = GBV_TYPES[:6]            # the six core types, in GBVIMS precedence order


def local_day(ts: float) -> dt.date:
    return dt.datetime.fromtimestamp(ts, TZ).date()


def _salt(s, year: int) -> Optional[str]:
    row = s.get(StatYearKey, year)
    if row is None:
        row = StatYearKey(year=year, salt=secrets.token_hex(32))
        s.add(row)
        try:
            s.flush()
        except IntegrityError:          # another process created it first
            s.rollback()
            row = s.get(StatYearKey, year)
    return row.salt                      # None: the year is closed, nothing more is recorded


def person_key(salt: str, pseudonym: str) -> str:
    return hmac.new(salt.encode(), pseudonym.encode(), hashlib.sha256).hexdigest()[:32]


def _rank_type(kind: str) -> int:
    return GBV_TYPES.index(kind) if kind in GBV_TYPES else len(GBV_TYPES)


def _merge(ep: Episode, p: Profile, risk: str, topic: Optional[str], day: dt.date) -> None:
    if RISKS.index(risk) > RISKS.index(ep.risk):
        ep.risk = risk
        if topic:
            ep.topic = topic
    elif not ep.topic and topic:
        ep.topic = topic
    if _rank_type(p.gbv_type) < _rank_type(ep.gbv_type):
        ep.gbv_type = p.gbv_type
    for name in ("age_group", "sex", "reporter"):
        if getattr(ep, name) == "unknown" and getattr(p, name) != "unknown":
            setattr(ep, name, getattr(p, name))
    for name in ("relationship", "former_district", "locality"):
        if getattr(ep, name) is None and getattr(p, name) is not None:
            setattr(ep, name, getattr(p, name))
    ep.last_day = max(ep.last_day, day)


def _person(s, conversation_id: int, day: dt.date) -> tuple[Optional[str], Conversation]:
    conv = s.get(Conversation, conversation_id)
    contact = s.get(Contact, conv.contact_id)
    salt = _salt(s, day.year)
    return (None if salt is None else person_key(salt, f"{contact.channel}:{contact.pseudonym}")), conv


def find_episode(s, conversation_id: int, at: float) -> Optional[Episode]:
    """The episode of the conversation's person in the month of ``at``, if there is one."""
    day = local_day(at)
    person, _conv = _person(s, conversation_id, day)
    if person is None:
        return None
    return s.execute(select(Episode).where(Episode.person == person, Episode.year == day.year,
                                           Episode.month == day.month)).scalar_one_or_none()


def _episode(s, conversation_id: int, at: float):
    """The person's episode of the month (made when missing) and the cube tracker holding the
    person's episodes of the year under lock; (None, None) when the year is closed."""
    day = local_day(at)
    person, conv = _person(s, conversation_id, day)
    if person is None:
        return None, None
    tracker = cube.Tracker(s, person, day.year, day.month)
    ep = next((e for e in tracker.episodes if e.month == day.month), None)
    if ep is None:
        ep = Episode(person=person, year=day.year, month=day.month, first_day=day, last_day=day,
                     channel=conv.channel, gbv_type="non_gbv", reporter="unknown", age_group="unknown",
                     sex="unknown", risk="none", sought_help=False, needed_help=False, helped=None,
                     consent="not_asked")
        s.add(ep)
        tracker.add(ep)
    return ep, tracker


def _retrying(gw, fn) -> None:
    """Run ``fn`` in a transaction; once more when another process made the same episode first."""
    for attempt in range(2):
        try:
            with transaction(gw.Session) as s:
                fn(s)
            return
        except IntegrityError:
            if attempt:
                raise


def record_message(gw, conversation_id: int, text: str, risk: Optional[str], topic: Optional[str],
                   at: Optional[float] = None) -> None:
    """Fold one message's labels into its person's episode of the month."""
    at = time.time() if at is None else at
    risk = risk if risk in RISKS else "none"
    try:
        p = profile(text, topic, risk)

        def fold(s):
            ep, tracker = _episode(s, conversation_id, at)
            if ep is not None:
                _merge(ep, p, risk, topic, local_day(at))
                tracker.commit()

        _retrying(gw, fold)
    except Exception as exc:                 # statistics never cost a reply
        logger.warning("stats_record_failed conversation=%s error=%s", conversation_id, type(exc).__name__)


def mark_case(gw, case_id: int, **fields) -> None:
    """Case facts into the episode of the month the case was opened: needed_help, sought_help,
    helped (True/False), consent ('yes'/'no'/'not_asked'), gbv_type (the counsellor's)."""
    try:
        def mark(s):
            case = s.get(Case, case_id)
            ep, tracker = _episode(s, case.conversation_id, case.created_at)
            if ep is None:
                return
            if fields.get("needed_help"):
                ep.needed_help = True
            if fields.get("sought_help"):
                ep.sought_help = True
            if fields.get("helped") is not None:
                ep.helped = bool(fields["helped"])
            if fields.get("consent") in ("yes", "no", "not_asked"):
                ep.consent = fields["consent"]
            if fields.get("gbv_type") in GBV_TYPES:
                ep.gbv_type = fields["gbv_type"]
            if fields.get("risk") in RISKS and RISKS.index(fields["risk"]) > RISKS.index(ep.risk):
                ep.risk = fields["risk"]
            tracker.commit()

        _retrying(gw, mark)
    except Exception as exc:
        logger.warning("stats_case_failed case=%s error=%s", case_id, type(exc).__name__)


def close_year(gw, year: int) -> bool:
    """Delete the year's salt: its episodes can no longer be linked to anyone, and nothing more
    is recorded for that year. Irreversible; run after the yearly report."""
    with transaction(gw.Session) as s:
        row = s.get(StatYearKey, year)
        if row is None:
            row = StatYearKey(year=year)
            s.add(row)
        if row.salt is None and row.closed_at:
            return False
        row.salt, row.closed_at = None, time.time()
        return True
