"""A message read in its conversation (bot/context.py through bot/understanding.py): the rules
alone, no model, so these run everywhere. Each case as written and without diacritics."""
import pytest

from bot import context as C
from bot.scoring import plain
from bot.understanding import understand

DV = {"risk": "medium", "topic": "domestic_violence"}


def both(texts):
    return [t for text in texts for t in dict.fromkeys((text, plain(text)))]


@pytest.mark.parametrize("text", both(["có", "co", "có ạ", "dạ có", "uh", "ừ", "ok", "oke", "vâng", "được", "yes"]))
def test_yes_in_any_spelling(text):
    assert C.short_answer(text) == "yes"


@pytest.mark.parametrize("text", both(["không", "ko", "k", "hông", "hok", "chưa", "không ạ", "no", "không an toàn lắm"]))
def test_no_in_any_spelling(text):
    assert C.short_answer(text) == "no"


@pytest.mark.parametrize("text", both(["có", "uh", "ok"]))
def test_yes_to_are_you_safe_is_an_answer_not_a_fallback(text):
    u = understand(text, "nlu_fallback", 0.3, context={"asked": "safe_now"})
    assert u.intent == "affirm" and u.risk == "none"


@pytest.mark.parametrize("text", both(["không", "ko", "k an toan lam", "ổng đang ở nhà", "not safe"]))
def test_not_safe_to_text_is_danger(text):
    u = understand(text, "deny", 0.9, context={"asked": "safe_now"})
    assert u.risk in ("high", "imminent") and u.intent == "emergency_danger" and u.action == "escalate"


@pytest.mark.parametrize("text", both(["tối nay ổng về", "lại bị như hôm trước", "chút nữa hắn về tới", "he is coming back tonight"]))
def test_inside_a_disclosure_someone_coming_back_is_high(text):
    u = understand(text, "nlu_fallback", 0.2, context=DV)
    assert u.risk in ("high", "imminent"), u.reasons
    assert u.intent in ("emergency_danger", "self_harm")


@pytest.mark.parametrize("text", both(["tối nay ổng về", "lại bị như hôm trước"]))
def test_the_same_words_with_no_disclosure_before_are_not_read_as_a_return(text):
    u = understand(text, "nlu_fallback", 0.2, context={})
    assert "context:returns" not in u.reasons


def test_words_the_model_cannot_place_continue_the_disclosure_instead_of_the_fallback():
    u = understand("rồi sao nữa chị", "nlu_fallback", 0.2, context=DV)
    assert u.intent == "disclose_dv" and u.topic == "domestic_violence" and u.risk == "medium"


@pytest.mark.parametrize("text", both(["cảm ơn chị", "thôi không sao đâu"]))
def test_conversation_risk_never_drops(text):
    u = understand(text, "thank", 0.9, context={"risk": "high", "topic": "domestic_violence"})
    assert u.conversation_risk == "high"


def test_the_offer_is_answered_in_any_spelling():
    assert understand("uh", "nlu_fallback", 0.2, context={"asked": "counsellor", **DV}).intent == "affirm"
    assert understand("ko", "nlu_fallback", 0.2, context={"asked": "counsellor", **DV}).intent == "deny"


def test_context_from_metadata_is_checked():
    assert C.Context.of({"risk": "extreme", "topic": "x", "asked": 3}) == C.Context()
    assert C.Context.of(None) == C.Context() and C.Context.of("junk") == C.Context()


def test_after_never_lowers_and_keeps_the_subject_through_a_question():
    ctx = C.Context("high", "domestic_violence", "counsellor")
    nxt = ctx.after("none", "legal_aid", None)
    assert nxt.risk == "high" and nxt.topic == "domestic_violence" and nxt.asked is None
    assert ctx.after("medium", "child_abuse", None).topic == "child_abuse"     # more salient
    assert C.Context().after("none", "chitchat", "safe_now").asked == "safe_now"


def test_what_a_reply_asks_comes_from_the_domain_and_the_rules():
    assert C.asks_after("greet") == "safe_now"
    assert C.asks_after("find_services") in (None, "locality")
    assert C.asks_after("ask_psych_support") is None          # the offer is made by an action


@pytest.mark.parametrize("text, who", [
    ("e la hs lop 8", "child"), ("em 14 tuổi", "child"), ("con tôi bị bạn đánh ở trường", "parent"),
    ("nhà hàng xóm đánh vợ suốt", "witness"), ("tôi 72 tuổi, con trai tôi đánh tôi", "elder"),
    ("chồng em đánh em", None)])
def test_who_is_writing(text, who):
    assert C.writer(text) == who and C.writer(plain(text)) == who


def test_the_model_alone_does_not_move_the_subject_of_a_disclosure():
    school = {"risk": "medium", "topic": "school_violence"}
    u = understand("e không dám nói với cô giáo", "disclose_dv", 0.8, context=school)
    assert u.topic == "school_violence" and u.intent == "disclose_school_violence"
    # a rule that sees a new subject does move it
    u = understand("bố em cũng đánh em bằng roi", "disclose_dv", 0.8, context=school)
    assert u.topic != "school_violence"


@pytest.mark.parametrize("text", both(["không an toàn", "ko an toàn", "em không an toàn", "dạ chưa an toàn", "I'm not safe"]))
def test_saying_one_is_not_safe_is_danger_with_or_without_the_question(text):
    u = understand(text, "deny", 0.9)
    assert u.risk == "high" and u.action == "escalate"


@pytest.mark.parametrize("text", both(["ở nhà không an toàn nữa, cho tôi chỗ ở tạm", "nhà tạm lánh có an toàn không"]))
def test_a_place_that_is_not_safe_is_not_the_person_saying_so(text):
    assert not C.says_unsafe(text)


@pytest.mark.parametrize("text", both(["có, mình đang ở cơ quan", "dạ có, em ở một mình"]))
def test_yes_i_am_safe_outweighs_an_urgent_guess_of_the_model_alone(text):
    u = understand(text, "emergency_danger", 0.34, context={"asked": "safe_now"})
    assert u.risk == "none" and u.intent == "affirm"
    # a rule that sees danger is never outweighed
    u = understand("có, nhưng nó đang cầm dao", "emergency_danger", 0.9, context={"asked": "safe_now"})
    assert u.risk == "imminent"


@pytest.mark.parametrize("text", both(["mai đi học chắc lại bị như hôm trước"]))
def test_the_model_alone_does_not_turn_a_bullying_conversation_into_self_harm(text):
    ctx = {"risk": "high", "topic": "school_violence"}
    u = understand(text, "self_harm", 0.31, context=ctx)
    assert u.topic == "school_violence" and u.risk == "high" and u.action == "escalate"
    # with words of self-harm it is self-harm, whatever the conversation was about
    u = understand("mai đi học chắc em tự tử luôn", "self_harm", 0.9, context=ctx)
    assert u.topic == "self_harm" and u.risk == "imminent"


@pytest.mark.parametrize("text", both(["tôi phải báo ở đâu"]))
def test_a_guess_below_the_fallback_continues_the_disclosure_instead_of_the_fallback(text):
    ctx = {"risk": "high", "topic": "child_abuse"}
    u = understand(text, "deny", 0.45, context=ctx, guess=True)
    assert u.intent == "disclose_child_abuse" and u.risk == "medium" and "context:continues" in u.reasons
    # a sure "no" is still an answer, and with nothing disclosed a guess stays a guess
    assert understand(text, "deny", 0.45, guess=True).risk == "none"
