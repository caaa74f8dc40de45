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


LETTER_CALM_LONG = ("Chào anh chị. Tôi là điều phối viên một nhóm cộng đồng ở Sơn Trà, chúng tôi đang làm một trang thông tin "
                    "cho người mới đến thành phố. Xin hỏi nếu gặp chuyện khẩn cấp thì nên gọi số nào, có ai nghe máy bằng "
                    "tiếng Anh không. Tổng đài của các anh chị có miễn phí khi gọi bằng điện thoại di động không. "
                    "Chúng tôi muốn đăng thông tin cho đúng. Cảm ơn anh chị rất nhiều.")


def _parts(text, *readings):
    """The sentence model's readings, one per sentence (``None`` where it is unsure)."""
    out = [None] * len(sentences(text))
    for k, intent, confidence in readings:
        out[k] = {"intent": intent, "confidence": confidence}
    return out


@pytest.mark.parametrize("text", both(LETTER_CALM_LONG))
def test_a_calm_letter_longer_than_the_model_knows_is_read_by_its_sentences(text):
    # the whole-message model, out of its range, says "school violence"; no sentence does
    u = understand(text, "ask_school_violence", 0.99, parts=_parts(text, (2, "ask_hotline", 0.62), (4, "thank", 0.8)))
    assert (u.risk, u.topic, u.intent, u.model_intent) == ("none", "help_contact", "ask_hotline", "ask_school_violence")
    assert "long:sentences_decide" in u.reasons
    # no sentence read with confidence: out of scope, not a guess
    u = understand(text, "ask_school_violence", 0.99, parts=_parts(text))
    assert (u.topic, u.intent) == ("out_of_scope", "out_of_scope")
    # a sentence that backs the whole reading keeps it
    u = understand(text, "ask_hotline", 0.9, parts=_parts(text, (2, "ask_hotline", 0.62)))
    assert (u.topic, u.intent) == ("help_contact", "ask_hotline") and "long:sentences_decide" not in u.reasons
    # a short message is the model's to read
    short = "Xin hỏi gọi số nào khi khẩn cấp? Có ai nói tiếng Anh không?"
    assert understand(short, "ask_school_violence", 0.99, parts=_parts(short, (0, "ask_hotline", 0.7))).topic == "school_violence"


@pytest.mark.parametrize("text", both("Tuần trước anh hất mâm cơm, xô tôi vào cạnh tủ, tay tôi còn vết bầm. "
                                      "Hai đứa nhỏ chứng kiến hết."))
def test_children_who_saw_it_start_their_own_sentence(text):
    a = R.assess(text, strict_child=True, summary=False)
    assert a.risk != "none" and a.topic == "domestic_violence"
    hurt = R.assess("Tuần trước anh xô tôi vào tủ rồi đánh hai đứa nhỏ." if text[1] == "u" else
                    plain("Tuần trước anh xô tôi vào tủ rồi đánh hai đứa nhỏ."), strict_child=True, summary=False)
    assert (hurt.risk, hurt.topic) == ("high", "child_abuse")


def _plus(text, sentence):
    """``text`` with one more sentence, written as ``text`` is (with or without diacritics)."""
    return text + (sentence if text != plain(text) else plain(sentence))


VOLUNTEER = ("Chào anh chị. Em là sinh viên năm hai ngành điều dưỡng, đang làm tình nguyện viên cho một câu lạc bộ sức khỏe "
             "sinh sản ở Tam Kỳ. Tuần sau câu lạc bộ có buổi nói chuyện về cách xử lý khi bị xâm hại, em được giao phần hỏi đáp. "
             "Các bạn thường hỏi: khám sau xâm hại có được giữ bí mật không, và người dưới mười sáu tuổi có cần cha mẹ đi cùng không. "
             "Em muốn trả lời cho đúng nên xin anh chị giải thích giúp em. Em cảm ơn anh chị nhiều.")


@pytest.mark.parametrize("text", both(VOLUNTEER))
def test_a_long_letter_by_someone_preparing_a_talk_is_information_whatever_the_tense(text):
    # "đang làm tình nguyện viên" is the verb's aspect, not danger now
    assert R.assess_long(text, sentences(text)).risk == "none"
    # a particular person in such a letter is still heard
    told = _plus(text, " Nhưng thật ra chính em cũng đang bị bạn trai ép quan hệ, em sợ lắm.")
    assert R.assess_long(told, sentences(told)).risk in ("high", "imminent")


@pytest.mark.parametrize("text, risk", [
    ("Bạn trai cũ gửi mấy tấm ảnh nhạy cảm của tôi cho đồng nghiệp của tôi.", "medium"),
    ("Người yêu cũ giữ mấy tấm ảnh nhạy cảm của tôi, đòi 5 triệu không thì gửi cho chồng tôi.", "high"),
    ("Em 14 tuổi, có người lừa em gửi mấy tấm ảnh nhạy cảm.", "high"),
])
def test_sexual_pictures_are_online_violence(text, risk):
    for t in both(text):
        a = R.assess(t)
        assert (a.risk, a.topic) == (risk, "online_violence"), t


JUST_ASKING = ("Chào ad, mình hỏi để biết thôi chứ không có chuyện gì. Mình nghe nói tổng đài 111 bây giờ nhận cả tin báo "
               "mua bán người, kể cả người lớn. Vậy người lớn bị lừa sang Campuchia thì gia đình gọi 111 được không hay phải "
               "gọi 113. Gọi có mất tiền không, ban đêm có người nghe không. Nhắn tin vào đây thì có được tính là báo tin chính "
               "thức không hay chỉ là tư vấn. Mình cảm ơn ad.")


