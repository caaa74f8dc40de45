"""Console accounts and logins.

- Passwords are stored as salted scrypt hashes (werkzeug); an unknown user name costs the same
  hash check as a known one, and five wrong passwords lock the account for 15 minutes.
- A login is a server-side session: the browser holds a random token in an HttpOnly,
  SameSite=Strict cookie, the database holds its SHA-256. Logging out, disabling the account or
  ``idle_minutes`` without a click end it for real (a stolen cookie is useless afterwards).
- Every state-changing request carries the session's CSRF token (form field ``csrf`` or header
  ``X-CSRF-Token``), compared in constant time.
- Roles: counsellor < supervisor < admin. A view names the least role it needs.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from functools import wraps
from typing import Optional

from flask import g, jsonify, redirect, request, url_for
from sqlalchemy import delete, select
from werkzeug.security import check_password_hash, generate_password_hash

from webhook import events
from webhook.db import transaction
from webhook.models import ConsoleSession, Staff

ROLES = ("counsellor", "supervisor", "admin")
RANK = {role: i for i, role in enumerate(ROLES)}
COOKIE = "hl_console"
MAX_FAILURES, LOCK_SECONDS = 5, 15 * 60
MIN_PASSWORD = 10
_DUMMY_HASH = generate_password_hash("not a password", method="scrypt")


class StaffError(ValueError):
    pass


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str
    role: str
    csrf: str
    token_hash: str

    def can(self, role: str) -> bool:
        return RANK[self.role] >= RANK[role]


def _digest(token: str) -> str:
    return hashlib.sha256(("console:" + token).encode()).hexdigest()


def create_staff(gw, username: str, password: str, role: str, display_name: Optional[str] = None,
                 actor: str = events.SYSTEM) -> int:
    username = (username or "").strip().lower()
    if not username or len(username) > 64 or not username.replace(".", "").replace("_", "").replace("-", "").isalnum():
        raise StaffError("user name: letters, digits, '.', '_' or '-' (at most 64)")
    if role not in RANK:
        raise StaffError(f"role must be one of {', '.join(ROLES)}")
    if len(password or "") < MIN_PASSWORD:
        raise StaffError(f"password: at least {MIN_PASSWORD} characters")
    with transaction(gw.Session) as s:
        if s.execute(select(Staff.id).where(Staff.username == username)).scalar() is not None:
            raise StaffError(f"user {username} exists")
        row = Staff(username=username, display_name=(display_name or username)[:80], role=role,
                    password_hash=generate_password_hash(password, method="scrypt"), active=True,
                    failed_logins=0, created_at=time.time())
        s.add(row)
        s.flush()
        events.record(s, "staff_created", actor, detail=f"user={username} role={role}")
        return row.id


def set_password(gw, username: str, password: str, actor: str = events.SYSTEM) -> None:
    if len(password or "") < MIN_PASSWORD:
        raise StaffError(f"password: at least {MIN_PASSWORD} characters")
    with transaction(gw.Session) as s:
        row = s.execute(select(Staff).where(Staff.username == username)).scalar_one_or_none()
        if row is None:
            raise StaffError(f"no user {username}")
        row.password_hash = generate_password_hash(password, method="scrypt")
        row.failed_logins, row.locked_until = 0, None
        s.execute(delete(ConsoleSession).where(ConsoleSession.staff_id == row.id))
        events.record(s, "password_set", actor, detail=f"user={username}")


def set_active(gw, username: str, active: bool, actor: str = events.SYSTEM, role: Optional[str] = None) -> None:
    with transaction(gw.Session) as s:
        row = s.execute(select(Staff).where(Staff.username == username)).scalar_one_or_none()
        if row is None:
            raise StaffError(f"no user {username}")
        row.active = active
        if role is not None:
            if role not in RANK:
                raise StaffError(f"role must be one of {', '.join(ROLES)}")
            row.role = role
        if not active:
            s.execute(delete(ConsoleSession).where(ConsoleSession.staff_id == row.id))
        events.record(s, "staff_changed", actor, detail=f"user={username} active={active} role={row.role}")


def login(gw, username: str, password: str, now: Optional[float] = None) -> Optional[str]:
    """The new session's token, or None (wrong name or password, locked or disabled account)."""
    now = time.time() if now is None else now
    username = (username or "").strip().lower()[:64]
    with transaction(gw.Session) as s:
        row = s.execute(select(Staff).where(Staff.username == username)).scalar_one_or_none()
        ok = check_password_hash(row.password_hash if row else _DUMMY_HASH, password or "")
        if row is None:
            events.record(s, "login_failed", "-", detail="unknown user")
            return None
        if not row.active or (row.locked_until or 0) > now:
            events.record(s, "login_refused", row.username, detail="locked" if row.active else "disabled")
            return None
        if not ok:
            row.failed_logins += 1
            if row.failed_logins >= MAX_FAILURES:
                row.locked_until, row.failed_logins = now + LOCK_SECONDS, 0
            events.record(s, "login_failed", row.username)
            return None
        row.failed_logins, row.locked_until = 0, None
        token = secrets.token_urlsafe(32)
        s.add(ConsoleSession(token_hash=_digest(token), staff_id=row.id, csrf=secrets.token_urlsafe(24),
                             created_at=now, last_seen_at=now))
        events.record(s, "login", row.username)
        return token


