"""Risk rules over text alone: a table written apart from the training data (tests/data/
risk_table.yaml), plus the cases the issue names."""
from pathlib import Path

import pytest
import yaml

from bot.intents import risk_rank
from bot.nlu.risk import assess

TABLE = yaml.safe_load((Path(__file__).parents[1] / "data" / "risk_table.yaml").read_text("utf-8"))["cases"]


@pytest.mark.parametrize("case", TABLE, ids=[c["text"][:40] for c in TABLE])
def test_risk_table(case):
    got = assess(case["text"]).risk
    if "min" in case:
        assert risk_rank(got) >= risk_rank(case["min"]), f"{case['text']!r}: {got} < {case['min']}"
    if "max" in case:
        assert risk_rank(got) <= risk_rank(case["max"]), f"{case['text']!r}: {got} > {case['max']}"


@pytest.mark.parametrize("text", [
    "phim bạo lực quá", "chết cười với thằng bạn", "xem bóng đá, Việt Nam đánh bại Thái Lan",
    "giết thời gian bằng game", "đánh răng xong đi ngủ", "em đánh giá sản phẩm này 5 sao",
    "Con mèo nhà tôi bị đánh ghen", "nóng muốn chết", "từ từ rồi tính", "Hiệp Đức có chỗ nào hỗ trợ",
    "Hiếp dâm bị phạt mấy năm tù?", "trẻ em bị xâm hại thì báo ở đâu",
])
def test_violent_words_without_a_person_stay_calm(text):
    assert assess(text).risk == "none"


@pytest.mark.parametrize("text, level, topic", [
    ("Tôi không thiết sống nữa", "imminent", "self_harm"),
    ("em muon chet cho xong", "imminent", "self_harm"),
    ("toi muon tu tu", "imminent", "self_harm"),
    ("Cứu với, nó đang đánh con tôi", "imminent", None),
    ("dang bi danh o nha", "imminent", "emergency"),
    ("hắn nói tối nay sẽ giết tui", "imminent", None),
    ("Anh ấy nói sẽ giết tôi nếu tôi đi báo công an", "high", None),
    ("chồng đánh em chảy máu", "high", None),
    ("em bị người lạ hiếp", "high", "sexual_violence"),
    ("cháu tôi 8 tuổi bị ông hàng xóm sờ vào chỗ kín", "high", "child_abuse"),
    ("bố dượng hay đánh con tôi", "high", "child_abuse"),
    ("họ giữ hộ chiếu của em ở bên đó", "high", "forced_marriage_trafficking"),
    ("Chồng ép tôi đưa hết tiền, không đưa là bị đánh", "medium", None),
    ("Con tôi bị bạn cùng lớp bắt nạt", "medium", None),
])
def test_named_cases(text, level, topic):
    a = assess(text)
    assert a.risk == level, (text, a)
    if topic:
        assert a.topic == topic


def test_rules_accent_insensitive():
    from bot.nlu.normalize import strip_diacritics
    for text in ("nó đang cầm dao đòi giết tôi", "tôi không muốn sống nữa", "em bị hiếp"):
        assert assess(text).risk == assess(strip_diacritics(text)).risk


def test_negated_violence_does_not_raise():
    assert assess("chồng em không đánh em").risk == "none"


def test_rules_run_without_rasa():
    """The gateway uses the same rules when Rasa is down: importing them must not import Rasa."""
    import subprocess
    import sys
    code = ("import sys; from bot.understanding import understand; "
            "u = understand('nó đang cầm dao', None); "
            "assert u.risk == 'imminent' and u.intent == 'emergency_danger', u; "
            "assert not any(m == 'rasa' or m.startswith('rasa.') for m in sys.modules), 'rasa imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_understanding_without_model_is_rules_only():
    from bot.understanding import understand
    assert understand("Giá vàng hôm nay bao nhiêu", None).topic == "out_of_scope"
    assert understand("em muốn tự tử", None).topic == "self_harm"
    u = understand("chồng em hay chửi em", None)
    assert u.risk == "medium" and u.action == "offer_counselor"
