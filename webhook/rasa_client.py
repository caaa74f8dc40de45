"""The gateway's only way to reach Rasa: its REST channel, with the auth token and a timeout.

``sender`` is the conversation's pseudonymous id, never a phone number or chat id; ``metadata``
tells the dialogue the channel and language; ``input_channel`` lets responses vary by channel.
"""
from __future__ import annotations

import threading
import time
from typing import Optional

import requests


class RasaUnavailable(Exception):
    """Rasa (or the action server behind it) did not answer in time or answered with an error."""


class RasaClient:
    def __init__(self, url: str, token: str = "", timeout: float = 10.0, actions_url: str = ""):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.actions_url = actions_url.rstrip("/")
        self._local = threading.local()
        # A short "circuit": after a failure, skip Rasa for a moment instead of making every
        # person wait for the timeout; the replay loop probes and closes it.
        self.down_until = 0.0

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

    def send(self, sender: str, text: str, metadata: dict, channel: str) -> list[dict]:
        try:
            resp = self._http.post(f"{self.url}/webhooks/rest/webhook", params=self._params(),
                                   json={"sender": sender, "message": text, "metadata": metadata,
                                         "input_channel": channel}, timeout=self.timeout)
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
            resp = self._http.post(f"{self.url}/conversations/{sender}/tracker/events", params=self._params(),
                                   json=events, timeout=self.timeout)
        except requests.RequestException as exc:
            raise RasaUnavailable(type(exc).__name__) from None
        if resp.status_code != 200:
            raise RasaUnavailable(f"status {resp.status_code}")

    def forget(self, sender: str) -> bool:
        """Replace a conversation's tracker with no events (XOA: what the person wrote leaves
        Rasa's tracker store too). False when Rasa cannot be reached."""
        try:
            resp = self._http.put(f"{self.url}/conversations/{sender}/tracker/events", params=self._params(),
                                  json=[], timeout=self.timeout)
        except requests.RequestException:
            return False
        return resp.status_code == 200

    def latest_intent(self, sender: str, timeout: float = 2.0) -> tuple[Optional[str], float]:
        """The intent Rasa's model gave the conversation's latest message (for statistics; the
        REST channel's answer does not carry it). (None, 0.0) when it cannot be read."""
        try:
            resp = self._http.get(f"{self.url}/conversations/{sender}/tracker", timeout=timeout,
                                  params={**self._params(), "include_events": "NONE"})
            if resp.status_code != 200:
                return None, 0.0
            intent = (resp.json().get("latest_message") or {}).get("intent") or {}
            return intent.get("name"), float(intent.get("confidence") or 0.0)
        except (requests.RequestException, ValueError, AttributeError):
            return None, 0.0

    def healthy(self, timeout: float = 2.0) -> bool:
        try:
            return self._http.get(f"{self.url}/status", params=self._params(), timeout=timeout).status_code == 200
        except requests.RequestException:
            return False

    def actions_healthy(self, timeout: float = 2.0) -> Optional[bool]:
        if not self.actions_url:
            return None
        try:
            return self._http.get(f"{self.actions_url}/health", timeout=timeout).status_code == 200
        except requests.RequestException:
            return False
