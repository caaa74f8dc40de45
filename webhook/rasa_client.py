"""The gateway's only way to reach Rasa: its REST channel, with the auth token and a timeout.

``sender`` is the conversation's pseudonymous id, never a phone number or chat id; ``metadata``
tells the dialogue the channel and language; ``input_channel`` lets responses vary by channel.
"""
from __future__ import annotations

import threading
import time
import zlib
from typing import Optional

import requests


class RasaUnavailable(Exception):
    """Rasa (or the action server behind it) did not answer in time or answered with an error."""


class RasaClient:
    """One Rasa server, or several sharing a tracker store and a lock store (the scale-out shape:
    ``url`` is then a comma-separated list). A conversation goes to the same server each time
    (a hash of its sender id) and to the next one when that server cannot be reached: a request
    that never arrived is safe to repeat elsewhere. A timeout is not (the first server may still
    answer), so it is reported and the message is replayed later, as with one server."""

    def __init__(self, url: str, token: str = "", timeout: float = 10.0, actions_url: str = ""):
        self.url = url
        self.token = token
        self.timeout = timeout
        self.actions_urls = [u.strip().rstrip("/") for u in actions_url.split(",") if u.strip()]
        self._local = threading.local()
        # A short "circuit": after a failure, skip Rasa for a moment instead of making every
        # person wait for the timeout; the replay loop probes and closes it.
        self.down_until = 0.0

    @property
    def url(self) -> str:
        return self.urls[0]

    @url.setter
    def url(self, value: str) -> None:
        self.urls = [u.strip().rstrip("/") for u in value.split(",") if u.strip()]
        if not self.urls:
            raise ValueError("no Rasa URL")
        self._server_down = {u: 0.0 for u in self.urls}

    @property
    def _http(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = self._local.session = requests.Session()
            # Rasa is on the internal network: no proxy look-up in the environment per request
            s.trust_env = False
        return s

    def _params(self) -> dict:
        return {"token": self.token} if self.token else {}

    def available(self) -> bool:
        """False for a few seconds after a failure (the circuit is open)."""
        return time.time() >= self.down_until

    def trip(self, seconds: float = 5.0) -> None:
        self.down_until = time.time() + seconds

    def _servers(self, sender: str) -> list[str]:
        """The conversation's own server first, then the others; ones that just refused a
        connection go last (they are still tried: they may be back)."""
        urls = self.urls
        if len(urls) > 1:
            start = zlib.crc32(sender.encode()) % len(urls)
            urls = urls[start:] + urls[:start]
            now = time.time()
            urls = sorted(urls, key=lambda u: self._server_down.get(u, 0.0) > now)
        return urls

    def _request(self, method: str, path: str, sender: str, timeout: Optional[float] = None, **kw):
        """The response of the first server that takes the request. requests' ConnectionError
        (refused, reset before an answer) moves on to the next; anything else is raised."""
        last: Optional[Exception] = None
        params = {**self._params(), **kw.pop("params", {})}
        for url in self._servers(sender):
            try:
                resp = self._http.request(method, url + path, params=params, timeout=timeout or self.timeout, **kw)
                self._local.server = url
                return resp
            except requests.ConnectionError as exc:       # ConnectTimeout too; ReadTimeout is not one
                self._server_down[url] = time.time() + 5.0
                last = exc
        raise last if last is not None else requests.ConnectionError("no Rasa server")

    def send(self, sender: str, text: str, metadata: dict, channel: str) -> list[dict]:
        try:
            resp = self._request("POST", "/webhooks/rest/webhook", sender,
                                 json={"sender": sender, "message": text, "metadata": metadata,
                                       "input_channel": channel})
        except requests.RequestException as exc:
            raise RasaUnavailable(type(exc).__name__) from None
        if resp.status_code != 200:
            raise RasaUnavailable(f"status {resp.status_code}")
        try:
            replies = resp.json()
        except ValueError:
            raise RasaUnavailable("bad json") from None
        if not isinstance(replies, list):
            raise RasaUnavailable("unexpected reply")
        return replies

    def append_events(self, sender: str, events: list[dict]) -> None:
        """Add events (pause, resume) to a conversation's tracker; raises RasaUnavailable."""
        try:
            resp = self._request("POST", f"/conversations/{sender}/tracker/events", sender, json=events)
        except requests.RequestException as exc:
            raise RasaUnavailable(type(exc).__name__) from None
        if resp.status_code != 200:
            raise RasaUnavailable(f"status {resp.status_code}")

    def forget(self, sender: str) -> bool:
        """Replace a conversation's tracker with no events (XOA: what the person wrote leaves
        Rasa's tracker store too). False when Rasa cannot be reached."""
        try:
            resp = self._request("PUT", f"/conversations/{sender}/tracker/events", sender, json=[])
        except requests.RequestException:
            return False
        return resp.status_code == 200

    def latest_intent(self, sender: str, timeout: float = 2.0) -> tuple[Optional[str], float]:
        """The intent Rasa's model gave the conversation's latest message (for statistics; the
        REST channel's answer does not carry it). (None, 0.0) when it cannot be read."""
        try:
            resp = self._request("GET", f"/conversations/{sender}/tracker", sender, timeout=timeout,
                                 params={"include_events": "NONE"})
            if resp.status_code != 200:
                return None, 0.0
            intent = (resp.json().get("latest_message") or {}).get("intent") or {}
            return intent.get("name"), float(intent.get("confidence") or 0.0)
        except (requests.RequestException, ValueError, AttributeError):
            return None, 0.0

    def healthy(self, timeout: float = 2.0) -> bool:
        """True when at least one server answers (each conversation can move to it)."""
        for url in self.urls:
            try:
                if self._http.get(f"{url}/status", params=self._params(), timeout=timeout).status_code == 200:
                    self._server_down[url] = 0.0
                    return True
            except requests.RequestException:
                self._server_down[url] = time.time() + 5.0
        return False

    def last_server(self) -> Optional[str]:
        """The Rasa server that answered this thread's last request."""
        return getattr(self._local, "server", None)

    def avoid(self, url: str, seconds: float = 30.0) -> None:
        """Send conversations to the other servers for a while (its action server is down)."""
        if len(self.urls) > 1:
            self._server_down[url] = time.time() + seconds

    def actions_healthy(self, timeout: float = 2.0, server: Optional[str] = None) -> Optional[bool]:
        """True when at least one action server answers (None when none is configured). With
        ``server``, and one action server per Rasa server in the same order: that one's."""
        if not self.actions_urls:
            return None
        urls = self.actions_urls
        if server in self.urls and len(urls) == len(self.urls):
            urls = [urls[self.urls.index(server)]]
        for url in urls:
            try:
                if self._http.get(f"{url}/health", timeout=timeout).status_code == 200:
                    return True
            except requests.RequestException:
                pass
        return False
