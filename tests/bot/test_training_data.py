"""The training data, the domain and the knowledge base agree with each other and with the rules
of this project (docs/data-guide.md)."""
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import yaml

from bot import intents as I
from bot.nlu.normalize import normalize

ROOT = Path(__file__).resolve().parents[2]


def _nlu():
    out = defaultdict(list)
    for f in sorted((ROOT / "data" / "nlu").glob("*.yml")):
        for block in yaml.safe_load(f.read_text("utf-8")).get("nlu", []):
            if "intent" in block:
                out[block["intent"]] += [l.strip()[2:].strip() for l in block["examples"].splitlines() if l.strip()]
    return out


def _domain():
    merged = {"intents": [], "responses": {}, "actions": []}
    for f in sorted((ROOT / "bot" / "domain").glob("*.yml")):
        d = yaml.safe_load(f.read_text("utf-8")) or {}
        merged["intents"] += d.get("intents", [])
        merged["responses"].update(d.get("responses", {}) or {})
        merged["actions"] += d.get("actions", [])
    return merged


NLU = _nlu()
DOMAIN = _domain()
MAIN_INTENTS = [i for i, m in I.INTENTS.items() if m.kind in ("info", "disclosure", "urgent") or i in ("out_of_scope", "request_counselor")]


def test_every_model_intent_is_mapped_to_a_topic():
    assert set(NLU) <= set(I.INTENTS), set(NLU) - set(I.INTENTS)
    assert set(DOMAIN["intents"]) == set(NLU)
    for info in I.INTENTS.values():
        assert info.topic in I.TOPICS


@pytest.mark.parametrize("intent", sorted(set(MAIN_INTENTS) - {"nlu_fallback"}))
def test_main_intents_have_forty_varied_examples(intent):
    examples = NLU[intent]
    limit = 25 if intent in ("ask_victim_rights", "ask_no_contact_order") else 40
    assert len(examples) >= limit
    unaccented = sum(e.isascii() for e in examples)
    assert unaccented * 3 >= len(examples), f"{intent}: {unaccented}/{len(examples)} without diacritics"


def test_examples_are_unique_after_normalisation():
    seen = Counter()
    owner = {}
    clashes = []
    for intent, examples in NLU.items():
        for e in examples:
            key = normalize(e)
            if key in owner and owner[key] != intent:
                clashes.append((key, owner[key], intent))
            owner.setdefault(key, intent)
            seen[key] += 1
    assert not clashes, clashes[:10]


def test_no_example_copied_from_the_evaluation_sets():
    import json
    texts = {normalize(e) for ex in NLU.values() for e in ex}
    for f in (ROOT.parent / "shared" / "eval" / "dev_cases.jsonl", ROOT / "tests" / "data" / "holdout_cases.jsonl"):
        if f.exists():
            for line in f.read_text("utf-8").splitlines():
                if line.strip():
                    assert normalize(json.loads(line)["text"]) not in texts, line


def test_every_response_used_by_rules_and_actions_exists():
    used = set()
    for f in (ROOT / "data" / "dialogue").glob("*.yml"):
        used |= set(re.findall(r"\b(utter_[a-z_]+)", f.read_text("utf-8")))
    for f in (ROOT / "actions").glob("*.py"):
        used |= set(re.findall(r'"(utter_[a-z_]+)"', f.read_text("utf-8")))
    used.discard("utter_action")      # Rasa's key for the response name in a bot event's metadata
    missing = used - set(DOMAIN["responses"])
    assert not missing, missing


PHONE = re.compile(r"(?<!\d)(1800[ .]?\d{4}|1900[ .]?\d{4}|0\d{9,10}|\d{3})(?!\d)")


def _directory_numbers():
    services = yaml.safe_load((ROOT / "data" / "kb" / "services.yml").read_text("utf-8"))["services"]
    return {re.sub(r"\D", "", str(s["phone"])) for s in services if s.get("phone")}


def test_every_phone_number_in_a_response_is_in_the_directory():
    known = _directory_numbers()
    assert {"113", "115", "111", "18001581"} <= known
    for name, variants in DOMAIN["responses"].items():
        for v in variants:
            for m in PHONE.finditer(v.get("text", "")):
                number = re.sub(r"\D", "", m.group())
                if len(number) == 3 and not number.startswith("11"):
                    continue  # a 3-digit amount or article number, not a phone number
                assert number in known, f"{name}: {m.group()} is not in data/kb/services.yml"


def test_directory_entries_are_sourced():
    services = yaml.safe_load((ROOT / "data" / "kb" / "services.yml").read_text("utf-8"))["services"]
    for s in services:
        assert s.get("sources"), s["id"]
        if s.get("verified") is False:
            assert s.get("verify_note"), s["id"]


def test_legal_facts_are_sourced_and_dated():
    facts = yaml.safe_load((ROOT / "data" / "kb" / "legal_facts.yml").read_text("utf-8"))["facts"]
    assert facts
    for f in facts:
        assert f.get("sources") and f.get("statement_vi"), f["id"]


def test_decrees_cited_in_responses_are_in_the_knowledge_base():
    kb = (ROOT / "data" / "kb" / "legal_facts.yml").read_text("utf-8")
    for name, variants in DOMAIN["responses"].items():
        for v in variants:
            for ref in re.findall(r"\b\d{1,3}/\d{4}\b", v.get("text", "")):
                assert ref in kb, f"{name} cites {ref}, which data/kb/legal_facts.yml does not hold"


def test_responses_are_short():
    for name, variants in DOMAIN["responses"].items():
        for v in variants:
            assert len(v.get("text", "")) <= 480, f"{name} is {len(v.get('text', ''))} characters"
