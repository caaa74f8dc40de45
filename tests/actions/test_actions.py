"""Custom actions with a fake gateway on loopback: escalation delivered, gateway absent, no text
leaves the action server, services only from the directory."""
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import actions as A
from actions import gateway_client
from tests.conftest import ROOT


class FakeGateway:
    def __init__(self, status=201):
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((self.path, dict(self.headers), json.loads(body)))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *a):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def gateway(monkeypatch, tmp_path):
    gw = FakeGateway()
    monkeypatch.setenv("HELPLINE_GATEWAY_URL", gw.url)
    monkeypatch.setenv("HELPLINE_GATEWAY_TOKEN", "s3cret")
    monkeypatch.setenv("HELPLINE_ESCALATION_JOURNAL", str(tmp_path / "esc.jsonl"))
    yield gw
    gw.close()


SECRET_TEXT = "chồng em đang cầm dao, số em 0905123456"


def tracker(risk="imminent", topic="emergency", slots=None, sender="sms:+84905123456"):
    latest = {"text": SECRET_TEXT, "intent": {"name": "emergency_danger", "confidence": 0.9}, "topic": topic,
              "risk": risk, "risk_reasons": ["attack_now"], "entities": [], "metadata": {"channel": "sms"}}
    return Tracker(sender, slots or {}, latest, [], False, None, {}, "action_listen")


def test_escalation_reaches_gateway_without_message_text(gateway):
    d = CollectingDispatcher()
    events = A.ActionEscalate().run(d, tracker(slots={"locality": "nui_thanh"}), {})
    assert [m["response"] for m in d.messages] == ["utter_escalated"]
    assert events == [{"event": "slot", "timestamp": None, "name": "escalated", "value": True}]
    path, headers, body = gateway.requests[0]
    assert path == "/api/v1/escalations"
    assert headers["Authorization"] == "Bearer s3cret"
    assert body["risk"] == "imminent" and body["reason"] == "risk" and body["channel"] == "sms"
    assert body["summary"]["locality"] == "nui_thanh"
    assert SECRET_TEXT not in json.dumps(body, ensure_ascii=False)
    assert "0905123456" not in json.dumps(body["summary"])


def test_request_without_risk_is_a_request(gateway):
    d = CollectingDispatcher()
    A.ActionEscalate().run(d, tracker(risk="none", topic="request_counselor"), {})
    assert gateway.requests[0][2]["reason"] == "request"


def test_gateway_absent_journals_and_tells_the_person(monkeypatch, tmp_path):
    journal = tmp_path / "esc.jsonl"
    monkeypatch.setenv("HELPLINE_GATEWAY_URL", "http://127.0.0.1:9")   # nothing listens there
    monkeypatch.setenv("HELPLINE_GATEWAY_TIMEOUT", "0.5")
    monkeypatch.setenv("HELPLINE_ESCALATION_JOURNAL", str(journal))
    d = CollectingDispatcher()
    A.ActionEscalate().run(d, tracker(), {})
    assert [m["response"] for m in d.messages] == ["utter_escalation_failed"]
    record = json.loads(journal.read_text())
    assert record["risk"] == "imminent"
    raw = journal.read_text()
    assert "+84905123456" not in raw and SECRET_TEXT not in raw and "conversation_id" not in record
    assert record["conversation_key"] == gateway_client.conversation_key("sms:+84905123456")


def test_gateway_error_status_is_not_delivery(monkeypatch, tmp_path):
    gw = FakeGateway(status=500)
    try:
        monkeypatch.setenv("HELPLINE_GATEWAY_URL", gw.url)
        monkeypatch.setenv("HELPLINE_ESCALATION_JOURNAL", str(tmp_path / "esc.jsonl"))
        d = CollectingDispatcher()
        A.ActionEscalate().run(d, tracker(), {})
        assert d.messages[0]["response"] == "utter_escalation_failed"
        assert (tmp_path / "esc.jsonl").exists()
    finally:
        gw.close()


def _directory_numbers():
    services = yaml.safe_load((ROOT / "data" / "kb" / "services.yml").read_text("utf-8"))["services"]
    return {re.sub(r"\D", "", s["phone"]) for s in services if s.get("phone")}


def test_services_for_a_locality_come_from_the_directory():
    d = CollectingDispatcher()
    A.ActionFindServices().run(d, tracker(slots={"locality": "hoi_an"}), {})
    msg = d.messages[0]
    assert msg["response"] == "utter_services_in_locality"
    assert msg["locality"] == "Hội An"
    numbers = set(re.findall(r"\b1800 ?\d{4}\b|\b11\d\b", msg["services"]))
    assert {re.sub(r"\D", "", n) for n in numbers} <= _directory_numbers()
    assert "1800 1581" in msg["services"] and "111" in msg["services"]


def test_services_without_locality_asks_where():
    d = CollectingDispatcher()
    t = tracker(risk="none")
    t.latest_message["intent"] = {"name": "find_services"}
    A.ActionFindServices().run(d, t, {})
    assert d.messages[0]["response"] == "utter_ask_locality"


@pytest.mark.parametrize("text, response", [
    ("đánh vợ bị phạt bao nhiêu tiền", "utter_penalty_dv"),
    ("quấy rối nơi làm việc bị xử lý sao", "utter_penalty_general"),
])
def test_penalty_answer_by_subject(text, response):
    d = CollectingDispatcher()
    t = tracker(risk="none", topic="legal_aid")
    t.latest_message["text"] = text
    A.ActionAnswerPenalty().run(d, t, {})
    assert d.messages[0]["response"] == response


def test_delete_clears_slots():
    d = CollectingDispatcher()
    events = A.ActionDeleteData().run(d, tracker(slots={"locality": "tam_ky"}), {})
    assert d.messages[0]["response"] == "utter_deleted"
    assert {e["name"] for e in events} == {"locality", "relationship", "person_at_risk", "escalated"}


def test_actions_module_does_no_io_at_import():
    import importlib
    import actions.knowledge as K
    K.load.cache_clear()
    importlib.reload(K)
    assert K.load.cache_info().currsize == 0


@pytest.mark.parametrize("action, kind, response", [
    (A.ActionSubscribe, "subscribe", "utter_subscribed"),
    (A.ActionUnsubscribe, "unsubscribe", "utter_unsubscribed"),
    (A.ActionDeleteData, "delete", "utter_deleted"),
])
def test_service_commands_are_recorded_without_the_address(action, kind, response, monkeypatch, tmp_path):
    monkeypatch.setenv("HELPLINE_ESCALATION_JOURNAL", str(tmp_path / "esc.jsonl"))
    d = CollectingDispatcher()
    action().run(d, tracker(risk="none", topic="service_command"), {})
    assert d.messages[0]["response"] == response
    raw = (tmp_path / "preferences.jsonl").read_text()
    record = json.loads(raw)
    assert record["kind"] == kind and record["channel"] == "sms"
    assert "+84905123456" not in raw and SECRET_TEXT not in raw
