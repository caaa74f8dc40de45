"""The gateway's OpenAPI description (webhook/openapi.yaml) checked against the app in-process.

Schemathesis reads the document as the app serves it (/api/v1/openapi.json) and generates valid
and invalid requests for every operation (fuzzing and its coverage phase). Protected operations get
valid credentials (the gateway token, a web chat session), except in the cases whose point is a
missing or wrong one; the ``ignored_auth`` check sends the accepted ones again without. Every
answer must be no 5xx, a documented status and content type, a body that matches its schema and
``Cache-Control: no-store``; invalid data must be refused. Escalations are also sent for a
conversation that exists, so the 201 path is fuzzed too. Plain tests keep the document and the
routes in step, so neither can change without the other.
"""
from __future__ import annotations

import re
from weakref import WeakKeyDictionary

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, ignored_auth, negative_data_rejection,
                                               response_headers_conformance, response_schema_conformance,
                                               status_code_conformance)

from tests.conftest import ROOT
from tests.webhook.conftest import API_TOKEN, rows
from webhook.models import Case, Conversation

DOCUMENT = ROOT / "webhook" / "openapi.yaml"
schema = schemathesis.pytest.from_fixture("api_schema")

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance, negative_data_rejection, ignored_auth]
TOKEN = {"Authorization": f"Bearer {API_TOKEN}"}
# the JSON API the document must cover completely, method by method
DESCRIBED_PREFIXES = ("/api/v1/", "/webchat/api/", "/webhooks/", "/healthz", "/readyz")
# high enough that a few hundred generated requests from one address reach the code behind them
NO_LIMITS = "bad_auth=100000/1,webchat_session=100000/1,webchat_message=100000/1"


@pytest.fixture
def api(make_app, tmp_path):
    """A gateway without the dispatcher (nothing is sent; the API is what is under test)."""
    app = make_app(run_dispatcher=False, limits=NO_LIMITS)
    app.extensions["helpline"].spool.dir = tmp_path / "spool"
    return app


@pytest.fixture
def api_schema(api):
    """The document as the app serves it, with the app to send requests to."""
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", api)


@schema.auth(refresh_interval=None)
class Credentials:
    """Valid credentials for the operation's security scheme: the gateway token, or a web chat
    session of the app under test (one per app, so polling sees what was sent). Schemathesis
    leaves them off the cases whose point is a missing or wrong credential, and its
    ``ignored_auth`` check sends the others again without them: both doors are tested."""

    sessions: WeakKeyDictionary = WeakKeyDictionary()

    def get(self, case, ctx):
        scheme = _scheme(case.operation)
        if scheme == "gatewayToken":
            return TOKEN
        if scheme == "webchatSession":
            if ctx.app not in self.sessions:
                self.sessions[ctx.app] = ctx.app.test_client().post("/webchat/api/session").get_json()["session"]
            return {"X-Webchat-Session": self.sessions[ctx.app]}
        return None

    def set(self, case, data, ctx):
        case.headers = {**(case.headers or {}), **data}


def _scheme(operation) -> str | None:
    security = operation.definition.raw.get("security") or [{}]
    return next(iter(security[0]), None)


@pytest.fixture
def known_conversation(api) -> str:
    """The Rasa sender id of a real conversation, so escalations can succeed."""
    client = api.test_client()
    session = client.post("/webchat/api/session").get_json()["session"]
    resp = client.post("/webchat/api/messages", json={"text": "xin chào"}, headers={"X-Webchat-Session": session})
    assert resp.status_code == 202
    return rows(api.extensions["helpline"], Conversation)[0].rasa_sender


@settings(max_examples=40, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much])
@schema.parametrize()
def test_api_conforms_to_its_description(case, known_conversation):
    case.call_and_validate(checks=CHECKS)
    body = case.body
    if case.operation.path == "/api/v1/escalations" and isinstance(body, dict) \
            and isinstance(body.get("conversation_id"), str):
        # the same fuzzed risk, topic, reason and summary for a conversation that exists: opened
        known = case.operation.Case(body={**body, "conversation_id": known_conversation})
        assert known.call_and_validate(headers=TOKEN, checks=CHECKS).status_code == 201


def test_a_known_conversation_is_escalated_as_documented(api, api_schema, known_conversation):
    """The 201 answer by hand, in case generation never reaches it: one case, the documented shape."""
    operation = api_schema["/api/v1/escalations"]["POST"]
    case = operation.Case(body={"conversation_id": known_conversation, "risk": "high",
                                "summary": {"intent": "disclose_dv", "reasons": ["violence"]}})
    resp = case.call_and_validate(headers=TOKEN, checks=CHECKS)
    assert resp.status_code == 201
    assert [c.id for c in rows(api.extensions["helpline"], Case)] == [resp.json()["case_id"]]


def test_too_many_requests_are_answered_as_documented(make_app):
    """The limits (webhook/security.py) answer 429 with Retry-After, in the documented shape."""
    app = make_app(run_dispatcher=False, limits="webchat_session=1/600,bad_auth=1/300")
    described = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    session = described["/webchat/api/session"]["POST"].Case()
    assert [session.call_and_validate(checks=CHECKS).status_code for _ in range(2)] == [201, 429]
    escalation = described["/api/v1/escalations"]["POST"].Case(body={"conversation_id": "web-x"})
    wrong = {"Authorization": "Bearer wrong"}
    assert [escalation.call_and_validate(headers=wrong, checks=CHECKS).status_code for _ in range(2)] == [403, 429]


def test_a_wrong_method_is_told_the_allowed_ones(api):
    resp = api.test_client().delete("/healthz")
    assert resp.status_code == 405
    assert {m.strip() for m in resp.headers.get("Allow", "").split(",")} == {"GET", "HEAD", "OPTIONS"}


def test_deeply_nested_json_to_the_escalation_api_is_a_400(api):
    resp = api.test_client().post("/api/v1/escalations", data="[" * 5000, headers=TOKEN,
                                  content_type="application/json")
    assert resp.status_code == 400


def test_served_document_is_the_yaml_file(api):
    resp = api.test_client().get("/api/v1/openapi.json")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    assert resp.get_json() == yaml.safe_load(DOCUMENT.read_text("utf-8"))


def test_every_api_route_is_described_and_every_description_is_a_route(api):
    """Flask's ``<channel>`` is OpenAPI's ``{channel}``; HEAD and OPTIONS are Flask's own."""
    routes = {}
    for rule in api.url_map.iter_rules():
        if rule.rule.startswith(DESCRIBED_PREFIXES):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            routes.setdefault(path, set()).update(m.lower() for m in rule.methods - {"HEAD", "OPTIONS"})
    described = {path: set(ops) - {"parameters", "summary", "description"}
                 for path, ops in yaml.safe_load(DOCUMENT.read_text("utf-8"))["paths"].items()}
    assert described == routes
