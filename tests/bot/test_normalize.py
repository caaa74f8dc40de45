import unicodedata

import pytest

from bot.nlu.normalize import clean, fold, normalize, strip_diacritics, tokenize


@pytest.mark.parametrize("raw, expected", [
    ("Chồng em đánh em", "chong em danh em"),
    ("chong em danh em", "chong em danh em"),
    ("CHỒNG EM ĐÁNH EM!!!", "chong em danh em"),
    ("ck e dj nhau r", "chong em di nhau roi"),
    ("đc ko e", "duoc khong em"),
    ("hắn đánh tui, chừ răng", "no danh toi bay gio rang"),  # "răng" stays: it is also "teeth"
    ("mô rứa", "dau vay"),
    ("đánh răng", "danh rang"),
    ("Hội An ạ", "hoi an a"),            # "ạ" is a particle, not the teencode "a" = anh
    ("ĐĂNG KÝ", "dang ky"),
    ("DK", "dk"),                        # the subscribe keyword is not expanded to "được"
    ("ảnh riêng tư", "anh rieng tu"),   # "ảnh" (photo) is not the dialect "anh ấy"
])
def test_normalize_table(raw, expected):
    assert normalize(raw) == expected


def test_nfd_input_equals_nfc():
    nfd = unicodedata.normalize("NFD", "Tôi bị đánh ở Điện Bàn")
    assert nfd != "Tôi bị đánh ở Điện Bàn"
    assert normalize(nfd) == normalize("Tôi bị đánh ở Điện Bàn") == "toi bi danh o dien ban"


def test_d_with_stroke_is_folded():
    # U+0111 has no canonical decomposition: NFD alone would keep it
    assert unicodedata.normalize("NFD", "đ") == "đ"
    assert fold("Đà Nẵng đó") == "da nang do"
    assert strip_diacritics("Đ") == "D"


def test_invisible_and_control_characters_removed():
    assert clean("em\u200b bị\u200d đánh\ufeff\x00 ") == "em bị đánh"


def test_broken_utf8_surrogates_do_not_raise():
    assert normalize("em \ud800 bị đánh") == "em bi danh"


def test_emoji_and_punctuation_separate_tokens():
    assert normalize("cứu😭😭em!!!") == "cuu em"


def test_empty_and_whitespace():
    assert normalize("") == ""
    assert normalize("   \n\t ") == ""
    assert tokenize("") == []


def test_token_offsets_point_into_cleaned_text():
    text = clean("Chồng ck đánh")
    toks = tokenize(text)
    assert [t.text for t in toks] == ["chong", "chong", "danh"]
    assert text[toks[1].start:toks[1].end] == "ck"


def test_long_message_is_handled():
    text = "chồng em đánh em " * 2000
    assert normalize(text).startswith("chong em danh em")


@pytest.mark.parametrize("text, intent", [
    ("STOP", "unsubscribe"), ("Hủy", "unsubscribe"), ("HUY!", "unsubscribe"), ("tu choi", "unsubscribe"),
    ("DK", "subscribe"), ("ĐĂNG KÝ", "subscribe"), ("dang ky", "subscribe"),
    ("XOA", "delete_data"), ("Xóa dữ liệu", "delete_data"), ("xoá", "delete_data"),
    ("hủy vé xe khách giúp tôi", None), ("stop lại đi anh ơi em sợ", None),
])
def test_service_keywords(text, intent):
    from bot.nlu.commands import command_for
    assert command_for(text) == intent
