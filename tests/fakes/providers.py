"""Fake provider HTTP APIs for tests: Twilio (SMS), Telegram Bot API and Zalo OA.

Each fake is a real HTTP/1.1 server (keep-alive, one daemon thread per connection) on
127.0.0.1 with an ephemeral port, so the real client libraries can talk to it:

* ``FakeTwilio``   - ``twilio`` 8.2.2 ``Client(sid, token)`` with ``client.api.base_url = fake.url``.
* ``FakeTelegram`` - PTB 22.8 ``telegram.Bot(token, base_url=fake.url + "/bot")``.
* ``FakeZalo``     - plain HTTP (``requests``/``httpx``); point both the OA API base
  (``https://openapi.zalo.me``) and the OAuth base (``https://oauth.zaloapp.com``) at ``fake.url``.

Common API (``FakeProvider``): ``start()``/``stop()``/context manager, ``url``, ``calls``
(every request, as :class:`Call`), ``sent`` (successful sends only), ``wait_for(...)``,
``fail_next(n, status)``, ``slow_next(n, seconds, deliver)`` (a provider that times out, having
taken the message or not), ``delay`` (seconds slept in each send call), ``reset()``.
Provider facts (paths, error bodies, codes) are documented in docs/channels.md.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

__all__ = ["Call", "FakeProvider", "FakeTwilio", "FakeTelegram", "FakeZalo"]


@dataclass(frozen=True)
class Call:
    """One HTTP request received by a fake. ``headers`` keys are lower-cased.

    ``form`` is set for ``application/x-www-form-urlencoded`` bodies, ``json`` for JSON bodies
    (a value that occurs once is a ``str``; repeated form keys give a ``list``).
    ``at`` is ``time.monotonic()`` when the request was received.
    """

    method: str
    path: str
    headers: dict
    form: dict | None
    json: Any
    raw: bytes
    at: float
    query: dict = field(default_factory=dict)


Response = tuple  # (status: int, body: dict | bytes | str, extra_headers: dict | None)


def _parse_form(text: str) -> dict:
    out: dict = {}
    for key, values in parse_qs(text, keep_blank_values=True).items():
        out[key] = values[0] if len(values) == 1 else values
    return out


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeProvider/1.0"
    sys_version = ""
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle + delayed ACK add ~40 ms
    # to every keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # noqa: A002 - silence the per-request stderr log
        pass

    def setup(self):
        super().setup()
        self.server.fake._track(self.connection, add=True)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, add=False)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self):
        fake: FakeProvider = self.server.fake
        raw = self._read_body()
        parts = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        form = body_json = None
        if ctype == "application/x-www-form-urlencoded":
            form = _parse_form(raw.decode("utf-8", "replace"))
        elif raw and (ctype.endswith("json") or raw.lstrip()[:1] in (b"{", b"[")):
            try:
                body_json = json.loads(raw)
            except ValueError:
                body_json = None
        call = Call(
            method=self.command,
            path=parts.path,
            headers=headers,
            form=form,
            json=body_json,
            raw=raw,
            at=time.monotonic(),
            query=_parse_form(parts.query) if parts.query else {},
        )
        fake._record_call(call)
        try:
            status, body, extra = fake._dispatch(call)
        except Exception as exc:  # a bug in the fake: make it visible, never hang the client
            fake.errors.append(repr(exc))
            status, body, extra = 500, {"fake_error": repr(exc)}, None
        if isinstance(body, (dict, list)):
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            ctype_out = "application/json; charset=utf-8"
        else:
            data = body.encode("utf-8") if isinstance(body, str) else (body or b"")
            ctype_out = "text/plain; charset=utf-8"
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype_out)
            self.send_header("Content-Length", str(len(data)))
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True      # the client gave up waiting (``slow_next``)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle


class FakeProvider:
    """Base class: HTTP server, thread-safe recording, waiting and failure injection.

    Subclasses implement ``_route(call) -> (status, body, extra_headers)`` and call
    ``self._send_gate()`` at the start of a *send* endpoint (applies ``delay`` and
    ``fail_next``) and ``self._record_sent(dict)`` when a send succeeds.
    """

    name = "FakeProvider"

    def __init__(self, delay: float = 0.0):
        self.delay = float(delay)
        self._initial_delay = self.delay
        self._cond = threading.Condition(threading.Lock())
        self.calls: list[Call] = []
        self._sent: list[dict] = []
        self.errors: list[str] = []  # exceptions raised inside the fake (should stay empty)
        self._fail_remaining = 0
        self._fail_status = 500
        self._slow_remaining = 0
        self._slow_seconds = 0.0
        self._slow_deliver = True
        self.slow_calls = 0             # send calls that were held by ``slow_next``
        self._hold = threading.local()  # deliver=True: the answer held after the message is taken
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._conns: set = set()
        self._conns_lock = threading.Lock()
        self.url = ""
        # a provider's rate limit (bench/broadcast.py): sends beyond ``rate_limit`` per second
        # (a bucket of ``burst``) are refused with 429, as a real provider does
        self.rate_limit: float | None = None
        self.burst = 5.0
        self.throttled = 0
        self._tokens, self._refilled = 0.0, time.monotonic()
        self.keep_calls = True          # False: do not keep every request (a 100,000-message bench)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> "FakeProvider":
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"{self.name}-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._conns_lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:  # unblock handler threads parked on idle keep-alive connections
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _track(self, conn, add: bool) -> None:
        with self._conns_lock:
            (self._conns.add if add else self._conns.discard)(conn)

    # -- recording -------------------------------------------------------------------------------
    def _record_call(self, call: Call) -> None:
        with self._cond:
            if self.keep_calls:
                self.calls.append(call)

    def _record_sent(self, item: dict) -> None:
        with self._cond:
            self._sent.append(item)
            self._cond.notify_all()
        hold, self._hold.seconds = getattr(self._hold, "seconds", 0.0), 0.0
        if hold:
            time.sleep(hold)

    @property
    def sent(self) -> list[dict]:
        """Snapshot of the successfully sent messages, in arrival order."""
        with self._cond:
            return list(self._sent)

    def calls_to(self, path_suffix: str) -> list[Call]:
        """Recorded calls whose path ends with ``path_suffix`` (e.g. ``"/sendMessage"``)."""
        with self._cond:
            return [c for c in self.calls if c.path.endswith(path_suffix)]

    def wait_for(self, predicate_or_count: int | Callable[[dict], bool], timeout: float = 10, count: int = 1) -> list[dict]:
        """Block until enough messages were sent; return them.

        * ``wait_for(n)``: until at least ``n`` messages were sent; returns all sent so far.
        * ``wait_for(pred, count=k)``: until at least ``k`` sent messages satisfy ``pred(msg)``;
          returns the matching ones (scanned incrementally, so waiting is O(new messages)).

        Raises ``AssertionError`` (with what *was* sent) when ``timeout`` seconds pass first.
        """
        deadline = time.monotonic() + timeout
        if callable(predicate_or_count):
            pred, want = predicate_or_count, count
        else:
            pred, want = None, int(predicate_or_count)
        matches: list[dict] = []
        scanned = 0
        with self._cond:
            while True:
                if pred is None:
                    if len(self._sent) >= want:
                        return list(self._sent)
                else:
                    new = self._sent[scanned:]
                    scanned += len(new)
                    matches.extend(m for m in new if pred(m))
                    if len(matches) >= want:
                        return matches
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    total = len(self._sent)
                    tail = self._sent[-5:]
                    what = f"{want} sent message(s)" if pred is None else f"{want} sent message(s) matching {getattr(pred, '__name__', pred)!r} (found {len(matches)})"
                    raise AssertionError(
                        f"{self.name}: timed out after {timeout}s waiting for {what}; "
                        f"{total} sent in total, {len(self.calls)} call(s) received; last sent: {tail!r}; "
                        f"pending fail_next={self._fail_remaining}; internal errors={self.errors!r}"
                    )
                self._cond.wait(remaining)

    # -- failure injection -----------------------------------------------------------------------
    def fail_next(self, n: int, status: int = 500) -> None:
        """Make the next ``n`` send calls fail with HTTP ``status`` (a provider-style error body)."""
        with self._cond:
            self._fail_remaining = int(n)
            self._fail_status = int(status)

    def slow_next(self, n: int, seconds: float, deliver: bool = True) -> None:
        """Hold each of the next ``n`` send calls for ``seconds`` before answering (longer than the
        client's timeout: the client gives up). ``deliver=True``: the message is then taken and
        recorded in ``sent`` at once, as a real provider takes it, and only the answer waits (a
        timeout that did reach the provider: ambiguous to the sender); ``deliver=False``: it is then refused with 504 and never recorded (a timeout
        that did not)."""
        with self._cond:
            self._slow_remaining = int(n)
            self._slow_seconds = float(seconds)
            self._slow_deliver = bool(deliver)

    def _send_gate(self) -> int | None:
        """Call at the start of a send endpoint: sleeps ``delay``; returns a status to fail with."""
        with self._cond:
            slow = self._slow_remaining > 0
            if slow:
                self._slow_remaining -= 1
                self.slow_calls += 1
                seconds, deliver = self._slow_seconds, self._slow_deliver
        if slow:
            if not deliver:
                time.sleep(seconds)
                return 504
            self._hold.seconds = seconds        # taken at once, answered too late (_record_sent)
        if self.delay > 0:
            time.sleep(self.delay)
        with self._cond:
            if self._fail_remaining > 0:
                self._fail_remaining -= 1
                return self._fail_status
            if self.rate_limit:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._refilled) * self.rate_limit)
                self._refilled = now
                if self._tokens < 1.0:
                    self.throttled += 1
                    return 429
                self._tokens -= 1.0
        return None

    def reset(self) -> None:
        """Forget calls and sent messages, pending ``fail_next`` and the ``delay``; subclasses also
        clear their recipient sets (blocked/unsubscribed/...). Credentials/tokens are kept."""
        with self._cond:
            self.calls.clear()
            self._sent.clear()
            self.errors.clear()
            self._fail_remaining = 0
            self._fail_status = 500
            self._slow_remaining = 0
            self.slow_calls = 0
            self.delay = self._initial_delay
            self._reset_state()

    def _reset_state(self) -> None:  # called with the lock held
        pass

    # -- dispatch --------------------------------------------------------------------------------
    def _dispatch(self, call: Call) -> Response:
        result = self._route(call)
        if len(result) == 2:
            return result[0], result[1], None
        return result

    def _route(self, call: Call) -> Response:  # pragma: no cover - abstract
        return 404, {"error": "not found"}, None

    def __repr__(self):
        return f"<{type(self).__name__} {self.url or '(stopped)'} calls={len(self.calls)} sent={len(self._sent)}>"


# ==================================================================================================
# Twilio
# ==================================================================================================

_GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXT = set("^{}\\[~]|€\f")


def sms_segments(body: str) -> int:
    """Number of SMS segments Twilio would bill: GSM-7 160/153, otherwise UCS-2 70/67."""
    if all(ch in _GSM7_BASIC or ch in _GSM7_EXT for ch in body):
        units, single, multi = len(body) + sum(ch in _GSM7_EXT for ch in body), 160, 153
    else:
        units, single, multi = len(body.encode("utf-16-le")) // 2, 70, 67
    if units <= single:
        return 1
    return math.ceil(units / multi)


def _twilio_error(status: int, code: int, message: str) -> Response:
    return status, {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }, None


class FakeTwilio(FakeProvider):
    """Twilio REST ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` (Programmable SMS)."""

    name = "FakeTwilio"
    _MESSAGES = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json$")
    _MESSAGE = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages/(?P<msid>[^/]+)\.json$")

    def __init__(self, account_sid: str | None = None, auth_token: str = "test-auth-token", delay: float = 0.0):
        super().__init__(delay=delay)
        self.account_sid = account_sid or "AC" + uuid.uuid4().hex
        self.auth_token = auth_token
        self.unsubscribed: set[str] = set()
        self._by_sid: dict[str, dict] = {}

    def _reset_state(self) -> None:
        self.unsubscribed.clear()
        self._by_sid.clear()

    def _authorized(self, call: Call) -> bool:
        auth = call.headers.get("authorization", "")
        if not auth.lower().startswith("basic "):
            return False
        try:
            user, _, password = base64.b64decode(auth[6:].strip()).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(user, self.account_sid) and hmac.compare_digest(password, self.auth_token)

    def _route(self, call: Call) -> Response:
        m = self._MESSAGES.match(call.path) or self._MESSAGE.match(call.path)
        if not m:
            return _twilio_error(404, 20404, f"The requested resource {call.path} was not found")
        if not self._authorized(call):
            status, body, _ = _twilio_error(401, 20003, "Authenticate")
            body["detail"] = "Your AccountSid or AuthToken was incorrect."
            return status, body, {"WWW-Authenticate": 'Basic realm="Twilio API"'}
        if m.group("sid") != self.account_sid:
            return _twilio_error(404, 20404, f"The requested resource {call.path} was not found")
        if "msid" in m.groupdict():
            with self._cond:
                resource = self._by_sid.get(m.group("msid"))
            if call.method != "GET" or resource is None:
                return _twilio_error(404, 20404, f"The requested resource {call.path} was not found")
            return 200, resource, None
        if call.method != "POST":
            return self._list(call.query or {})
        return self._create(call.form or {})

    def _list(self, query: dict) -> Response:
        """``GET Messages.json?To=…``: the messages sent to a number, newest first (one page), as
        Twilio lists them; what a sender asks after a crash to learn whether a message went."""
        to = query.get("To")
        with self._cond:
            found = [r for r in self._by_sid.values() if to is None or r["to"] == to]
        found = list(reversed(found))[: int(query.get("PageSize", 50) or 50)]
        return 200, {"messages": found, "end": max(0, len(found) - 1), "start": 0, "page": 0,
                     "page_size": len(found), "first_page_uri": None, "next_page_uri": None,
                     "previous_page_uri": None, "uri": "/2010-04-01/Accounts/{}/Messages.json".format(
                         self.account_sid)}, None

    def _create(self, form: dict) -> Response:
        failure = self._send_gate()
        if failure is not None:
            if failure == 429:
                return _twilio_error(429, 20429, "Too Many Requests")
            return _twilio_error(failure, 20500 if failure >= 500 else 20001, "Internal Server Error (fake: injected failure)")
        to, from_ = form.get("To"), form.get("From")
        mss, body = form.get("MessagingServiceSid"), form.get("Body")
        if not to:
            return _twilio_error(400, 21604, "A 'To' phone number is required.")
        if not from_ and not mss:
            return _twilio_error(400, 21603, "A 'From' phone number is required.")
        if not body and not form.get("MediaUrl") and not form.get("ContentSid"):
            return _twilio_error(400, 21602, "Message body is required.")
        if to in self.unsubscribed:
            return _twilio_error(400, 21610, "Attempt to send to unsubscribed recipient")
        sid = "SM" + uuid.uuid4().hex
        now = formatdate(usegmt=True).replace("GMT", "+0000")
        resource = {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": body or "",
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": from_,
            "messaging_service_sid": mss,
            "num_media": "0",
            "num_segments": str(sms_segments(body or "")),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            # Twilio answers "accepted" when only a Messaging Service is given (it picks the sender).
            "status": "queued" if from_ else "accepted",
            "subresource_uris": {
                "media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}/Media.json",
            },
            "to": to,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
        with self._cond:
            self._by_sid[sid] = resource
        self._record_sent({
            "to": to,
            "from_": from_,
            "messaging_service_sid": mss,
            "body": body or "",
            "status_callback": form.get("StatusCallback"),
            "sid": sid,
            "at": time.monotonic(),
        })
        return 201, resource, None

    # -- helpers for tests that play Twilio's side of webhooks -----------------------------------
    def status_callback_params(self, sid: str, status: str, error_code: int | str | None = None) -> dict:
        """The form fields Twilio POSTs to a message's StatusCallback URL."""
        with self._cond:
            resource = self._by_sid.get(sid, {})
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "MessageSid": sid,
            "SmsSid": sid,
            "MessageStatus": status,
            "SmsStatus": status,
            "To": resource.get("to") or "",
            "From": resource.get("from") or "",
        }
        if resource.get("messaging_service_sid"):
            params["MessagingServiceSid"] = resource["messaging_service_sid"]
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        return params

    def inbound_params(self, from_: str, body: str, to: str = "+15005550006", message_sid: str | None = None) -> dict:
        """The form fields of an inbound-SMS webhook (``application/x-www-form-urlencoded``)."""
        sid = message_sid or "SM" + uuid.uuid4().hex
        return {
            "ToCountry": "US", "ToState": "", "SmsMessageSid": sid, "NumMedia": "0", "ToCity": "",
            "FromZip": "", "SmsSid": sid, "FromState": "", "SmsStatus": "received", "FromCity": "",
            "Body": body, "FromCountry": "VN", "To": to, "ToZip": "", "NumSegments": str(sms_segments(body)),
            "MessageSid": sid, "AccountSid": self.account_sid, "From": from_, "ApiVersion": "2010-04-01",
        }

    def signature(self, url: str, params: dict) -> str:
        """``X-Twilio-Signature`` for a form POST to ``url``: base64(HMAC-SHA1(auth_token, url +
        concatenated sorted name+value pairs)), the scheme ``twilio.request_validator`` checks."""
        s = url
        for key in sorted(params):
            values = params[key] if isinstance(params[key], (list, tuple)) else [params[key]]
            for value in sorted(values):
                s += key + str(value)
        digest = hmac.new(self.auth_token.encode("utf-8"), s.encode("utf-8"), hashlib.sha1).digest()
        return base64.b64encode(digest).decode("ascii")


# ==================================================================================================
# Telegram
# ==================================================================================================

_TG_JSON_PARAMS = {"reply_markup", "entities", "allowed_updates", "link_preview_options", "reply_parameters"}


def _tg_error(status: int, description: str, parameters: dict | None = None) -> Response:
    body = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return status, body, None


class FakeTelegram(FakeProvider):
    """Telegram Bot API: ``/bot{token}/getMe``, ``sendMessage``, ``setWebhook``, ``deleteWebhook``,
    ``getWebhookInfo``. Accepts form-encoded (what PTB 22.8 sends) and JSON bodies."""

    name = "FakeTelegram"
    _PATH = re.compile(r"^/bot(?P<token>[^/]+)/(?P<method>[A-Za-z]+)$")

    def __init__(self, token: str = "123456:TEST-token", delay: float = 0.0,
                 bot_username: str = "test_helpline_bot", bot_first_name: str = "Helpline Test Bot"):
        super().__init__(delay=delay)
        self.token = token
        prefix = token.split(":", 1)[0]
        self.bot_id = int(prefix) if prefix.isdigit() else 123456
        self.bot_user = {
            "id": self.bot_id, "is_bot": True, "first_name": bot_first_name, "username": bot_username,
            "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False,
            "can_connect_to_business": False, "has_main_web_app": False,
        }
        self.blocked: set[int] = set()
        self.webhook: dict | None = None
        self._message_id = 0
        self._inbound_message_id = 0

    def _reset_state(self) -> None:
        self.blocked.clear()
        self.webhook = None

    @staticmethod
    def _params(call: Call) -> dict:
        if isinstance(call.json, dict):
            return dict(call.json)
        params = dict(call.query)
        for key, value in (call.form or {}).items():
            if key in _TG_JSON_PARAMS and isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError:
                    pass
            params[key] = value
        return params

    def _route(self, call: Call) -> Response:
        m = self._PATH.match(call.path)
        if not m:
            return _tg_error(404, "Not Found")
        if not hmac.compare_digest(m.group("token"), self.token):
            return _tg_error(401, "Unauthorized")
        method = m.group("method").lower()  # Bot API method names are case-insensitive
        params = self._params(call)
        if method == "getme":
            return 200, {"ok": True, "result": self.bot_user}, None
        if method == "sendmessage":
            return self._send_message(params)
        if method == "setwebhook":
            url = params.get("url", "")
            if url and not str(url).startswith("https://"):
                return _tg_error(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
            self.webhook = {k: v for k, v in params.items()} if url else None
            return 200, {"ok": True, "result": True, "description": "Webhook was set" if url else "Webhook was deleted"}, None
        if method == "deletewebhook":
            existed = self.webhook is not None
            self.webhook = None
            return 200, {"ok": True, "result": True, "description": "Webhook was deleted" if existed else "Webhook is already deleted"}, None
        if method == "getwebhookinfo":
            info = {"url": (self.webhook or {}).get("url", ""), "has_custom_certificate": False, "pending_update_count": 0}
            return 200, {"ok": True, "result": info}, None
        return _tg_error(404, "Not Found")

    def _send_message(self, params: dict) -> Response:
        failure = self._send_gate()
        if failure is not None:
            if failure == 429:
                return _tg_error(429, "Too Many Requests: retry after 1", {"retry_after": 1})
            return _tg_error(failure, "Internal Server Error" if failure >= 500 else "Bad Request: injected failure")
        raw_chat = params.get("chat_id")
        try:
            chat_id = int(raw_chat)
        except (TypeError, ValueError):
            return _tg_error(400, "Bad Request: chat not found")
        text = params.get("text")
        if text is None or str(text).strip() == "":
            return _tg_error(400, "Bad Request: message text is empty")
        if len(str(text)) > 4096:
            return _tg_error(400, "Bad Request: message is too long")
        if chat_id in self.blocked:
            return _tg_error(403, "Forbidden: bot was blocked by the user")
        with self._cond:
            self._message_id += 1
            message_id = self._message_id
        message = {
            "message_id": message_id,
            "from": {k: self.bot_user[k] for k in ("id", "is_bot", "first_name", "username")},
            "chat": {"id": chat_id, "first_name": "Test", "type": "private"},
            "date": int(time.time()),
            "text": str(text),
        }
        self._record_sent({"chat_id": chat_id, "text": str(text), "at": time.monotonic(),
                           "message_id": message_id, "params": params})
        return 200, {"ok": True, "result": message}, None

    def make_update(self, update_id: int, chat_id: int, text: str | None = None, message_id: int | None = None,
                    kind: str = "text", first_name: str = "Lan", date: int | None = None) -> dict:
        """A webhook ``Update`` as Telegram POSTs it for a private-chat message.

        ``kind``: ``"text"`` (``text`` required), ``"photo"`` (``text`` becomes the caption),
        ``"sticker"`` or ``"voice"``.
        """
        if message_id is None:
            self._inbound_message_id += 1
            message_id = self._inbound_message_id
        user = {"id": chat_id, "is_bot": False, "first_name": first_name, "language_code": "vi"}
        message: dict = {
            "message_id": message_id,
            "from": user,
            "chat": {"id": chat_id, "first_name": first_name, "type": "private"},
            "date": int(time.time()) if date is None else date,
        }
        uid = uuid.uuid4().hex
        if kind == "text":
            message["text"] = "" if text is None else text
        elif kind == "photo":
            message["photo"] = [
                {"file_id": f"AgACAgUAAxkBAAI{uid}{size}", "file_unique_id": f"AQAD{uid[:8]}{size}",
                 "file_size": size * 40, "width": size, "height": size * 3 // 4}
                for size in (90, 320, 1280)
            ]
            if text:
                message["caption"] = text
        elif kind == "sticker":
            message["sticker"] = {
                "width": 512, "height": 512, "emoji": "\U0001F622", "set_name": "TestStickers",
                "is_animated": False, "is_video": False, "type": "regular",
                "thumbnail": {"file_id": f"AAMCAgADGQEAA{uid}t", "file_unique_id": f"AQAD{uid[:8]}t",
                              "file_size": 5000, "width": 128, "height": 128},
                "file_id": f"CAACAgIAAxkBAAI{uid}", "file_unique_id": f"AgAD{uid[:8]}", "file_size": 30000,
            }
        elif kind == "voice":
            message["voice"] = {"duration": 4, "mime_type": "audio/ogg", "file_id": f"AwACAgUAAxkBAAI{uid}",
                                "file_unique_id": f"AgAD{uid[:8]}", "file_size": 12000}
        else:
            raise ValueError(f"unknown kind {kind!r}: text, photo, sticker or voice")
        return {"update_id": update_id, "message": message}


# ==================================================================================================
# Zalo OA
# ==================================================================================================

# Codes of the OA Open API (HTTP 200, body {"error": <code>, "message": ...}); see docs/channels.md.
ZALO_INVALID_TOKEN = -216      # "Access token is invalid" (what chatwoot refreshes on)
ZALO_INVALID_PARAM = -201      # "<field> is invalid!"
ZALO_OUT_OF_QUOTA = -211       # "Out of quota"
ZALO_NOT_FOLLOWER = -213       # "User has not followed OA"
ZALO_OUTSIDE_WINDOW = -230     # "User has not interacted with the OA in the past 7 days"
# OAuth v4 errors: the exact numbers are NOT verified (see docs/channels.md); the shape follows
# what public clients read (error, error_name, error_description).
ZALO_OAUTH_INVALID_PARAM = -14003
ZALO_OAUTH_INVALID_SECRET = -14012
ZALO_OAUTH_INVALID_REFRESH = -14014


class FakeZalo(FakeProvider):
    """Zalo OA Open API v3 consultation send + OAuth v4 refresh-token endpoint, on one server.

    * ``POST /v3.0/oa/message/cs`` with header ``access_token`` and JSON
      ``{"recipient": {"user_id": ...}, "message": {"text": ...}}``.
    * ``POST /v4/oa/access_token`` (form ``refresh_token``, ``app_id``, ``grant_type=refresh_token``,
      header ``secret_key``): issues a new access token and a new, single-use refresh token.

    Only the *current* access token is accepted (a refresh retires the previous one).
    """

    name = "FakeZalo"
    SEND_PATHS = ("/v3.0/oa/message/cs",)
    REFRESH_PATH = "/v4/oa/access_token"
    expired_error_code = ZALO_INVALID_TOKEN  # set to -220 to simulate the "expired" variant some report

    def __init__(self, app_id: str = "1234567890123456789", secret_key: str = "app-secret-key",
                 oa_secret_key: str = "oa-secret-key", access_token: str = "zalo-access-token-0",
                 refresh_token: str = "zalo-refresh-token-0", oa_id: str = "579745863508352884",
                 delay: float = 0.0):
        super().__init__(delay=delay)
        self.app_id = str(app_id)
        self.secret_key = secret_key
        self.oa_secret_key = oa_secret_key
        self.oa_id = str(oa_id)
        self.access_token = access_token
        self.refresh_token = refresh_token
        self.access_token_expired = False
        self.refresh_count = 0
        self.used_refresh_tokens: set[str] = set()
        self.outside_window: set[str] = set()
        self.quota_exhausted: set[str] = set()
        self.not_followers: set[str] = set()
        self._generation = 0

    def _reset_state(self) -> None:
        self.outside_window.clear()
        self.quota_exhausted.clear()
        self.not_followers.clear()

    def expire_access_token(self) -> None:
        """The current access token stops working (as after its ~25 h lifetime)."""
        with self._cond:
            self.access_token_expired = True

    def _route(self, call: Call) -> Response:
        if call.method == "POST" and call.path in self.SEND_PATHS:
            return self._send(call)
        if call.method == "POST" and call.path == self.REFRESH_PATH:
            return self._refresh(call)
        return 404, {"error": 404, "message": "empty api"}, None

    def _send(self, call: Call) -> Response:
        failure = self._send_gate()
        if failure is not None:
            return failure, {"error": -1, "message": "Internal Server Error (fake: injected failure)"}, None
        token = call.headers.get("access_token", "")
        with self._cond:
            current, expired = self.access_token, self.access_token_expired
        if not token or not hmac.compare_digest(token, current):
            return 200, {"error": ZALO_INVALID_TOKEN, "message": "Access token is invalid"}, None
        if expired:
            code = self.expired_error_code
            msg = "Access token is invalid" if code == ZALO_INVALID_TOKEN else "access_token is expired or removed"
            return 200, {"error": code, "message": msg}, None
        body = call.json if isinstance(call.json, dict) else {}
        user_id = str((body.get("recipient") or {}).get("user_id") or "")
        message = body.get("message") or {}
        text = message.get("text")
        if not user_id:
            return 200, {"error": ZALO_INVALID_PARAM, "message": "recipient is invalid!"}, None
        if not isinstance(message, dict) or (text is None and "attachment" not in message):
            return 200, {"error": ZALO_INVALID_PARAM, "message": "message is invalid!"}, None
        if user_id in self.not_followers:
            return 200, {"error": ZALO_NOT_FOLLOWER, "message": "User has not followed OA"}, None
        if user_id in self.outside_window:
            return 200, {"error": ZALO_OUTSIDE_WINDOW, "message": "User has not interacted with the OA in the past 7 days"}, None
        if user_id in self.quota_exhausted:
            return 200, {"error": ZALO_OUT_OF_QUOTA, "message": "Out of quota"}, None
        message_id = uuid.uuid4().hex
        self._record_sent({"user_id": user_id, "text": text, "at": time.monotonic(), "message_id": message_id,
                           "quote_message_id": message.get("quote_message_id"), "path": call.path})
        return 200, {"error": 0, "message": "Success", "data": {"message_id": message_id, "user_id": user_id}}, None

    @staticmethod
    def _oauth_error(code: int, name: str, description: str) -> Response:
        return 200, {
            "error": code,
            "error_name": name,
            "error_reason": description,
            "error_description": description,
            "ref_doc": "https://developers.zalo.me/docs/official-account/bat-dau/xac-thuc-va-uy-quyen-cho-ung-dung-new",
        }, None

    def _refresh(self, call: Call) -> Response:
        form = call.form or {}
        secret = call.headers.get("secret_key", "")
        if not secret or not hmac.compare_digest(secret, self.secret_key):
            return self._oauth_error(ZALO_OAUTH_INVALID_SECRET, "Invalid secret key", "secret_key is invalid")
        if str(form.get("app_id", "")) != self.app_id:
            return self._oauth_error(ZALO_OAUTH_INVALID_PARAM, "Invalid parameter", "app_id is invalid")
        if form.get("grant_type") != "refresh_token":
            return self._oauth_error(ZALO_OAUTH_INVALID_PARAM, "Invalid parameter", "grant_type is invalid")
        presented = form.get("refresh_token", "")
        with self._cond:
            if not presented or not hmac.compare_digest(str(presented), self.refresh_token):
                reused = presented in self.used_refresh_tokens
                desc = "Refresh token has been used" if reused else "Refresh token is invalid"
                return self._oauth_error(ZALO_OAUTH_INVALID_REFRESH, "Invalid refresh token", desc)
            self.used_refresh_tokens.add(self.refresh_token)
            self._generation += 1
            self.access_token = f"zalo-access-{self._generation}-{uuid.uuid4().hex}"
            self.refresh_token = f"zalo-refresh-{self._generation}-{uuid.uuid4().hex}"
            self.access_token_expired = False
            self.refresh_count += 1
            tokens = {"access_token": self.access_token, "refresh_token": self.refresh_token, "expires_in": "90000"}
        return 200, tokens, None

    # -- helpers for tests that play Zalo's side of webhooks -------------------------------------
    def make_event(self, event_name: str, user_id: str, text: str | None = None, msg_id: str | None = None,
                   timestamp_ms: int | str | None = None) -> dict:
        """A webhook event as Zalo POSTs it (``timestamp`` is a string of epoch milliseconds)."""
        ts = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
        msg_id = msg_id or uuid.uuid4().hex
        event: dict = {"app_id": self.app_id, "user_id_by_app": f"9{str(user_id)[-17:]}",
                       "event_name": event_name, "timestamp": ts}
        if event_name in ("follow", "unfollow"):
            event.update({"oa_id": self.oa_id, "source": "oa_profile", "follower": {"id": str(user_id)}})
            return event
        if event_name in ("user_received_message", "user_seen_message"):
            # delivery/seen receipts: the OA is the sender, the user the recipient
            event.update({"sender": {"id": self.oa_id}, "recipient": {"id": str(user_id)}})
            event["message"] = {"msg_ids": [msg_id]} if event_name == "user_seen_message" else {"msg_id": msg_id}
            return event
        event.update({"sender": {"id": str(user_id)}, "recipient": {"id": self.oa_id}})
        message: dict = {"msg_id": msg_id}
        if text is not None:
            message["text"] = text
        kinds = {"user_send_image": "image", "user_send_sticker": "sticker", "user_send_audio": "audio",
                 "user_send_video": "video", "user_send_file": "file", "user_send_gif": "gif"}
        if event_name in kinds:
            kind = kinds[event_name]
            payload = {"url": f"https://example.invalid/zalo/{kind}/{msg_id}"}
            if kind == "image":
                payload["thumbnail"] = payload["url"] + "/thumb"
            if kind == "sticker":
                payload["id"] = "b3f2c1"
            message["attachments"] = [{"type": kind, "payload": payload}]
        elif event_name == "user_send_text" and text is None:
            message["text"] = ""
        event["message"] = message
        return event

    def sign(self, raw_body: bytes, timestamp: str) -> str:
        """``X-ZEvent-Signature``: ``"mac=" + sha256_hex(app_id + raw_body + timestamp + oa_secret_key)``
        (plain SHA-256 of the concatenation, not an HMAC; ``timestamp`` is the one in the JSON body)."""
        if isinstance(raw_body, str):
            raw_body = raw_body.encode("utf-8")
        data = self.app_id.encode("utf-8") + raw_body + str(timestamp).encode("utf-8") + self.oa_secret_key.encode("utf-8")
        return "mac=" + hashlib.sha256(data).hexdigest()

    def signed_webhook(self, event: dict) -> tuple[bytes, dict]:
        """Serialize ``event`` and return ``(raw_body, headers)`` ready to POST to the gateway."""
        raw = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return raw, {"Content-Type": "application/json", "X-ZEvent-Signature": self.sign(raw, event["timestamp"])}
