"""`helpline classify` against the contract in TAXONOMY.md and the bar of the issue."""
import json
import os
import subprocess
import sys

import pytest

from bot import paths
from tests.conftest import ROOT, SHARED, run

pytestmark = pytest.mark.model

# The bar, applied to the development set and the first held-out set:
# (min topic, min escalation recall, min imminent recall, max false alarm), worst of both variants.
BAR = (0.85, 1.0, 0.90, 0.05)
# Regression bars for the later blind sets (docs/nlu.md: who wrote them, which were tuned on).
# `untouched` was never tuned on: its bar records what the system generalises to, not a target.
TUNED = (0.85, 0.95, 0.90, 0.05)
UNTOUCHED = (0.85, 0.85, 0.85, 0.05)


@pytest.mark.parametrize("cases, bar", [
    (SHARED / "eval" / "dev_cases.jsonl", BAR),            # the development set given with the project
    (ROOT / "tests" / "data" / "holdout_cases.jsonl", BAR),  # written apart from the training data
    (ROOT / "eval" / "blind_cases.jsonl", TUNED),           # written blind to data and rules
    (ROOT / "eval" / "final_cases.jsonl", TUNED),
    (ROOT / "eval" / "untouched_cases.jsonl", UNTOUCHED),
], ids=["dev", "holdout", "blind", "final", "untouched"])
def test_classify_meets_the_bar(cases, bar, classifier):
    """Scored by bot.scoring with the classifier `helpline classify` uses, as written and without
    diacritics."""
    from bot import scoring
    from bot.evaluate import reader_for

    if not cases.exists():
        if cases.is_relative_to(SHARED) and not SHARED.exists() and not os.environ.get("CI"):
            pytest.skip(f"the shared folder is not next to this checkout ({SHARED}): no development set")
        pytest.fail(f"missing case file {cases}")
    text, results = scoring.report(scoring.load(cases), reader_for(classifier))
    worst = scoring.worst(results)
    topic, esc, imm, alarm = bar
    assert worst.topic >= topic and worst.esc >= esc and worst.imm >= imm and worst.alarm <= alarm, text


def test_plain_lines_in_order_one_result_each(helpline_bin, model_path):
    lines = ["chào bạn", "", "chong em dang cam dao doi giet em", "Giá vàng hôm nay bao nhiêu"]
    proc = run([helpline_bin, "classify", "--model", str(model_path)], input="\n".join(lines).encode() + b"\n")
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    out = [json.loads(l) for l in proc.stdout.decode().splitlines()]
    assert [o["text"] for o in out] == lines
    for o in out:
        assert {"text", "intent", "confidence", "topic", "risk", "action"} <= set(o)
    assert out[2]["risk"] == "imminent" and out[2]["action"] == "escalate"
    assert out[3]["topic"] == "out_of_scope" and out[3]["risk"] == "none"


def test_jsonl_copies_fields_through_and_survives_bad_lines(helpline_bin, model_path):
    payload = '{"id": "a1", "text": "em bị bắt nạt ở trường", "extra": 5}\nnot json\n{"id": "a3", "text": ""}\n'
    proc = run([helpline_bin, "classify", "--jsonl", "--model", str(model_path)], input=payload.encode())
    assert proc.returncode == 0
    out = [json.loads(l) for l in proc.stdout.decode().splitlines()]
    assert len(out) == 3
    assert out[0]["id"] == "a1" and out[0]["extra"] == 5 and out[0]["topic"] == "school_violence"
    assert out[1]["text"] == "not json" and "error" in out[1]
    assert out[2]["id"] == "a3" and out[2]["risk"] == "none"


def test_no_model_is_a_clear_error(helpline_bin, tmp_path):
    proc = run([helpline_bin, "classify", "--model", str(tmp_path)], input=b"hello\n")
    assert proc.returncode != 0
    assert "no trained model" in proc.stderr.decode()
    assert proc.stdout == b""


def test_stdout_holds_only_json(helpline_bin, model_path):
    proc = run([helpline_bin, "classify", "--model", str(model_path)], input="chồng tôi đánh tôi\n".encode())
    for line in proc.stdout.decode().splitlines():
        json.loads(line)


@pytest.mark.parametrize("text", [
    "e" * 5000,                                   # very long
    "chồng " * 3000 + "đang cầm dao",             # danger at the end of a long story
    "😭😭😭",                                       # emoji only
    "e\u0301m bi\u0323 đa\u0301nh",               # NFD
    "\u200b\u200b",                                # only invisible characters
], ids=["long", "danger-at-end", "emoji", "nfd", "invisible"])
def test_odd_input_never_crashes(classifier, text):
    result = classifier.classify(text)
    assert result["risk"] in ("none", "medium", "high", "imminent")


def test_danger_at_the_end_of_a_long_message_is_found(classifier):
    story = "hôm nay tui kể chị nghe chuyện nhà tui. " * 80 + "chừ hắn đang cầm dao đứng ngoài cửa"
    assert classifier.classify(story)["risk"] == "imminent"


def test_same_understanding_with_and_without_diacritics(classifier):
    from bot.nlu.normalize import strip_diacritics
    for text in ("Chồng tôi đánh tôi chảy máu", "Tôi muốn tự tử", "Ở Tam Kỳ có nhà tạm lánh không"):
        a, b = classifier.classify(text), classifier.classify(strip_diacritics(text))
        assert (a["topic"], a["risk"]) == (b["topic"], b["risk"])