def logout(gw, user: User) -> None:
    with transaction(gw.Session) as s:
        s.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == user.token_hash))
        events.record(s, "logout", user.username)


def session_user(gw, token: Optional[str], touch: bool = True, now: Optional[float] = None) -> Optional[User]:
    """The logged-in user for a cookie token, or None when unknown, idle too long or disabled.
    ``touch=False`` for automatic requests (live feed, polling) so they do not keep a login
    alive that nobody is using."""
    if not token or len(token) > 128:
        return None
    now = time.time() if now is None else now
    idle = gw.settings.console_idle_minutes * 60
    digest = _digest(token)
    with transaction(gw.Session) as s:
        sess = s.get(ConsoleSession, digest)
        if sess is None:
            return None
        staff = s.get(Staff, sess.staff_id)
        if now - sess.last_seen_at > idle or staff is None or not staff.active:
            s.delete(sess)
            if staff is not None:
                events.record(s, "session_expired", staff.username)
            return None
        if touch and now - sess.last_seen_at > 5:
            sess.last_seen_at = now
        return User(staff.id, staff.username, staff.display_name, staff.role, sess.csrf, digest)


def active_staff(gw) -> list[tuple[str, str, str]]:
    with transaction(gw.Session) as s:
        return [(r.username, r.display_name, r.role) for r in s.execute(
            select(Staff).where(Staff.active.is_(True)).order_by(Staff.username)).scalars()]


def _wants_json() -> bool:
    return request.path.startswith("/console/api/") or request.path.endswith("/events") or \
        request.accept_mimetypes.best == "application/json" or request.is_json


def require(role: str = "counsellor", touch: bool = True):
    """Decorator: a logged-in user with at least ``role``; POSTs must carry the CSRF token."""
    def deco(view):
        @wraps(view)
        def inner(*args, **kwargs):
            from webhook.app import gateway

            user = session_user(gateway(), request.cookies.get(COOKIE), touch=touch)
            if user is None:
                if _wants_json() or request.method != "GET":
                    return jsonify({"error": "login required"}), 401
                return redirect(url_for("console.login_page", next=request.path))
            if request.method == "POST":
                given = request.headers.get("X-CSRF-Token") or request.form.get("csrf") or ""
                if not hmac.compare_digest(given.encode(), user.csrf.encode()):
                    return jsonify({"error": "bad or missing CSRF token"}), 403
            if not user.can(role):
                return jsonify({"error": "not allowed for your role"}), 403
            g.user = user
            return view(*args, **kwargs)
        return inner
    return deco
