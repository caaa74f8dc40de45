"""A terminal chat with a running bot through Rasa's REST channel (the gateway uses the same)."""
from __future__ import annotations

import sys
import uuid

import requests

from bot.messages import _


def send(url: str, sender: str, text: str, timeout: float = 30.0) -> list[dict]:
    resp = requests.post(f"{url.rstrip('/')}/webhooks/rest/webhook",
                         json={"sender": sender, "message": text, "metadata": {"channel": "terminal"}},
                         timeout=timeout)
    resp.raise_for_status()
    return resp.json()


def render(messages: list[dict]) -> str:
    """Rasa's replies as the gateway would send them: the counselling-line markers resolved from
    data/kb/ alone (checks recorded in the console are the gateway's)."""
    from bot.kb import line

    state = line.state()
    lines = []
    for m in messages:
        if m.get("text"):
            lines.append(line.render(m["text"], state))
        for i, b in enumerate(m.get("buttons") or [], 1):
            lines.append(f"  [{i}] {b.get('title')}")
    return "\n".join(lines)


def chat_loop(url: str, sender: str | None = None, stdin=None, stdout=None) -> int:
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    sender = sender or f"terminal-{uuid.uuid4().hex[:12]}"
    stdout.write(_("Chat with the helpline bot. Type /quit to leave.") + "\n")
    last_buttons: list[dict] = []
    while True:
        stdout.write("> ")
        stdout.flush()
        line = stdin.readline()
        if not line or line.strip() in ("/quit", "/exit"):
            return 0
        text = line.strip()
        if text.isdigit() and last_buttons and 1 <= int(text) <= len(last_buttons):
            text = last_buttons[int(text) - 1].get("payload") or text
        try:
            replies = send(url, sender, text)
        except requests.RequestException:
            stdout.write(_("The bot is not reachable. In danger call 113; injured 115; children and trafficking 111.") + "\n")
            continue
        last_buttons = [b for m in replies for b in (m.get("buttons") or [])]
        stdout.write(render(replies) + "\n")
