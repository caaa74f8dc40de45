"""Long messages read as a whole and sentence by sentence (bot/nlu/segments.py, risk.assess_long,
bot/understanding.py), and English danger words. Rules only (no model): these letters were
written for these tests."""
import pytest

from bot.nlu import risk as R
from bot.nlu.language import is_english, language
from bot.nlu.segments import sentences
from bot.scoring import plain
from bot.understanding import understand

LETTER_DV = ("Dạ em chào chị. Em lấy chồng được sáu năm, có hai đứa nhỏ. Chồng em làm thợ hồ, tiền lương ổng giữ hết, "
             "em xin tiền đi chợ cũng bị chửi. Mấy lần say rượu ổng xô em ngã vào tường. "
             "Em có nên ly hôn không, nếu ly hôn thì em có được nuôi con không ạ?")
LETTER_DANGER_IN_MIDDLE = ("Chào anh chị. Nhà em ở quê, buôn bán nhỏ. Mẹ chồng em khó tính lắm, chuyện tiền nong cũng nhiều. "
                           "Tối qua chồng em cầm dao dí vào cổ em nói sẽ giết cả nhà. Em không biết hỏi ai, "
                           "em muốn hỏi thủ tục làm giấy khai sinh cho con ở phường mới thì làm ở đâu.")
LETTER_TEACHER = ("Thưa tổng đài, tôi là giáo viên chủ nhiệm lớp 7. Tuần sau trường tổ chức buổi sinh hoạt chuyên đề "
                  "về phòng chống bạo lực học đường. Tôi muốn hỏi nên nói với các em thế nào khi bạn bè đánh nhau, "
                  "bị bắt nạt, bị quay clip đăng lên mạng. Có tài liệu nào phù hợp với học sinh không ạ?")
LETTER_DESPAIR_LINE = ("Em viết dài, mong chị đọc. Chồng em hay chửi em là đồ vô dụng, không cho em về nhà mẹ đẻ. "
                       "Em đi làm về là phải nấu nướng, giặt giũ, ổng chỉ ngồi bấm điện thoại. "
                       "Nhiều đêm em nghĩ hay là chết đi cho xong. Em phải làm sao ạ?")


def both(text):
    return [text, plain(text)]


def test_sentences_keep_short_pieces_with_their_neighbours():
    assert sentences("Dạ. Em chào chị. Chồng em đánh em.") == ["Dạ. Em chào chị.", "Chồng em đánh em."]
    assert sentences("toi met moi qua\nhom qua no danh toi") == ["toi met moi qua", "hom qua no danh toi"]
    assert sentences("") == [] and sentences("một câu thôi") == ["một câu thôi"]


@pytest.mark.parametrize("text", both(LETTER_DV))
def test_a_letter_that_tells_of_violence_and_asks_about_custody_keeps_both(text):
    u = understand(text, "ask_divorce_custody", 0.9)
    assert u.risk != "none" and u.topic == "domestic_violence"
    assert u.intent == "disclose_dv" and u.question == "ask_divorce_custody"


@pytest.mark.parametrize("text", both(LETTER_DANGER_IN_MIDDLE))
def test_one_line_of_danger_in_a_long_letter_is_enough(text):
    u = understand(text, "ask_legal_aid", 0.8)
    assert u.risk in ("high", "imminent") and u.action == "escalate"


@pytest.mark.parametrize("text", both(LETTER_TEACHER))
def test_a_teacher_preparing_a_lesson_is_asking_for_information(text):
    assert understand(text, "ask_school_violence", 0.9).risk == "none"


@pytest.mark.parametrize("text", both(LETTER_DESPAIR_LINE))
def test_a_line_of_despair_inside_a_story_of_abuse_escalates(text):
    u = understand(text, "disclose_dv", 0.9)
    assert u.risk == "imminent" and u.topic in ("self_harm", "domestic_violence")


def test_a_now_word_far_from_a_past_threat_is_not_danger_now():
    """In a long letter (over SHORT_WHOLE characters) a threat told as past and a "đang" about
    work, sentences apart, are not one event: high, not imminent."""
    text = ("Năm ngoái chồng cũ dọa giết em. Giờ em đã chuyển về nhà mẹ ở quê, mẹ em già rồi nhưng vẫn khỏe, "
            "nhà có mảnh vườn nhỏ trồng rau. Em đang đi làm công nhân may ở Tam Kỳ, lương cũng đủ sống, "
            "con em đang học lớp 2 ở trường gần nhà, cô giáo rất thương cháu. Cuộc sống tạm ổn rồi chị ạ. "
            "Em muốn hỏi thủ tục đổi họ cho con thì làm ở đâu, cần giấy tờ gì, có mất phí không, "
            "và có phải xin chữ ký của bố cháu không, vì em không muốn gặp lại anh ta nữa.")
    assert len(text) > R.SHORT_WHOLE
    assert R.assess_long(text, sentences(text)).risk == "high"


