"""The bot as `make run` starts it: Rasa and the action server on loopback, talked to through the
REST channel, with the gateway absent (it arrives in a later issue)."""
import socket
import time

import pytest
import requests

from bot import runner

pytestmark = [pytest.mark.model, pytest.mark.slow]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def bot(model_path, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("servers")
    rasa_port, actions_port = _free_port(), _free_port()
    endpoints = tmp / "endpoints.yml"
    endpoints.write_text(f'action_endpoint:\n  url: "http://127.0.0.1:{actions_port}/webhook"\n')
    procs = runner.start_servers(model_path, tmp / "log", rasa_port, actions_port, endpoints,
                                 extra_env={"HELPLINE_GATEWAY_URL": "http://127.0.0.1:9",
                                            "HELPLINE_GATEWAY_TIMEOUT": "0.5",
                                            "HELPLINE_ESCALATION_JOURNAL": str(tmp / "esc.jsonl")})
    try:
        assert runner._wait(f"http://127.0.0.1:{actions_port}/health", procs[0], 90), (tmp / "log" / "actions.log").read_text()
        assert runner._wait(f"http://127.0.0.1:{rasa_port}/", procs[1], 240), (tmp / "log" / "rasa.log").read_text()[-3000:]
        yield {"url": f"http://127.0.0.1:{rasa_port}", "actions": actions_port, "tmp": tmp}
    finally:
        runner.stop(procs)


def say(bot, sender, text):
    r = requests.post(bot["url"] + "/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=60)
    r.raise_for_status()
    return [m.get("text", "") for m in r.json()]


def test_first_greeting_has_safety_check_and_consent(bot):
    replies = say(bot, "t-greet", "chào bạn")
    joined = " ".join(replies)
    assert "113" in joined
    assert "XOA" in joined.upper()


def test_danger_gets_numbers_first_then_escalation_is_journaled(bot):
    replies = say(bot, "t-danger", "chong em dang cam dao o ngoai cua")
    assert all(n in replies[0] for n in ("113", "115", "111"))
    assert len(replies) >= 3  # numbers, escalation outcome, safety steps
    time.sleep(0.2)
    journal = (bot["tmp"] / "esc.jsonl").read_text()
    assert '"risk": "imminent"' in journal
    assert "cam dao" not in journal and "t-danger" not in journal


def test_suicide_reply_is_short_and_warm_with_handoff(bot):
    replies = say(bot, "t-self", "em không muốn sống nữa")
    assert replies and len(replies[0]) <= 480
    assert "115" in " ".join(replies) or "113" in " ".join(replies)


def test_services_by_locality(bot):
    """Điện Bàn is both the former town and a ward: the bot lists the units and asks; the unit
    named next gets its People's Committee and police by name."""
    replies = say(bot, "t-svc", "em ở Điện Bàn, có chỗ nào hỗ trợ không")
    assert any("phường Điện Bàn Đông" in r and "xã Gò Nổi" in r and "xã/phường nào" in r for r in replies), replies
    replies = say(bot, "t-svc", "xã Gò Nổi")
    assert any("UBND xã Gò Nổi" in r and "Công an xã Gò Nổi" in r for r in replies), replies


def test_rasa_api_needs_the_token(bot):
    r = requests.get(bot["url"] + "/conversations/t-danger/tracker", timeout=10)
    assert r.status_code == 401


def _listeners():
    """(address hex, port) of every listening TCP socket, from /proc/net/tcp{,6}."""
    out = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(name).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            if state == "0A":
                addr, port = local.split(":")
                out.append((addr, int(port, 16)))
    return out


def test_servers_listen_on_loopback_only(bot):
    ports = {bot["actions"], int(bot["url"].rsplit(":", 1)[1])}
    found = [(a, p) for a, p in _listeners() if p in ports]
    assert {p for _, p in found} == ports
    loopback = {"0100007F", "00000000000000000000000001000000"}
    assert all(a in loopback for a, _ in found), found


def test_a_token_that_begins_with_a_dash_reaches_rasa_as_the_token(monkeypatch, tmp_path):
    """secrets.token_urlsafe can begin with "-": passed as a separate argument, argparse took it
    for an option and Rasa refused to start (a CI run failed on it once in a while)."""
    from bot import runner

    seen = {}

    class Popen:
        def __init__(self, cmd, **kw):
            seen["cmd"] = cmd

    monkeypatch.setattr(runner.subprocess, "Popen", Popen)
    runner.start_rasa(tmp_path / "m.tar.gz", 5999, "-starts-with-a-dash", tmp_path / "e.yml", tmp_path, {})
    assert "--auth-token=-starts-with-a-dash" in seen["cmd"]
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--auth-token")
    assert ap.parse_known_args(["--auth-token=-starts-with-a-dash"])[0].auth_token == "-starts-with-a-dash"