@pytest.mark.parametrize("text", both(JUST_ASKING))
def test_a_long_letter_that_says_it_only_asks_is_information(text):
    assert R.assess_long(text, sentences(text)).risk == "none"
    # unless a sentence tells of someone in particular
    told = _plus(text, " Mà thật ra em gái mình đang bị giữ bên đó, họ đòi tiền chuộc.")
    assert R.assess_long(told, sentences(told)).risk in ("high", "imminent")


@pytest.mark.parametrize("text, topic", [
    # the writer's own age: a girl of 17 married off at 16 and beaten
    ("Em chào anh chị. Em 17 tuổi, ở Nam Trà My. Năm ngoái ba mẹ cho em về ở với nhà anh Y. "
     "Anh Y uống rượu xong hay đánh em, nói em lười. Tuần trước anh đạp vô lưng em, em đau không ngủ được.", "child_abuse"),
    # "con bé" for a sister of twenty is a fond name, not a child
    ("Em gái tôi hai mươi tuổi, bị khiếm thính. Tuần trước con bé ở nhà một mình. "
     "Một người đàn ông hàng xóm đã vào nhà và hiếp em. Tôi muốn tố cáo thì làm thế nào.", "sexual_violence"),
    # "hơn em sáu tuổi" is a difference of ages
    ("Em là nam, 28 tuổi. Em sống chung với bạn trai, anh ấy hơn em sáu tuổi. "
     "Mỗi lần ghen anh ấy đánh em, tuần trước em bị rách môi.", "domestic_violence"),
])
def test_whose_age_a_letter_gives(text, topic):
    for t in both(text):
        a = R.assess_long(t, sentences(t))
        assert a.risk in ("high", "imminent") and a.topic == topic, (t, a.risk, a.topic, a.reasons)


@pytest.mark.parametrize("text, risk, topic", [
    ("Em gái tôi mới 15 tuổi mà bị cha mẹ ép gả cho một người ở xã bên, tháng sau là làm đám rồi", "high",
     "forced_marriage_trafficking"),
    ("Cho em hỏi bạn em 14 tuổi bị một người lạ gạ chat sex trên mạng thì gọi số nào ạ?", "high", "child_abuse"),
    ("Tôi bị sếp gạ quan hệ để được ký hợp đồng", "medium", "sexual_harassment"),
    ("năm ngoái tôi từng tự tử 1 lần, dạo này lại thấy giống y như hồi đó", "imminent", "self_harm"),
    ("xâm hại tình dục trẻ em dưới 13 tuổi bị xử bao nhiêu năm", "none", None),
])
def test_set_g_patterns(text, risk, topic):
    for t in both(text):
        a = R.assess(t)
        assert (a.risk, a.topic) == (risk, topic), (t, a.reasons)


@pytest.mark.parametrize("text, risk", [
    ("He just pushed me down the stairs, I think my arm is broken and he's still in the house", "imminent"),
    ("He's still at home, can I come back tomorrow for my things?", "none"),
    ("I'm on the Dragon Bridge right now and I don't see a reason to go home", "imminent"),
    ("tired of everything. just want it all to stop", "imminent"),
    ("is there any point in going to the police?", "none"),
])
def test_english_hurt_still_there_and_no_reason_left(text, risk):
    assert R.assess(text).risk == risk


@pytest.mark.parametrize("text, risk", [
    ("e bi ck danh hoai, hom qua ngat ca may phut", "high"),                      # fainted for minutes
    ("Tối qua cãi nhau, ảnh đạp em một cái ngay bụng", "high"),                   # a kick to the belly
    ("Lại như lần trước, mà lần ni nặng hơn, ảnh nắm tóc đập đầu em vô tường", "high"),
    ("Đầu em choáng, ói hai lần rồi", "high"),                                    # signs of concussion
    ("em 15 tuổi. bố mẹ em nói tháng sau em lấy chồng, người làng bên", "high"),  # a child to be married
    ("đau bụng quá, chóng mặt buồn nôn", "none"),                                 # illness
    ("thai đạp bụng nhiều quá, có sao không", "none"),                            # a baby's kicks
])
def test_signs_of_serious_harm(text, risk):
    for t in both(text):
        assert R.assess(t).risk == risk, t


def test_classmates_who_injure_a_pupil_keep_the_subject_school_and_a_wound_still_swollen_is_not_now():
    a = R.assess("mấy bạn cùng lớp đập đầu em vào tường nhà vệ sinh, em bị rách trán")
    assert (a.risk, a.topic) == ("high", "school_violence")
    b = R.assess("tuần trước ổng xô em té đập đầu vô cạnh bàn, chừ còn sưng một cục")
    assert (b.risk, b.topic) == ("high", "domestic_violence")


@pytest.mark.parametrize("text, risk", [
    ("Giờ em thấy ra máu với bụng cứ gò lên đau", "imminent"),           # bleeding from the womb now
    ("tuần trước ổng đạp bụng, giờ em ra máu", "imminent"),
    ("hồi đó em bị đạp bụng ra máu, giờ ổn rồi", "high"),                 # told of the past
    ("mấy giờ thì bệnh viện mở, bụng em ra máu hôm qua", "high"),         # "giờ" the hour
    ("giờ em đau bụng ra máu kinh nhiều quá", "none"),                    # a period, not a wound
])
def test_bleeding_from_the_belly_now_is_an_emergency(text, risk):
    for t in both(text):
        assert R.assess(t).risk == risk, t
