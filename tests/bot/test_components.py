"""The Rasa components on their own: tokenizer offsets, pyvi segmentation, gazetteer round trip
through model storage, risk annotation of parse results."""
import pytest
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.components import Gazetteer, RiskAnnotator, VietnameseTokenizer


def _tokens(text, **cfg):
    tok = VietnameseTokenizer({**VietnameseTokenizer.get_default_config(), **cfg})
    return tok.tokenize(Message(data={"text": text}), "text")


def test_tokens_are_folded_and_expanded_with_original_offsets():
    text = "Ck em đánh em ở Núi Thành"
    toks = _tokens(text)
    assert [t.text for t in toks] == ["chong", "em", "danh", "em", "o", "nui", "thanh"]
    assert text[toks[0].start:toks[0].end] == "Ck"
    assert text[toks[2].start:toks[2].end] == "đánh"


def test_accented_and_unaccented_give_the_same_tokens():
    assert [t.text for t in _tokens("Tôi bị đánh")] == [t.text for t in _tokens("toi bi danh")]


def test_empty_text_gives_a_placeholder_token():
    assert [t.text for t in _tokens("!!! 😭")] == ["empty"]


@pytest.mark.parametrize("text", [
    "gọi đường dây nóng", "bạo lực gia đình ở Hội An", "ck e dj nhau r", "Tôi bị đánh, gọi 113!",
    "5tuổi", "xã Tân Hiệp", "chào", "",
])
def test_pyvi_segmenter_never_crashes_and_keeps_offsets(text):
    toks = [t for t in _tokens(text, segmenter="pyvi") if t.text != "empty"]
    for t in toks:
        assert 0 <= t.start <= t.end <= len(text)


def test_pyvi_joins_compounds_and_keeps_syllables():
    texts = [t.text for t in _tokens("bạo lực gia đình", segmenter="pyvi")]
    assert "bao_luc" in texts and "bao" in texts and "luc" in texts


def test_gazetteer_trains_persists_and_loads(tmp_path):
    storage = LocalModelStorage(tmp_path)
    resource = Resource("gazetteer")
    g = Gazetteer.create(Gazetteer.get_default_config(), storage, resource, None)
    g.train(TrainingData())
    loaded = Gazetteer.load(Gazetteer.get_default_config(), storage, resource, None)
    msg = Message(data={"text": "con toi bi bo duong danh o Nui Thanh"})
    loaded.process([msg])
    got = {(e["entity"], e["value"]) for e in msg.get("entities")}
    assert ("locality", "nui_thanh") in got
    assert ("person_at_risk", "child") in got
    assert ("relationship", "primary_caregiver") in got


def test_risk_annotator_adds_labels_and_routes_urgent_messages():
    msg = Message(data={"text": "ở Tam Kỳ có chỗ nào giúp không, hắn đang cầm dao",
                        "intent": {"name": "find_services", "confidence": 0.9}})
    RiskAnnotator().process([msg])
    assert msg.get("risk") == "imminent"
    assert msg.get("intent")["name"] == "emergency_danger"
    assert msg.get("model_intent") == "find_services"
    assert msg.get("action") == "escalate"
    assert "topic" in msg.as_dict(only_output_properties=True)


def _behind_the_fallback(guess: str, confidence: float, text: str = "abc", context=None) -> Message:
    msg = Message(data={"text": text, "intent": {"name": "nlu_fallback", "confidence": 0.45},
                        "intent_ranking": [{"name": "nlu_fallback", "confidence": 0.45},
                                           {"name": guess, "confidence": confidence}],
                        **({"metadata": {"context": context}} if context else {})})
    RiskAnnotator().process([msg])
    return msg


def test_risk_annotator_uses_best_guess_behind_the_fallback():
    """The topic says the best guess; the dialogue gets the fallback unless the guess is an
    information question at FALLBACK_INFO_MIN or more (an answer helps more than "I did not
    understand"), or the conversation placed the message."""
    unsure = _behind_the_fallback("ask_shelter", 0.30)
    assert unsure.get("topic") == "shelter" and unsure.get("risk") == "none"
    assert unsure.get("intent")["name"] == "nlu_fallback"
    likely = _behind_the_fallback("ask_shelter", 0.40)
    assert likely.get("intent")["name"] == "ask_shelter"
    chitchat = _behind_the_fallback("affirm", 0.40, text="co")
    assert chitchat.get("intent")["name"] == "nlu_fallback"
    answered = _behind_the_fallback("affirm", 0.40, text="co", context={"asked": "safe_now"})
    assert answered.get("intent")["name"] == "affirm"


def test_keyword_command_wins_over_the_model():
    msg = Message(data={"text": "STOP", "intent": {"name": "greet", "confidence": 0.8}})
    RiskAnnotator().process([msg])
    assert msg.get("intent")["name"] == "unsubscribe"
    assert msg.get("topic") == "service_command"