def test_the_sentence_model_alone_makes_a_disclosure_at_least_medium():
    parts = [{"intent": "greet", "confidence": 0.9}, {"intent": "disclose_dv", "confidence": 0.8},
             {"intent": "ask_legal_aid", "confidence": 0.7}]
    u = understand("Chào chị nha. Nhà em lúc nào cũng căng thẳng lắm luôn. Cho em hỏi về trợ giúp pháp lý với.",
                   "ask_legal_aid", 0.8, parts=parts)
    assert u.risk == "medium" and u.topic == "domestic_violence" and u.question == "ask_legal_aid"


def test_an_essay_request_read_as_danger_by_the_model_is_information():
    u = understand("cho em xin số liệu thống kê về bạo lực gia đình để viết bài luận", "emergency_danger", 0.7)
    assert u.risk == "none" and u.intent == "ask_dv_info"


def test_imminent_from_the_model_alone_below_the_threshold_is_still_escalated():
    from bot.understanding import IMMINENT_MIN_CONFIDENCE, URGENT_BASE_MIN_CONFIDENCE

    below = (URGENT_BASE_MIN_CONFIDENCE + IMMINENT_MIN_CONFIDENCE) / 2
    u = understand("em không biết phải làm sao nữa", "emergency_danger", below)
    assert u.risk == "high" and u.action == "escalate"
    assert understand("em không biết phải làm sao nữa", "emergency_danger", IMMINENT_MIN_CONFIDENCE).risk == "imminent"


@pytest.mark.parametrize("text, level", [
    ("He is coming with a knife, help me", "imminent"), ("I want to die tonight", "imminent"),
    ("my husband hits me and takes my salary", "medium"), ("I was raped at a party last weekend", "high"),
    ("someone has my private photos and wants money or he'll send them to my husband", "high"),
    ("the agency took my passport and I can't leave the factory", "high"),
    ("my friend's daughter is 17 and her parents are marrying her to a 40 year old man", "high"),
    ("He locked me and the baby in the apartment", "imminent"),
    ("help me find a lawyer for my divorce", "none"), ("I'm writing an essay on domestic violence statistics", "none"),
    ("the movie had a scene where he kills her with a knife", "none")])
def test_english_danger_words(text, level):
    assert R.assess(text).risk == level


def test_language():
    assert is_english("hello, I need help, my husband hits me") and language("where can I go in Da Nang") == "en"
    assert language("chong em danh em") == "vi" and language("ok") is None
    assert not is_english("em bi chong danh, help me")


@pytest.mark.parametrize("text", both("Chồng em vừa đuổi hai mẹ con ra khỏi nhà, khóa cổng, ném theo cái túi đồ."))
def test_just_thrown_out_of_the_house_is_high(text):
    assert R.assess(text).risk in ("high", "imminent")


def test_when_the_rules_only_see_that_someone_is_hurt_the_sentences_name_the_subject():
    text = ("Em là học sinh lớp 9, năm nay 14 tuổi. Mấy bạn trong lớp lập nhóm chat không có em. "
            "Tụi nó lấy hình em ghép vào mặt con vật rồi gửi cả lớp. Hôm qua tụi nó còn xô em ngã ở hành lang. "
            "Em không dám đi học nữa, em phải làm sao ạ?")
    parts = [{"intent": "inform_self", "confidence": 0.9}, {"intent": "disclose_school_violence", "confidence": 0.8},
             {"intent": "disclose_online_violence", "confidence": 0.7}, {"intent": "disclose_school_violence", "confidence": 0.8},
             {"intent": "ask_school_violence", "confidence": 0.6}]
    u = understand(text, "disclose_dv", 0.6, parts=parts)
    assert u.risk != "none" and u.topic == "school_violence", u


def test_a_writer_in_english_who_researches_the_subject_is_not_a_disclosure():
    from bot.nlu.risk import assess_long
    text = ("Hello, I'm a freelance journalist working on a feature about women trafficked across the border. "
            "Many of them had their passports taken and were beaten. Could you share statistics on cases? "
            "Thank you for your time.")
    assert assess_long(text, sentences(text)).risk == "none"
    text = ("Hello, I'm an English teacher in Da Nang. One of my students is 11. She has bruises on her arms "
            "and says her father beats her. What should I do?")
    assert assess_long(text, sentences(text)).risk in ("medium", "high")
