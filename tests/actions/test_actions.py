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
    assert events == [{"event": "slot", "timestamp": None, "name": "escalated", "value": True},
                      {"event": "slot", "timestamp": None, "name": "offer", "value": "accepted"}]
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
    import csv
    places = list(csv.DictReader((ROOT / "data" / "kb" / "places.csv").open(encoding="utf-8")))
    return ({re.sub(r"\D", "", s["phone"]) for s in services if s.get("phone")}
            | {re.sub(r"\D", "", p["phone"]) for p in places if p.get("phone")})


def _find(text, slots=None, intent="find_services"):
    d = CollectingDispatcher()
    t = tracker(risk="none", topic="help_contact", slots=slots or {})
    t.latest_message.update({"text": text, "intent": {"name": intent}})
    events = A.ActionFindServices().run(d, t, {})
    return d.messages[0], {e["name"]: e["value"] for e in events}


@pytest.fixture(autouse=True)
def _no_gateway_checks(monkeypatch):
    """The action server asks the gateway for the console's checks; here there are none."""
    monkeypatch.setattr(gateway_client, "kb_checks", lambda *a, **k: {})


def test_a_unit_gets_its_peoples_committee_police_and_verified_places_only():
    msg, slots = _find("ở phường Điện Bàn có chỗ nào giúp không")
    assert msg["response"] == "utter_services_in_unit"
    assert msg["unit"] == "phường Điện Bàn (thị xã Điện Bàn cũ)"
    lines = msg["places"].split("\n")
    assert lines[0].startswith("- UBND phường Điện Bàn") and lines[1].startswith("- Công an phường Điện Bàn")
    assert any("Bệnh viện Đa khoa Bắc Quảng Nam" in ln for ln in lines)
    assert "22 Hoàng Diệu" not in msg["places"]              # that address is not verified yet
    numbers = set(re.findall(r"\b1[89]00 ?\d{4}\b|\b0\d[\d ]{8,12}\d\b", msg["places"]))
    assert {re.sub(r"\D", "", n) for n in numbers} <= _directory_numbers()
    assert slots == {"commune": "phuong_dien_ban", "locality": "dien_ban", "place_question": None}


def test_a_district_name_that_is_also_a_unit_asks_which_and_lists_every_unit():
    msg, slots = _find("em o dien ban")
    assert msg["response"] == "utter_ask_which_unit"
    assert msg["district"] == "Thị xã Điện Bàn cũ"
    assert msg["units"].split(", ") == ["phường Điện Bàn", "phường Điện Bàn Đông", "phường An Thắng",
                                        "phường Điện Bàn Bắc", "xã Điện Bàn Tây", "xã Gò Nổi"]
    assert slots["locality"] == "dien_ban" and slots["place_question"] == "dien_ban" and slots["commune"] is None
    # the same name again, right after the question: the person means the unit of that name
    msg, slots = _find("Điện Bàn", slots={"place_question": "dien_ban", "locality": "dien_ban"}, intent="inform_locality")
    assert msg["response"] == "utter_services_in_unit" and slots["commune"] == "phuong_dien_ban"


def test_duy_xuyen_is_never_routed_silently_to_xa_duy_xuyen():
    """xã Duy Xuyên is three communes only; the old district town is now xã Nam Phước."""
    msg, _slots = _find("tui o Duy Xuyen, can giup")
    assert msg["response"] == "utter_ask_which_unit" and "xã Nam Phước" in msg["units"]
    msg, slots = _find("huyện Duy Xuyên")
    assert msg["response"] == "utter_ask_which_unit"
    msg, slots = _find("thị trấn Nam Phước")
    assert msg["response"] == "utter_services_in_unit" and slots["commune"] == "xa_nam_phuoc"
    assert msg["note"] == ""                     # same name: nothing to explain


def test_an_old_commune_names_the_unit_it_is_now_part_of():
    msg, slots = _find("em ở xã Tam Xuân 1, Núi Thành")
    assert msg["response"] == "utter_services_in_unit" and slots["commune"] == "xa_tam_xuan"
    assert msg["note"] == "Xã Tam Xuân I cũ nay thuộc xã Tam Xuân. "
    assert "Bệnh viện Việt – Hàn Đà Nẵng" in msg["places"]


def test_a_name_shared_by_several_places_asks_which():
    msg, slots = _find("e o tra my")
    assert msg["response"] == "utter_ask_which_place"
    assert "xã Trà My (huyện Bắc Trà My cũ)" in msg["choices"] and "huyện Nam Trà My cũ" in msg["choices"]
    assert slots["place_question"]


def test_a_unit_from_an_earlier_turn_is_remembered():
    msg, _slots = _find("co cho nao giup khong", slots={"commune": "xa_go_noi", "locality": "dien_ban"})
    assert msg["response"] == "utter_services_in_unit" and msg["unit"] == "xã Gò Nổi (thị xã Điện Bàn cũ)"


def test_a_place_checked_in_the_console_is_shown_with_its_address(monkeypatch):
    """A row the office has not verified in the file is shown once a check is recorded."""
    import datetime as dt

    from bot.kb.facts import Check, latest_checks, places
    pid = next(i for i, p in places().items() if p.data["name"] == "UBND phường Điện Bàn")
    monkeypatch.setattr(gateway_client, "kb_checks",
                        lambda *a, **k: latest_checks([Check("place", pid, dt.date.today(), "confirmed")]))
    msg, _slots = _find("phường Điện Bàn")
    assert "- UBND phường Điện Bàn: 22 Hoàng Diệu" in msg["places"]


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
    assert {e["name"] for e in events} == {"locality", "commune", "place_question", "relationship", "person_at_risk",
                                          "escalated"}


def test_actions_module_does_no_io_at_import():
    import importlib

    from bot import kb
    kb._cache.clear()
    importlib.reload(A)
    assert kb._cache == {}


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
