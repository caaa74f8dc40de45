"""Deterministic risk rules: the safety net under the statistical model.

The NLU model gives each message an intent, and the intent a base risk (``bot.intents``). These
rules read the normalised text (``bot.nlu.normalize``) and can only *raise* that risk, never lower
it: a missed ``high``/``imminent`` message is the worst error this system can make, while a false
alarm costs a counsellor a minute. The same function runs inside the Rasa pipeline, in the gateway
when Rasa is down, and in ``helpline classify``, so a message gets the same risk everywhere.

How a rule decides, in words:

* **Strong cues** fire on their own: a cry for help ("cứu em"), violence happening now ("đang bị
  đánh"), suicidal words ("không thiết sống", "muốn tự tử").
* **Anchored cues** need a real person in the sentence (a pronoun or a family word: "tôi", "em",
  "con tôi", "chồng", "nó"). "Hiếp dâm bị phạt mấy năm?" has no person and stays calm; "em bị
  hiếp" does not.
* **Compounds that are not violence** are excluded where the cue is built ("đánh giá", "đánh
  răng", "giết thời gian", "chết cười", "Hiệp Đức"), and a message about an animal, a film, a
  game or a match does not raise risk through anchored cues.
* **Now** words ("đang", "bây giờ", "tối nay") turn a threat or an attack into ``imminent``.
"""
from __future__ import annotations

import re
import sre_constants as _sre_constants   # the pattern parser of the standard library (Python 3.10)
import sre_parse as _sre_parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property

from bot.intents import SALIENCE as _SALIENCE
from bot.intents import max_risk, risk_rank
from bot.nlu.language import is_english
from bot.nlu.normalize import clean, fold, normalize, tidy


def _alt(*words: str) -> str:
    return "(?:" + "|".join(sorted(words, key=len, reverse=True)) + ")"


# --- vocabulary (folded, teencode-expanded forms) -------------------------------------------
SELF = _alt("toi", "em", "tui", "minh", "tao", "to", "con", "chau", "tk", "bon toi", "chung toi")
# Folded words that are also common non-family words are left out or need a second word:
# "có" = "cô", "đi" = "dì", "đường" = "dượng", "thấy" = "thầy", "bỏ" = "bố", "câu" = "cậu".
FAMILY = _alt(
    "chong", "vo", "ba", "cha", "me", "me ke", "bo duong", "ba duong", "anh ho", "chi ho",
    "ong noi", "ong ngoai", "ba noi", "ba ngoai", "me chong", "bo chong", "anh trai", "em trai",
    "chi gai", "em gai", "con trai", "con gai", "con dau", "con re", "nguoi yeu", "ban trai", "chong cu",
    "vo cu", "sep", "quan doc", "to truong", "thay giao", "thay day", "co giao", "hang xom", "nguoi la",
    "chu ruot", "bac ruot", "cau ruot", "di ruot", "bo toi", "bo em", "bo minh", "bo tui", "bo no",
    "ong chu", "ba chu", "dong nghiep", "ban cung lop", "chu bao ve",
)
# "ong" is "ông"/"ổng" (he, in Quảng Nam) written without accents, as SMS is: a person, once the
# generic "đàn ông" (men) is masked.
THIRD = _alt("no", "han", "ong", "ong ay", "ba ay", "anh ay", "chi ay", "anh ta", "ong ta", "ba ta", "chi ta", "co ta", "thang do", "thang kia",
             "ga do", "ke do", "may dua", "tui no", "bon no", "chung no")
ANCHOR = re.compile(rf"\b(?:{SELF}|{FAMILY}|{THIRD})\b")
# Generic nouns that contain anchor words ("trẻ em", "người ta") are masked before the search.
GENERIC = re.compile(r"\b(?:tre em|nguoi ta|phu nu|dan ong|hoc sinh|nguoi dan|con nguoi|moi nguoi|ai do|ban be|nan nhan"
                     r"|nguoi bi|mot nguoi|con cai|tre nho|phong chong|phong tranh|cho em hoi|cho toi hoi|cho minh hoi|cho tui hoi|cho chau hoi|cho con hoi)\b")
# Vietnamese drops the subject: a message (or, after a greeting, a clause) that opens with "bị"
# is about the writer.
START_PASSIVE = re.compile(r"^(?:(?:da|vua|moi|lai|tung|cu|hay|thuong|suyt|hom qua|toi qua|hom nay) )*bi\b")
# A particular child: an age under 18, a school grade, "bé", "đứa nhỏ". "con tôi" alone may be a
# grown son, so it counts as a child only as the one who is hurt ("con tôi bị …", "đánh con tôi").
_AGE = r"(?:[1-9]|1[0-7])"
CHILD_STRONG = re.compile(
    r"\b(?:be (?:gai|trai|nha)|dua (?:be|nho|tre)|con be|thang be|co be|cau be|em be|be nho|con nho|chau nho|may dua nho"
    rf"|(?:em|con|chau|be|no|nguoi) (?:moi|chi|duoc|nam nay|dang|co|ms)? ?{_AGE} (?:tuoi|t)\b|{_AGE} tuoi|{_AGE}t\b"
    r"|hoc lop (?:[1-9]|1[0-2])\b|lop (?:[1-9]|1[0-2])\b|mau giao|mam non|tieu hoc|cap (?:1|2|hai|mot)"
    # a teacher's own pupil: "một học sinh nữ của tôi", "học trò lớp tôi"
    r"|hoc (?:sinh|tro)(?: nam| nu)? (?:cua |lop |trong lop )(?:toi|em|minh|tui|co|thay))\b"   # not "có bệnh"
)
# a pronoun that is not the object of a noun before it ("con em", "bạn em", "em gái em")
# (only nouns that can be a child: "chào chị, em 17 tuổi" folds to "chao chi em 17 tuoi")
_NOT_OF = "".join(f"(?<!{w} )" for w in ("con", "chau", "be", "dua", "ban", "gai", "trai", "vo", "thang", "cau", "cua", "sinh",
                                         "tro", "xom", "hon", "kem", "bang"))   # "hơn em sáu tuổi": a difference
# the writer says they are a child: "em học lớp 9", "con mới 12 tuổi", "e là hs lớp 8"
WRITER_CHILD = re.compile(rf"\b(?:em|minh|tui|toi|e) (?:la (?:hoc sinh|hs)|dang hoc lop|hoc lop|nam nay (?:moi |da )?{_AGE} ?(?:tuoi|t)"
                          rf"|moi (?:co |duoc )?{_AGE} ?(?:tuoi|t)|la (?:hs|hoc sinh) lop)\b"
                          # "em 17 tuổi, …": the writer's own age, not someone's ("con em 7 tuổi", "bạn em 15 tuổi")
                          rf"|{_NOT_OF}\b(?:em|minh|tui|toi) {_AGE} ?(?:tuoi|t)\b")
# a parent names their own child and its age: "con gái tôi 13 tuổi", "cháu em mới 8t"
MY_CHILD_AGED = re.compile(rf"\b(?:con|chau|be|dua nho)(?: gai| trai| ut| lon)? (?:cua )?(?:toi|em|tui|minh)(?: \w+)?(?: moi| nam nay| da)? {_AGE} ?(?:tuoi|t)\b")
# a teacher, and the words that say the pupil is an adult (a university lecturer and a student)
TEACHER = re.compile(r"\b(?:thay (?:giao|chu nhiem|hieu truong|day|the duc|giam thi)|co (?:giao|chu nhiem)|hieu truong|giam thi"
                     r"|huan luyen vien|thay day (?:\w+ )?(?:them|kem))\b")
ADULT_STUDENT = re.compile(r"\b(?:sinh vien|dai hoc|cao dang|giang vien|truong nghe|thac si|nghien cuu sinh)\b")
CHILD_WEAK = re.compile(r"\b(?:con (?:toi|em|minh|tui|gai|trai|ruot|rieng)|chau (?:toi|em|minh|tui|gai|trai|noi|ngoai))\b")
CHILD = re.compile(f"(?:{CHILD_STRONG.pattern}|{CHILD_WEAK.pattern})")
PEER = re.compile(r"\b(?:ban cung lop|ban hoc|ban lop|lop ben|hoi dong|bat nat|ban cung truong|dan chi|dan anh|tui ban|may ban|dam ban"
                  r"|ban trong lop|ban trong truong|nhom chat lop|hanh lang|nha ve sinh (?:truong|nam|nu)|san truong|gio ra choi)\b")
# "con bò" folds like "con bỏ", "con cá" like "con cả": only unambiguous animals, and only as the
# subject just before the violent word ("con mèo nhà tôi bị đánh ghen")
ANIMAL = re.compile(r"\b(?:con (?:meo|cho|ga|heo|lon|vit|trau|chuot|khi|cun|ngua|chim)|meo nha|cun|thu cung|gia suc|chuong bo|dan ga)\b")
MEDIA = re.compile(
    r"\b(?:phim|game|tro choi|truyen|tieu thuyet|bai hat|nhan vat|tran dau|bong da|tran bong|doi tuyen"
    r"|lien quan|pubg|free fire|clip hai|video hai|ti so|hang thu|hang cong|thu mon|tien dao|hiep mot|hiep hai|thua \d|thang \d|dien vien|ca si|sach|lich su|chien tranh|tin tuc|thoi su"
    r"|bo phim|tap phim|hoat hinh|anime|manga|kich ban|vo thuat|hoc vo|boxing|quyen anh|vo si"
    # hearsay and the news: what "people" suffer in general, not a particular person
    r"|tren bao|bao dai|doc bao|tren tivi|tren ti vi|tren truyen hinh|tren mang (?:xa hoi )?(?:noi|dua tin|hay noi)|nghe noi|nghe nguoi ta noi)\b"
)
NEGATION = re.compile(r"\b(?:khong|chua|chang|khong he|chua he|khong co ai|dau co)\s+(?:\w+\s+){0,1}$")
INFO_START = re.compile(r"^(?:\w+ ){0,2}(?:neu|gia su|truong hop|khi|theo luat|luat|phap luat|nguoi|mot nguoi|ai)\b")
INFO_WORDS = re.compile(
    r"\b(?:bi phat|phat bao nhieu|xu phat|xu ly|bao nhieu nam|may nam|an tu|toi gi|co phai|la gi"
    r"|nhu the nao|the nao|quy dinh|luat|dieu|nghi dinh|co bi|co duoc|trach nhiem)\b"
)
# Phrases of someone asking *about* a subject (a school project, prevention, signs) rather than
# telling what happens to them.
INFO_STRONG = re.compile(
    r"\b(?:phong tranh|nhan biet|dau hieu|cach phong|thuyet trinh|bai tap|nghien cuu|tim hieu"
    r"|tuyen truyen|luan van|khao sat|noi chung|thong ke|giao duc gioi tinh|day con|day tre|bao ve con"
    r"|kham cho nan nhan|nan nhan bi|cho nan nhan|doi voi nan nhan|luan van|tieu luan|nghi luan|phan tich|du an"
    r"|so lieu|thong ke|canh bao|y nghia|bai van|de tai|de phong|phong ngua|quy tac|ti le|ty le|nguy co|nguyen nhan|yeu to"
    r"|suc khoe cong dong|chuong trinh|giao duc|xep hang|bao cao|khac nhau|dieu nao|bo luat|hieu ung|bai luan|tai lieu"
    r"|tinh nguyen vien|nguyen tac|ngay the gioi|phong chong|cam nhan|nhan vat|tac pham|van hoc|neu co nguoi|mot nguoi"
    r"|nguoi co y dinh|nguoi co nguy co|ai do co|bao chi|dua tin|giang day|giang ve|bai giang|tiet hoc|day (?:tui nho|hoc sinh|cac em|tre|be|cac con)"
    # "just asking, nothing happened": the writer says the question is not about them
    r"|hoi de biet|hoi cho biet|chi hoi thoi|hoi thoi chu|khong co chuyen gi|khong phai chuyen cua (?:toi|em|minh|tui))\b")
VICTIM_SAYS = re.compile(r"\b(?:toi|em|tui|minh|tao|con toi|con em|con tui|chau toi|chau em|vo toi|me toi|chi toi)"
                         r"(?! (?:hiep|giet|xam|buon|cuong|lam dung|dam o|bao luc))(?: \w+){0,2} "
                         r"(?<!chuan )(?<!thiet )(?<!trang )(?<!du )(?<!phong )bi\b(?! (?:mat|quyet|kip|an|quan))")
# the writer's own intention: overrides "this looks like a school project"
SELF_INTENT = re.compile(r"\b(?:toi|em|tui(?! (?:no|nho|ban|may|tre))|minh|tao|con)(?: \w+){0,2} (?:muon|dinh|se|nghi|tinh|quyet dinh|chi muon|cung muon)\b"
                         r"(?! (?:hoi|biet|tim hieu|xin|nho|duoc tu van|chia se|gop y|lam ro|hoi them|hoi ro|tham khao|to chuc|chuan bi|viet|trinh bay|noi chuyen|moi))")
# A writer who says who they are and what they are preparing (a commune officer's talk, a
# teacher's lesson, a student's essay, a journalist's article): a letter about the subject, unless
# a sentence tells of a particular person hurt.
ROLE_FRAME = re.compile(
    r"\b(?:toi|em|minh|tui|chung toi|chung em|nhom (?:toi|em|minh))(?: \w+){0,2} (?:la|lam|dang la|dang lam|duoc phan cong lam|phu trach)"
    r" (?:\w+ ){0,3}(?:cong chuc|can bo|giao vien|co giao|thay giao|giang vien|sinh vien|hoc sinh|tinh nguyen vien|phong vien|nha bao"
    r"|chi hoi truong|hoi truong|bi thu|truong thon|to truong|cong tac vien|nghien cuu|y ta|dieu duong|bac si|dieu phoi|ke toan|chu nhiem"
    r"|thanh vien|hoi vien|truong ban|doan vien|can su|nhan vien xa hoi|luat su|hieu truong)\b")
TASK = re.compile(r"\b(?:tieu luan|thuyet trinh|buoi noi chuyen|buoi sinh hoat|sinh hoat chuyen de|tuyen truyen|so tay|chuyen de|tap huan"
                  r"|khao sat|de tai|hoi thao|bai viet|bai bao|bai giang|tiet hoc|bai thuyet trinh|chuong trinh|tai lieu|to roi|cau lac bo)\b")
# someone tells what a particular person close to them said or did: real, not a school project
FRIEND_REPORT = re.compile(r"\b(?:ban|chi|anh|em|con|me|bo|ba|ban than|nguoi yeu) (?:toi|em|tui|minh|than|cua em|cua toi)"
                           r"(?: \w+){0,3} (?:nhan|noi|tam su|bao|ke|viet|dang)\b")
PENALTY_Q = re.compile(r"\b(?:bi phat|phat tu|bao nhieu nam|may nam tu|an tu|xu phat|muc phat|phat bao nhieu|bi xu ly|toi gi|khung hinh phat)\b")
NOW = re.compile(r"\b(?:dang|van dang|lai dang|bay gio|luc nay|ngay luc nay|toi nay|dem nay|ngay bay gio|hien gio|chu)\b")

# "đánh" that is not violence: đánh giá (assess), đánh răng (teeth), đánh máy (type), đánh rơi
# (drop), đánh mất (lose), đánh lừa (deceive), đánh bài (cards), đánh cá (fish), ...
_DANH_NOT = _alt(
    "gia", "rang", "may", "bai", "co", "cau", "cau long", "bong", "thuc", "dau", "son", "van", "trong",
    "dan", "golf", "tennis", "so", "lua", "bac", "de", "lo", "ca(?! (?:nha|lo|gia dinh|hai|me|con|vo|chong|ba|bo|tui|bon|ngay|dem))",
    "bat (?:ca|tom|muc|hai san|thuy san|ca)", "roi", "mat", "giac", "thue",
    "hoi", "tieng", "bay", "phan", "chu", "ghen tren phim", "ban phim", "cuoc", "truot", "chan dung",
    "trung", "kem", "bot", "nhip", "tennis", "bong ban", "dau hieu", "thuc day", "dong", "bai bac",
    "bai tien len", "vong", "lui", "bai", "pha", "xe", "net", "que", "diem",
)
DANH = rf"danh(?! {_DANH_NOT}\b)"
# Folded syllables are ambiguous ("da" = đã/đá/da, "tat" = tát/tắt, "can" = cắn/cần), so short
# verbs only count with an object or a particle after them.
_OBJ = "(?:vao|toi|em|tui|minh|con|vo|me|chau|be|chi|nguoi|mat|dau|bung|nguc|lung|ngay|lien tuc|chet)"
VIOLENCE = (rf"(?:{DANH}|dap(?! (?:xe|chan|lua|de|ung|an))|da {_OBJ}|dam {_OBJ}|tat {_OBJ}|xo day|xo nga|xo {_OBJ} nga|nem (?:do|ghe|chen|bat|dia|coc|{_OBJ})"
            rf"|bi (?:\w+ )?(?:tat|da|dam|can|cao|dap)\b|bop co|chem|cao {_OBJ}|can {_OBJ}|hanh hung|bao hanh|bao luc|dap pha|tat tai|uynh|dam bung|dot (?:nha|nguoi|do)"
            rf"|troi (?:tay|chan|lai)|nhot(?! (?:cho|ga|meo|heo|lon|vit|bo|trau|chim|cun)\b)|bi giam|bat coc|cuong buc|quang (?:do|noi|chen|bat|ghe)|dap do"
            rf"|vet bam|bam tim|tim bam|bam (?:het|khap|day) (?:nguoi|tay|chan|lung|mat))")
KILL_NOT = _alt("thoi gian", "ruoi", "muoi", "gian", "chuot", "ga", "heo", "lon", "vit", "bo", "ca(?! (?:nha|gia dinh|lo|me|con|hai|ba))",
                "con ga", "con heo", "con lon", "con vit", "con ca", "con gian", "con chuot", "con muoi",
                "con ruoi", "thi gio", "sau", "boss", "quai", "zombie")
KILL = rf"(?:giet|giet chet|chem chet|dam chet|danh chet|bop chet|giet(?! {KILL_NOT}\b))"
HIEP = r"(?:hiep dam|cuong hiep|hiep(?! (?:duc|hoi(?! (?:tuan|thang|nam|hom|truoc|nho|do|xua|sang|chieu|toi|dem|qua|ay))|dinh|si|mot|hai|ba|1|2|3|phu|luc|uoc|tac|thuong|khach|nu|dau|nghi|hoa|phuoc|hanh)\b))"


@dataclass(frozen=True)
class Cue:
    name: str
    level: str
    topic: str
    pattern: re.Pattern
    anchored: bool = True     # needs a person in the message
    negatable: bool = True    # "không bị đánh" does not count
    # the same pattern with "^" and "$" at every line: the clauses of a message, joined by "\n",
    # are read in one pass (no cue matches a line break, so no match spans two clauses)
    lines: re.Pattern | None = None


    # words of which every match contains one (from the pattern itself): a text with none of them
    # is not searched (most sentences of a long letter hold no cue)
    needs: tuple[str, ...] | None = None

    def absent(self, norm: str) -> bool:
        return self.needs is not None and not any(word in norm for word in self.needs)


def _cue(name, level, topic, regex, anchored=True, negatable=True):
    return Cue(name, level, topic, re.compile(regex), anchored, negatable, re.compile(regex, re.M), _needs(regex))


def _needs(regex: str) -> tuple[str, ...] | None:
    """Literal strings one of which every match of ``regex`` contains, read from its parse tree
    (None when some match may contain no literal). A superset test: it never skips a match."""
    found = _required(_sre_parse.parse(regex))
    if not found:
        return None
    return tuple(sorted(w for w in found if not any(o != w and o in w for o in found)))


def _required(items) -> set[str] | None:
    C = _sre_constants
    options, run = [], ""
    for op, av in items:
        if op is C.LITERAL:
            run += chr(av)
            continue
        if op in (C.AT, C.ASSERT, C.ASSERT_NOT):
            continue       # zero-width: the letters on either side are next to each other
        if run:
            options.append({run})
            run = ""
        if op is C.SUBPATTERN:
            found = _required(av[-1])
        elif op is C.BRANCH:
            branches = [_required(b) for b in av[1]]
            found = None if any(not b for b in branches) else set().union(*branches)
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT) and av[0] >= 1:
            found = _required(av[2])
        else:
            found = None
        if found:
            options.append(found)
    if run:
        options.append({run})
    # the most telling option: the longest shortest word, then the fewest words
    return max(options, key=lambda o: (min(map(len, o)), -len(o))) if options else None


CUES: tuple[Cue, ...] = (
    # --- suicide and self-harm: always imminent, never anchored (the writer is the person) ---
    _cue("suicide_words", "imminent", "self_harm",
         r"\b(?:tu sat|tu van minh|tu ket lieu|ket lieu (?:ban than|doi minh|cuoc doi|minh)|tu giet minh"
         r"|muon chet cho xong|chet cho xong|chet quach cho xong|chet di cho roi|chet di cho xong|chet cho roi"
         r"|chet cho nhe|thoi chet cho roi"
         # death as a way out ("chết đi chắc nhẹ nhõm hơn", "thì em chết luôn cho rồi") and pills kept
         # for one night ("để dành mấy vỉ thuốc, tính uống hết một lần")
         r"|chet (?:di|luon|quach|phut)? ?(?:\w+ ){0,2}(?:cho roi|cho xong|chac nhe nhom|cho nhe nhom|cho khoe|la nhe nhom|thi nhe nhom|la het kho|cho het kho)"
         r"|(?:de danh|tich|gom|giau|cat) (?:\w+ ){0,2}(?:(?:vi|lo|hop|vien|bich) thuoc|thuoc (?:ngu|an than|chuot|tru sau|diet co))"
         r"|uong (?:het|ca|mot luc|mot lan) (?:\w+ ){0,3}(?:mot lan|mot luc|cung luc|mot hoi|mot luot|1 lan|cho xong|cho roi|dem nay|toi nay)"
         r"|kill myself|suicide|khong muon song|khong thiet song|chang thiet song"
         r"|khong con thiet song|khong muon song nua|khong thiet tha song|song de lam gi|song lam gi nua|song cung vo nghia"
         r"|song chi cho chat dat|khong con ly do (?:de )?song|khong muon ton tai|ket thuc cuoc (?:doi|song)"
         r"|bien mat mai mai|vinh biet|tu hai|tu lam hai|tu lam dau|rach tay|cat tay|cat co tay|treo co"
         r"|uong (?:thuoc )?(?:ngu|chuot|tru sau|diet co|sau|thuoc sau|diet chuot|tru co|la ngon|bo chuot)|uong het (?:vi|lo|hop) thuoc|nhay (?:cau|song|lau|tu tang)"
         r"|thuoc chuot|di theo (?:ba|me|con) luon|ra di vinh vien|nghi quan|dung tren (?:san thuong|noc nha|mai nha|cau|lan can)"
         r"|tren san thuong|nhay xuong|tuyet menh|ngay cuoi (?:cua|cung cua) (?:em|toi|tui|minh|con)|la ganh nang|ganh nang cho"
         r"|(?:ra|xuong|toi) (?:song|cau|bien) (?:\w+ ){0,3}(?:toi nay|dem nay|bay gio|ngay|luon)|(?:toi nay|dem nay) (?:\w+ ){0,2}(?:ra|xuong) (?:song|cau|bien)"
         r"|bien mat (?:\w+ ){0,3}(?:nhe nhom|nhe no|bot kho)|khong con ai can|tu biet|thu de lai|de lai thu|viet thu (?:de lai|cho (?:ba|me|bo|con|moi nguoi))"
         r"|mua (?:san )?(?:day|thuoc ngu|thuoc chuot|than)|(?:day|thuoc) (?:\w+ )?san (?:roi|het)|chuan bi san (?:day|thuoc)|di mai mai|khong bao gio (?:day|thuc day|tinh day) nua|khong muon thuc day|ngu luon khong day|chet la het|giai thoat)\b",
         anchored=False, negatable=False),
    _cue("suicide_tu_tu", "imminent", "self_harm",
         r"\b(?:(?:muon|dinh|se|nghi (?:den|toi)(?: chuyen)?|y dinh|thu|tinh|quyet dinh|phai|hay la|chac|co nen) tu tu"
         r"|tu tu (?:cho xong|cho roi|chet|that|luon|day|mat|la cach|la giai phap)|nghi tu tu|dinh tu tu|tu tu mat"
         # an attempt before: the strongest sign of risk ("năm ngoái tôi từng tự tử một lần")
         r"|(?:tung|da tung|tung thu|da thu|tung co lan) (?:\w+ )?(?:tu tu|tu sat|tu van))\b",
         anchored=False, negatable=False),
    _cue("want_to_die", "imminent", "self_harm",
         r"(?:^|\b(?:toi|em|tui|minh|tao|con|chau|chi|that su|thuc su|that|rat|cung|lai|van|chi con|nhieu luc|nhieu khi|co luc|co khi|hay|thi) )"
         r"muon chet\b(?! (?:cuoi|di duoc|vi nong|vi cuoi|luon ma|mat))", anchored=False, negatable=False),
    # --- danger now ---
    _cue("cry_for_help", "imminent", "emergency",
         r"(?:^(?:oi |troi oi )?cuu(?: cuu)*(?: voi| em| toi| con| tui)?(?: voi)?$"
         r"|\bcuu (?:voi|em|toi|tui|minh|con|chau|me|chi|bo|nguoi|tao|mang|giup|lay)\b"
         r"|\bsos\b|^help$|\bai (?:toi|den|qua|cuu) (?:giup|cuu)? ?(?:voi|em|toi|tui|di)\b|\bgiup (?:em|toi|tui|minh|con) voi\b.*\b(?:dang|bay gio|nhanh)\b)",
         anchored=False, negatable=False),
    _cue("attack_now", "imminent", "emergency",
         rf"\b(?:dang|van dang|lai dang|van con dang)(?: bi| bi no| bi chong)? (?:{VIOLENCE}|{KILL}|{HIEP}|xam hai|duoi|ruot|duoi theo"
         rf"|dap cua|pha cua|dap do|cam dao|cam rua|cam sung|cam gay|cam ma tau|cam kiem|doa giet|say ruou dap|dap nha"
         rf"|di theo|bam theo|rinh|siet co|xiet co|bop co|o ngoai cua|dung ngoai cua|dung truoc nha|dap cua|chan|cho (?:em|toi|tui) di|giu (?:em|toi|tui))\b"
         rf"|\b(?:duoi|ruot|duoi theo) (?:toi|em|tui|minh|con(?! (?:ga|meo|cho|heo|lon|vit|chuot|bo|trau|de|chim))|vo|me|chi)\b"
         rf"|^(?:\w+ ){{0,2}}(?:no|han|ong ay|anh ay|chong|thang do|ga do) (?:\w+ )?(?:toi roi|den roi|ve roi|toi nha roi|dang toi|dang ve|dang len|toi$|den$|ve$)"
         rf"|\b(?:tieng (?:dap|danh|dam|dap nguoi|la het|hu het|khoc thet|keu cuu|dap pha))\b.*\b(?:dang|keo dai|van con|bay gio|giup voi)\b"
         rf"|\bdang (?:\w+ ){{0,3}}(?:khoa cua|khoa trai|trong (?:buong|phong) voi)\b|\bkhoa cua lai\b.*\b(?:go|goi|keu) (?:\w+ )?(?:khong mo|khong tra loi)\b"
         rf"|\b(?:goi|bao) (?:113|115|cong an|cap cuu) (?:\w+ )?(?:ma|roi|nhung) (?:chua|khong|van chua)\b"
         rf"|\b(?:toi|em|tui|minh|con) (?:dang |van )?(?:tron|nap) (?:trong|o|duoi|sau|ngoai)\b"
         rf"|\b(?:{VIOLENCE}|{KILL}) (?:\w+ ){{0,2}}(?:ngay bay gio|bay gio|luc nay|ngay luc nay)\b",
         anchored=False),
    _cue("hiding_now", "imminent", "emergency",
         r"\b(?:dang (?:tron|nap|chay tron|o nha hang xom|bi nhot|bi khoa)|phai (?:tron|chay) ra|bo chay ra duong"
         r"|chay ra duong|dang o ngoai duong)\b", anchored=False),
    _cue("kill_threat", "high", "domestic_violence",
         rf"\b(?:(?:doa|se|sap|dinh|muon|doi|tinh|hua|bao|noi|the|quyet) (?:se )?(?:{KILL}|chem|dam|tat axit|dot nha|thieu song|xu)"
         rf"|thue (?:nguoi|giang ho|con do) (?:\w+ )?(?:xu|danh|giet|chem|dam|tat)|xu (?:toi|em|tui|may|tao|ca nha)"
         rf"|{KILL} (?:chet )?(?:toi|em|tui|minh|con(?! (?:gian|chuot|ga|heo|lon|vit|ca|muoi|ruoi|rui|sau|bo|ran))|chau|me|vo|ca nha|het|may|tao|nguoi nha)"
         rf"|cho (?:toi|em|tui|minh|may|tao) chet|danh (?:cho )?chet|doa (?:cho )?chet)\b"),
    # veiled threats of death or harm, the way they are written: "chuẩn bị hòm đi", "đừng trách",
    # "biết nhà mày rồi", "coi chừng cái mạng"
    _cue("veiled_threat", "high", "domestic_violence",
         r"\b(?:chuan bi (?:cai )?hom|dat (?:san )?hom|mua (?:san )?hom|chuan bi hau su|lo hau su|coi chung (?:cai )?mang"
         r"|giu (?:lay )?(?:cai )?mang|(?:thi|la|neu khong|khong thi) dung trach|dung trach (?:anh|tao|toi|tui|bo may|ong) (?:ac|doc|tan nhan|khong noi truoc)"
         r"|biet (?:cho|nha|dia chi)(?: \w+){0,2} (?:roi|nhe)|(?:khong|ko) (?:ve|quay lai)(?: \w+){0,3} thi (?:dung trach|biet tay|chet|coi chung))\b"),
    # taken away now: someone dragged into a car, a house, the woods
    _cue("abduction_now", "imminent", "emergency",
         r"\b(?:dang|vua|moi) (?:bi )?(?:\w+ ){0,3}(?:keo|loi|loi keo|ep|bat|bong) (?:\w+ )?(?:ban|em|chi|co|con|be|toi|tui|minh|no|nguoi|vo|me|chau|ba|ong)"
         r"(?: \w+){0,2} (?:len xe|vao xe|vao rung|vao nha|len oto|len o to|di mat)\b",
         anchored=False),
    _cue("weapon_at_door", "imminent", "emergency",
         r"\b(?:cam|vung) (?:\w+ ){0,2}(?:dao|rua|mac|liem|riu|bua|gay|kiem|ma tau|sung)\b.*\b(?:dung |o |ngoi )?(?:truoc|ngoai) (?:cua|nha|ngo)\b"
         r"|\b(?:dung|o) (?:truoc|ngoai) (?:cua|nha)\b.*\b(?:cam|vung) (?:\w+ ){0,2}(?:dao|rua|mac|liem|riu|bua|gay|kiem|ma tau|sung)\b"),
    _cue("weapon", "high", "violence",
         r"\b(?:(?:cam|vung|chia|ke|dung|lay|cam theo|mang|rut|cam ca|co|de san|giau san|mai san) (?:con )?(?:mac|liem|riu|bua|gay|dao|rua|kiem|ma tau|sung|axit|a xit|xang|keo|bua|cuoc|xa beng|gay sat|thanh sat|cay sat|cay)"
         r"|tat axit|tat a xit|tat xang|dot (?:nha|nguoi)|(?:danh|dap|quat|phang) (?:\w+ )?bang (?:gay|roi|cay|ghe|that lung|day|guoc|chai|gach|da|sat|dao)|(?:bang|lay) (?:gay|ghe|cay|bua|chai|gach|da|that lung|day dien|roi|cay sat|guoc|dep) (?:dap|danh|phang|quat|nem|choi))\b"),
    _cue("severe_injury", "high", "violence",
         r"\b(?:gay xuong|bat tinh|(?<!ly )hon me|chay mau (?:nhieu|dau|khong cam)|mau chay (?:nhieu|khong cam|lenh lang|ra nhieu|dam dia)|mat nhieu mau|mau (?:ra )?nhieu|be bet mau|dam mau|chan thuong so nao|khong tho duoc)\b",
         anchored=False),
    _cue("injury", "high", "violence",
         r"\b(?:chay (?:nhieu )?mau(?! (?:cam|chan rang|nuou))|gay (?:tay|chan|xuong|mui|rang|suon|co)|bat tinh|ngat xiu|ngat di|(?<!ly )hon me|nhap vien"
         r"|vao vien|di cap cuu|rach (?:dau|mat|tran|moi)|phai khau|phai cap cuu|vo dau|be dau|khau (?:may )?mui|bong (?:nang|nuoc soi|axit)|tim tai"
         r"|thuong nang|gay tay|chan thuong so nao|say thai|hu thai|sảy thai|sẩy thai|dap dau vao tuong|sung het mat|bam dap|ra mau(?! (?:kinh|cam|chan rang|nuou))"
         r"|(?:tay|chan|xuong|suon|mui|rang|co tay) (?:\w+ )?(?:bi )?gay"
         # the head struck against something hard, fainting for a while, a blow's signs of
         # concussion, kicks to the belly (domain_brief: head injuries and strangulation are the
         # signs of lethal risk counsellors ask about)
         r"|(?:dap|dap|nen|dui|dap manh) (?:\w+ ){0,2}dau (?:\w+ )?(?:vao|vo) (?:tuong|cot|ban|tu|nen|san|cua|ghe|thanh giuong|canh)"
         r"|ngat (?:\w+ ){0,2}(?:may phut|mot luc|mot hoi|mot lat|di|lim)|xiu (?:\w+ ){0,2}(?:may phut|mot luc|mot hoi)"
         r"|dau (?:\w+ ){0,2}choang(?: \w+){0,4} (?:oi|non|mua)(?! (?:nghen|han))"
         r"|(?<!be )(?<!thai )(?<!con )(?:dap|da|dam|thuc|dui) (?:\w+ ){0,3}(?:ngay |vao |vo )?bung)\b"),   # not a baby's kicks
    _cue("sexual_violence", "high", "sexual_violence",
         rf"\b(?:{HIEP}|cuong buc|cuong dam|xam hai(?: tinh duc)?|dam o|lam nhuc|sam so|tan cong tinh duc|so mo|so soang|so (?:vao )?(?:cho kin|vung kin|vung nhay cam|nguc|ngực|mong|duoi quan)"
         r"|ep (?:\w+ )?(?:quan he|ngu|lam chuyen do|lam chuyen ay|lam tinh|xem phim sex|xem phim nguoi lon|chup anh nong|cho so)"
         r"|chuoc (?:say|thuoc|ruou)|bat (?:\w+ )?coi do|coi do ra|loa the|quay len|quay clip luc tam|cho xem phim (?:sex|nguoi lon)"
         r"|coi quan|coi do|coi ao|khoa than|anh nude|anh nong|lam chuyen do|lam chuyen ay|quan he voi (?:em|toi|con|chau|tui)"
         r"|so (?:vao )?nguoi|so mo|lam chuyen xau|lam dieu xau|lam chuyen bay|lam bay|cho kin|vung kin|bo phan sinh duc|vung nhay cam"
         r"|keo (?:\w+ ){0,2}vao (?:rung|nha|phong|bui|nha nghi|khach san)|ngu chung|bi ep (?:\w+ )?(?:toi qua|hom qua|dem qua|luc nay|roi)|bi ep$"
         r"|(?:gui|chup|xin|doi) (?:\w+ ){0,2}(?:anh|hinh|clip|video) (?:khong mac (?:ao|quan|do)|khoa than|bay|nong|nude|sexy|nhay cam|tam)"
         r"|(?:anh|hinh|phim|clip) bay|du (?:\w+ ){0,2}(?:di gap|gap rieng|ra ngoai|di choi rieng|vao nha nghi)|(?:quan ao|quan|ao) (?:\w+ )?bi coi|bi coi (?:do|quan|ao)|vao phong (?:\w+ ){0,2}(?:ban dem|luc ngu|nua dem)|so len|hon (?:em|toi|con|chau) (?:\w+ )?(?:cuong|ep)|(?:doa|de doa) (?:\w+ )?(?:dang|gui|tung|phat tan|phat) (?:\w+ )?anh)\b"),
    _cue("trafficking", "high", "forced_marriage_trafficking",
         r"\b(?:mat lien lac|bat coc|goi (?:\w+ )?khong (?:duoc|lien lac duoc)|khong lien lac duoc|bat tin"
         r"|dan (?:\w+ )?(?:dung|dung co|khong duoc) (?:noi|ke|bao) (?:\w+ )?(?:ba me|bo me|gia dinh|ai|nguoi nha)|(?:giu|lay) (?:\w+ )?(?:giay to|ho chieu|can cuoc|cccd|cmnd|passport|chung minh)|bi ban (?:sang|qua|cho|di|lam|vao)|ban (?:sang|qua) (?:trung quoc|tq|campuchia|lao|nuoc ngoai)"
         r"|(?:ben|sang|qua|o) (?:campuchia|cambodia|trung quoc|tq|lao|myanmar|nuoc ngoai|dai loan|malaysia|thai lan|bien gioi)\b(?: \w+){0,12} (?:bi giu|giu lai|khong cho (?:ve|di|ra)|bi nhot|bi danh|thu (?:dien thoai|ho chieu|giay to))"
         r"|(?:viec lam|viec nhe|luong cao|luong \d+|di lam|xuat khau|dua (?:em|con|chau|di)|di mot minh)(?: \w+){0,10} (?:dung|khong duoc) (?:noi|ke|bao) (?:voi |cho )?(?:ai|ba me|bo me|gia dinh|nguoi nha)"
         r"|lua ban|buon nguoi|khong cho ve nuoc|bi giam long|no dan lam khong cong|khong duoc ra ngoai|lam viec khong luong"
         r"|ep lam gai|ep ban dam|ep lay chong (?:tq|trung quoc|nguoi nuoc ngoai|nguoi tau|dai loan|han quoc)|bat lam gai|bi lua (?:sang|qua) (?:\w+ )?(?:trung quoc|tq|campuchia|lao|bien gioi|nuoc ngoai|han quoc|dai loan))\b", anchored=False),
    _cue("strangulation", "high", "violence",
         r"\b(?:bop co|siet co|xiet co|ghi co|suyt ngat|suyt chet|bop nghet|siet nghet|ngat tho|khong tho duoc|dim nuoc|xiu luon|ngat luon)\b"),
    _cue("pregnancy_violence", "high", "domestic_violence",
         r"\b(?:mang thai|co thai|co bau|dang bau|bung bau|mang bau|co mang|bau \d+ thang)\b.*\b(?:danh|da|dap|xo|ra mau|chay mau|dau bung)\b"
         r"|\b(?:danh|da|dap|xo)\b.*\b(?:mang thai|co thai|co bau|dang bau|bung bau|mang bau|co mang)\b"),
    _cue("locked_in", "imminent", "violence",
         r"\b(?:nhot(?! (?:cho|ga|meo|heo|lon|vit|bo|trau|chim|cun)\b) (?:\w+ )?(?:trong|o|lai)|khoa (?:cua )?nhot|bi nhot|bi giam|bi xich|bi troi|khoa trai|khong cho (?:ra khoi|ra ngoai|di dau)"
         r"|bi (?:\w+ )?khoa (?:\w+ )?(?:trong|lai trong) (?:nha|phong|buong|kho)|khoa (?:em|toi|tui|minh|con|vo) (?:\w+ )?trong (?:nha|phong|buong|kho))\b"),
    _cue("child_marriage", "high", "forced_marriage_trafficking",
         r"\b(?:(?:ep|bat|gả|ga|cuoi|lay) (?:\w+ ){0,6}(?:lay chong|cuoi vo|lay vo|cuoi chong|ket hon|ve lam dau|lam vo|ve lam vo|cuoi)\b.*\b(?:1[0-7]|[1-9]) tuoi"
         r"|(?:1[0-7]|[1-9]) tuoi\b.*\b(?:ep|bat|gả|ga|phai|muon|doi|noi|bao|sap|cho) (?:\w+ ){0,3}(?:lay chong|cuoi|lay vo|ket hon|lam vo|ve lam vo|ve lam dau|ve nha chong)"
         # the age without "tuổi": "em mới 16", "con bé mới 15 à"
         r"|(?:ep|bat|gả|ga) (?:\w+ ){0,6}(?:lay chong|cuoi|lay vo|ket hon|lam vo|ve lam dau)\b.*\b(?:em|con|no|be|chau|minh) (?:moi|chi|chua|nam nay|moi co) (?:1[0-7]|[1-9])\b"
         r"|\b(?:em|con|no|be|chau|minh) (?:moi|chi|chua|nam nay|moi co) (?:1[0-7]|[1-9])\b.*\b(?:ep|bat|gả|ga) (?:\w+ ){0,6}(?:lay chong|cuoi|lay vo|ket hon|lam vo|ve lam dau))"),
    _cue("child_marriage_price", "high", "forced_marriage_trafficking",
         r"\b(?:ga (?:cho|di)|sinh le|thach cuoi|tien cuoi|di lay chong|bat ve lam vo|lay chong xa|tra cho nha)\b.*\b(?:1[0-7]|[1-9]) ?(?:tuoi|t)\b"
         r"|\b(?:1[0-7]|[1-9]) ?(?:tuoi|t)\b.*\b(?:ga (?:cho|di)|sinh le|thach cuoi|tien cuoi|di lay chong|bat ve lam vo|lay chong xa|tra cho nha)\b", anchored=False),
    _cue("shelter_tonight", "high", "shelter",
         r"\b(?:(?:can|xin|tim|khong co) (?:cho|noi) (?:o|ngu|tru|tam lanh|tron)(?: \w+){0,6} (?:toi nay|dem nay|bay gio|ngay)"
         r"|khong co cho (?:o|ngu|ve) (?:toi nay|dem nay)|khong dam ve nha (?:toi nay|dem nay)|khong dam ve nha)\b"),
    # thrown out of the house at night, in the rain, with a baby, with nowhere to sleep
    _cue("thrown_out_night", "high", "shelter",
         r"\b(?:(?:duoi|tong|dong cua|khoa cong|khoa cua)(?: \w+){0,5} (?:ra khoi nha|ra ngoai|ra duong|ra dau ngo|khoi nha)"
         r"(?: \w+){0,12} (?:dem|ban dem|nua dem|khuya|toi nay|dem nay|troi mua|mua to|gio dem|gio toi|khong co cho|khong biet di dau|ngu ngoai)"
         r"|(?:dem|nua dem|khuya|toi nay|dem nay|gio dem)(?: \w+){0,10} (?:duoi|tong)(?: \w+){0,4} (?:ra khoi nha|ra ngoai|ra duong|khoi nha)"
         r"|(?:khong co cho|khong biet) (?:ngu|o|di dau|ve dau)(?: \w+){0,3} (?:dem nay|toi nay|bay gio|dem)|phai ngu (?:ngoai duong|ngoai hien|o tram|ngoai cong)"
         # just now: "chồng em vừa đuổi hai mẹ con ra khỏi nhà, khóa cổng"
         r"|(?:vua|moi|dang) (?:\w+ ){0,2}(?:duoi|tong) (?:\w+ ){0,5}(?:ra khoi nha|ra duong|khoi nha)(?: \w+){0,6} (?:khoa cong|khoa cua|nem|vut|quang)"
         # pushed out and the gate locked behind: "đẩy hai mẹ con ra ngoài, khóa cổng, tắt đèn"
         r"|(?:duoi|tong|day|xo) (?:\w+ ){0,5}(?:ra ngoai|ra khoi nha|ra duong|khoi nha)(?: \w+){0,3} (?:khoa cong|khoa cua|dong cong|chot cong|chot cua))\b"),
    # sextortion and ransom: intimate images or a person held, money demanded
    _cue("sextortion", "high", "online_violence",
         r"\b(?:(?:doa|de doa|neu khong|khong thi|khong la|bat|doi|ep)(?: \w+){0,8} (?:tung|dang|gui|phat tan|up|post|cho ca|chia se)(?: \w+){0,4} (?:clip|anh|hinh|video|phim)"
         r"|(?:clip|anh|hinh|video|man hinh)(?: \w+){0,6} (?:nong|nhay cam|khoa than|rieng tu|tam|call video|goi video)(?: \w+){0,10} (?:doi|chuyen|dua|tra) (?:\w+ )?(?:tien|trieu|\d+)"
         r"|(?:chup|quay) (?:man hinh|lai)(?: \w+){0,6} (?:goi video|call video|video call)(?: \w+){0,8} (?:doi|doa|bat)"
         # grooming: an adult asks for naked pictures ("gã đòi nó gửi ảnh khỏa thân")
         r"|(?:doi|bat|ep|du|xin|yeu cau|doi hoi|nan ni) (?:\w+ ){0,4}(?:gui|chup|quay|cho xem) (?:\w+ ){0,2}(?:anh|hinh|clip|video)(?: \w+){0,2} (?:khoa than|nong|nude|sex|khong mac|ho hang|nhay cam|than the|vung kin))\b", anchored=False),
    _cue("ransom", "high", "forced_marriage_trafficking",
         r"\b(?:tien chuoc|chuoc (?:nguoi|ve)|(?:doi|gui|dua|chuyen)(?: \w+){0,3} (?:\d+ ?(?:tr|trieu|ty|cu|k)?|trieu|tien)(?: \w+){0,4} (?:moi|thi moi) (?:tha|cho ve|tra nguoi|cho di)"
         r"|(?:khong|ko) (?:cho|tha) (?:ve|di)(?: \w+){0,6} (?:den khi|cho den khi|neu khong|khi nao) (?:\w+ ){0,3}(?:tra|gui|dua|chuoc) (?:du )?(?:tien|no)"
         r"|bat (?:\w+ ){0,2}(?:tiep khach|ban dam|lam gai)|ep (?:\w+ ){0,2}(?:tiep khach|ban dam)(?: \w+){0,4}(?: tra no)?)\b", anchored=False),
    # --- ongoing violence (medium): anchored, negatable ---
    _cue("violence", "medium", "domestic_violence",
         rf"\b(?:{VIOLENCE}|chui|chui boi|xuc pham|si nhuc|doa|de doa|bat nat|kiem soat|co lap|khong cho (?:di|gap|ve|lam)|duoi ra khoi nha"
         rf"|an hiep|quay roi|danh dap|bo doi|khong cho an|lay het tien|giu het tien|bat dua tien|ep dua tien|ghen tuong"
         rf"|la het|chui mang|nhuc ma|cam (?:di|ra|gap|lam|ve)|khong dua tien|xin tung dong|tung dong|quang do|dap do)\b"),
    _cue("stalking", "high", "emergency",
         r"\b(?:cu|van|dang|con|lien tuc) (?:di theo|bam theo|theo duoi|rinh|doi) (?:em|toi|tui|minh|chi|con)\b"
         r"|\b(?:di theo|bam theo|theo duoi|rinh rap) (?:em|toi|tui|minh|chi|con|vo toi|con toi) (?:\w+ ){0,4}(?:ve nha|ve toi nha|ve den nha|ve tan|tu cho lam|tu truong|tu cong ty|moi ngay|may tuan|may thang|hoai)\b"
         r"|\b(?:cu|ngay nao cung|chieu nao cung|moi (?:chieu|sang|toi|ngay)|dem nao cung) (?:\w+ ){0,2}(?:dung|doi|rinh|ngoi|lang vang) (?:\w+ ){0,2}(?:truoc|ngoai|o cong|duoi) (?:cty|cong ty|nha|truong|cong|phong tro|cho lam|xuong)\b"),
    _cue("harassment", "medium", "sexual_harassment",
         r"\b(?:om eo|om (?:em|toi|tui|minh)|so (?:dui|mong|nguoi|tay|eo|nguc)|nhan tin (?:ban|khieu dam|gheo|tuc tiu)"
         r"|gui anh (?:nong|khieu dam|nhay cam)|khong chiu (?:thi|la) (?:cho nghi|duoi|tru luong)|gheo (?:em|toi|tui)"
         r"|noi tuc tiu|quay roi|co xat|ap sat|nhin trom|quay len|chup len|chup trom|quay trom|dong cham|so soang|ep di (?:an|uong|choi) (?:rieng|voi)|tin nhan (?:ban|khieu dam)"
         r"|om (?:\w+ ){0,2}(?:tu phia sau|tu sau|chat lay|ghi)|dat tay len (?:vai|dui|nguoi|eo|nguc|mong)|(?:dua|cau dua|chuyen|noi|hoi|nhan) (?:\w+ ){0,3}(?:tuc tiu|bay ba|khieu dam|tho tuc|de tien)"
         r"|hoi (?:em|toi|minh|tui) (?:dang )?mac (?:do|gi|ao)|chan (?:em|toi|tui|minh) lai"
         # propositioned ("bị người lạ gạ chat sex"): with a child named, child abuse (high)
         r"|ga (?:\w+ ){0,2}(?:chat sex|quan he|lam chuyen (?:do|ay|xau)|ngu (?:voi|chung)|video sex|goi video sex)|(?:ngoan|chieu|chiu) thi (?:\w+ ){0,3}(?:len luong|tang luong|thang chuc|ky hop dong|cho qua))\b"),
    # worn out, despairing, with no word of death: someone to talk to (medium), not a crisis
    _cue("distress", "medium", "health_support",
         r"\b(?:met moi (?:lam|qua|vo cung|het suc|ra roi|kinh khung)|kiet suc|suy sup|bat luc|tuyet vong|tram cam"
         r"|khung hoang (?:tinh than|tam ly)|khong chiu noi nua|het chiu noi)\b"),
    _cue("fear", "medium", "domestic_violence",
         r"\b(?:khong an toan|khong ai hieu (?:toi|em|minh|tui)|so (?:lam|qua|hai|hai lam|chet khiep|run)|run so|hoang so|khong dam (?:ve|noi|ke|di)|so (?:no|han|chong|bo|ong ay|anh ay))\b"),
)


# --- English (Đà Nẵng has foreign residents and workers; many write in English) ----------------
# Matched on the lower-cased text (the Vietnamese normaliser would expand "a", "e", "k"). Same
# levels and topics as the Vietnamese cues; anchored ones need a person ("I", "me", "my", "he"…).
_EN_PERSON = (r"\b(?:i|i'm|im|me|my|we|us|our|he|she|him|her|his|they|them|husband|wife|boyfriend|girlfriend|partner"
              r"|ex|father|mother|dad|mom|mum|son|daughter|child|kid|sister|brother|boss|landlord|neighbou?r|friend)\b")
_EN_NOW = r"\b(?:now|right now|tonight|coming|is here|outside|at the door|already|currently)\b"
EN_CUES: tuple[tuple[str, str, str, re.Pattern, bool], ...] = tuple(
    (name, level, topic, re.compile(regex), anchored) for name, level, topic, regex, anchored in (
        ("en_suicide", "imminent", "self_harm",
         r"\b(?:kill myself|killing myself|end (?:my|it) (?:life|all)|end it all|suicid\w*|want to die|wanna die|don'?t want to (?:live|be alive)"
         r"|no reason to live|better off dead|took (?:\w+ ){0,2}pills|overdos\w*|cut(?:ting)? myself|hurt(?:ing)? myself|self[- ]harm"
         # no reason left, everything to stop ("I don't see a reason to go home", "just want it all to stop")
         r"|(?:don'?t|can'?t|do not|cannot) see (?:a|any|the) (?:reason|point) (?:to|in) (?:live|living|go(?:ing)? on|go(?:ing)? home|keep going|be here)"
         r"|no (?:reason|point) (?:to|in) (?:go(?:ing)? on|go(?:ing)? home|keep going|be(?:ing)? here)"
         r"|want (?:it all|everything|the pain|all of this|this) to (?:stop|end)|can'?t go on|can'?t do this anymore)\b", False),
        ("en_cry_for_help", "imminent", "emergency",
         r"\b(?:help me|please help|save me|call the police|sos)\b(?! (?:to |)(?:find|with|understand|know|get|choose|write|learn|figure|out with))", False),
        ("en_attack_now", "imminent", "emergency",
         r"\b(?:(?:he|she|they|husband|boyfriend|ex)(?:'s| is| are)? (?:coming|on (?:his|her|their) way|at the door|outside|back)"
         r"|(?:is|are|'s) (?:hitting|beating|choking|attacking|chasing|following) (?:me|us|my)|(?:has|with|holding|grabbed) a (?:knife|gun|weapon|machete|hammer)"
         r"|locked (?:me|us|my \w+)(?: and [\w ]+)? in|won'?t let (?:me|us) (?:out|leave|get out)|won'?t stop the (?:car|taxi|bike|bus)"
         r"|hiding (?:in|from)|trapped|dragg(?:ed|ing) (?:\w+ ){0,2}into (?:a|his|the) (?:car|van|taxi))\b", False),
        ("en_kill_threat", "high", "domestic_violence",
         r"\b(?:(?:threaten\w*|said|says|will|going to|gonna) (?:to )?(?:kill|murder|burn|stab|shoot)|kill (?:me|us|my)|(?:he|she)'ll kill)\b", True),
        ("en_sexual_violence", "high", "sexual_violence",
         r"\b(?:rap(?:e|ed|ing|ist)|sexual(?:ly)? (?:assault\w*|abus\w*)|forced (?:me|her|him) (?:to have sex|into sex)|molest\w*|drugged (?:me|my drink))\b", True),
        ("en_trafficking", "high", "forced_marriage_trafficking",
         r"\b(?:traffick\w*|(?:took|takes|keeps|kept|holds|holding|confiscated) (?:my|our|her|his) (?:passport|papers|id|documents)|ransom"
         r"|sold (?:me|her|him|to)|forced (?:me|her) to (?:work|marry)|can'?t leave the (?:boat|factory|house|country)|debt bondage)\b", False),
        ("en_child_marriage", "high", "forced_marriage_trafficking",
         r"\b(?:1[0-7]|[1-9])(?:[- ]year[- ]old| years old| yo)\b.*\b(?:marry|marriage|married|wedding|bride)\b"
         r"|\b(?:marry|marrying|married) (?:her|him|me) (?:off|to)\b.*\b(?:1[0-7]|[1-9])\b"
         r"|\b(?:is|aged|age|only|just) (?:1[0-7]|[1-9])\b.*\b(?:marry|marrying|married|wedding|bride)\b", False),
        ("en_sextortion", "high", "online_violence",
         r"\b(?:(?:private|intimate|nude|naked|sexy) (?:photos?|pictures?|pics|videos?)|sextortion|blackmail\w*)\b.*\b(?:money|pay|send|post|share|leak|unless|or (?:he|she|they)'ll)\b"
         r"|\bblackmail\w*\b", False),
        ("en_injury", "high", "domestic_violence",
         r"\b(?:bleeding|broken (?:arm|nose|rib|bone|jaw|wrist|leg)|(?:arm|nose|rib|bone|jaw|wrist|leg)s? (?:is |are |was |might be |may be )?broken"
         r"|unconscious|passed out|choked|strangled|hospital(?:ized)?|(?:pushed|threw|thrown) (?:me )?down the stairs)\b", True),
        ("en_violence", "medium", "domestic_violence",
         r"\b(?:hit(?:s|ting)?|beat(?:s|ing|en)?|slap(?:s|ped|ping)?|punch(?:es|ed|ing)?|kick(?:s|ed|ing)?|push(?:es|ed|ing)?(?: me)? (?:around|down)|shov\w+"
         r"|abus(?:e|es|ed|ive)|threaten\w*|controls? (?:my|all (?:the|my)) money|takes? my (?:salary|money|phone)|won'?t let me (?:see|go|work|leave)"
         r"|shouts? at|yell(?:s|ing)? at|insult\w*|stalk\w*|follow(?:s|ing) me|keeps? (?:calling|texting|messaging) me|kicked (?:me|us) out|threw (?:me|us) out)\b", True),
        ("en_harassment", "medium", "sexual_harassment",
         r"\b(?:harass\w*|touch(?:es|ed|ing)? me|grop\w*|groped|catcall\w*|sends? me (?:dirty|sexual|nude))\b", True),
        ("en_shelter_tonight", "high", "shelter",
         r"\b(?:nowhere to (?:go|sleep|stay)|no place to (?:go|sleep|stay)|sleeping (?:on the street|outside)|kicked (?:me|us) out (?:tonight|at night|last night))\b", False),
    ))
_EN_NEG = re.compile(r"\b(?:not|never|no|don'?t|doesn'?t|didn'?t|isn'?t|wasn'?t|won'?t)\s+(?:\w+\s+)?$")
# who writes about the subject, and what they write (not "teacher", "volunteer": they write about
# a particular child or woman; not "report": people ask how to report what happened to them)
_EN_ROLE = re.compile(r"\b(?:i am|i'm|im|we are|we're) (?:a |an )?(?:\w+ ){0,2}(?:journalist|reporter|researcher|student|intern"
                      r"|screenwriter|writer|phd candidate|lecturer)\b")
_EN_TASK = re.compile(r"\b(?:article|feature|thesis|dissertation|research|essay|documentary|script|screenplay|assignment"
                      r"|coursework|presentation|statistics|data on|literature review|policy brief)\b")
_EN_INFO = re.compile(r"\b(?:essay|homework|assignment|research|statistics|article|report on|thesis|presentation|in general|what is the law|what are the laws|is it (?:legal|illegal))\b")
_EN_MEDIA = re.compile(r"\b(?:movie|film|game|series|novel|book|song|episode|match|football)\b")


def _assess_english(lowered: str, result: "Assessment") -> None:
    if not lowered or not re.search(r"\b(?:the|is|my|me|i|he|she|and|to|help|with|you)\b", lowered):
        return
    about = bool(_EN_INFO.search(lowered) or _EN_MEDIA.search(lowered)) and not re.search(r"\b(?:my|me|i'm|im)\b", lowered)
    person = re.compile(_EN_PERSON)
    for name, level, topic, pattern, anchored in EN_CUES:
        for m in pattern.finditer(lowered):
            if _EN_NEG.search(lowered[max(0, m.start() - 24):m.start()]) or about:
                continue
            if anchored and not person.search(lowered[max(0, m.start() - 60):m.end() + 30]):
                continue
            if name == "en_trafficking" and re.search(r"\b(?:husband|wife|boyfriend|girlfriend|partner)\b", lowered) \
                    and not re.search(r"\b(?:ransom|traffick\w*|sold)\b", lowered):
                level, topic = "medium", "domestic_violence"   # a partner keeping papers is control at home
            if name in ("en_kill_threat",) and re.search(_EN_NOW, lowered):
                level = "imminent"
            if name in ("en_violence", "en_sexual_violence", "en_harassment") and re.search(
                    r"\b(?:son|daughter|child|kid|(?:1[0-7]|[1-9])[- ]year[- ]old|my (?:boy|girl))\b", lowered):
                level, topic = "high", "child_abuse"
            _raise(result, level, topic, name)
            break
    if set(result.reasons) & {"en_injury", "en_violence", "en_kill_threat"} and _EN_STILL_THERE.search(lowered):
        _raise(result, "imminent", "emergency", "en_still_there")   # hurt, and the one who did it is still there


_EN_STILL_THERE = re.compile(r"\b(?:he|she|they)(?:'s| is| are) still (?:here|home|at home|outside|in the (?:house|room|flat|apartment|kitchen))\b")


# Words whose diacritics remove the ambiguity of their folded form: "hiếp" (rape) is not "hiệp"
# (a half in football, an association), "tự tử" (suicide) is not "từ từ" (slowly). Checked on
# the accented text when the writer used diacritics.
ACCENTED_CUES = (
    ("hiếp", "high", "sexual_violence", True),
    ("tự tử", "imminent", "self_harm", False),
    ("tự sát", "imminent", "self_harm", False),
    ("tự vẫn", "imminent", "self_harm", False),
)


_CLAUSE = re.compile(r"[.,;:!?\n…]+|\s-\s")
_SENTENCE_BREAK = re.compile(r"[.!?\n…]+")


@dataclass
class Assessment:
    risk: str = "none"
    topic: str | None = None
    reasons: list[str] = field(default_factory=list)
    child: bool = False
    # a question about the subject (an essay, homework, news, research), with no danger word: the
    # model's urgent intents do not count for it (bot.understanding)
    about_subject: bool = False
    real: bool = False        # the writer tells of harm to themselves or to someone close
    generic_topic: bool = False   # only the generic cues (someone hurt, afraid) spoke: no subject


def _anchor_near(text: str, start: int, end: int, passive: bool, window: int = 60) -> bool:
    if passive:
        return True
    if CHILD_STRONG.search(text):  # "học sinh lớp 5", "bé 8 tuổi": a particular child
        return True
    text = GENERIC.sub(lambda m: "_" * len(m.group()), text)
    before = text[max(0, start - window):start]
    after = text[end:end + 30]
    return bool(ANCHOR.search(before) or ANCHOR.search(after) or ANCHOR.search(text[start:end]))


class _Context:
    """What the whole message says, shared by every cue. The text's pieces are computed at once;
    what needs more reading (who is hurt, is it now, is it a question about the subject) only when
    a cue has matched: most sentences of a long letter match none."""

    def __init__(self, text: str, norm: str, strict_child: bool = False) -> None:
        self.text, self.norm, self.strict_child = text, norm, strict_child
        self.clauses = [_ages(normalize(part)) for part in _CLAUSE.split(text)] if text else [norm]   # before clean: it drops "\n"
        self.clause_starts = _clause_starts(norm, self.clauses)    # where each clause begins in norm
        self.lines = "\n".join(c for c in self.clauses if c)       # same offsets as norm when clause_starts is set

    @cached_property
    def lowered(self) -> str:
        return clean(self.text).lower() if self.text else ""

    @cached_property
    def _masked(self) -> str:
        return GENERIC.sub("_", self.norm)

    @cached_property
    def passive(self) -> bool:
        """A clause opens with "bị": a person is hurt (not enough to outweigh fiction)."""
        return any(START_PASSIVE.search(c) for c in [self.norm, *self.clauses])

    @cached_property
    def _says(self) -> bool:
        return bool(START_PASSIVE.search(self.norm) or VICTIM_SAYS.search(self._masked))

    @cached_property
    def frame(self) -> bool:
        """The writer says who they are and what they prepare (ROLE_FRAME), in Vietnamese or in
        English ("I'm a journalist working on a feature about …")."""
        return bool(ROLE_FRAME.search(self.norm) and TASK.search(self.norm)) or bool(
            _EN_ROLE.search(self.lowered) and _EN_TASK.search(self.lowered))

    @cached_property
    def real(self) -> bool:
        """The writer says it happens to them or to someone close."""
        return self.personal(self.frame) or bool(SELF_INTENT.search(self.norm) and not self.frame)

    def personal(self, frame: bool) -> bool:
        """Someone in particular is hurt: the writer says so, tells what a person close to them
        said, or names their child and its age; ``frame``: the writer has said they write about
        the subject (then only the writer's "I was …" counts, not a past act told of)."""
        norm = self.norm
        return self._says or bool(FRIEND_REPORT.search(norm)
                                  # someone close, named, to whom it is done: "em gái tôi mới 15 tuổi mà bị …"
                                  or _PARTICULAR_BI.search(norm)
                                  # a past act done to the writer or theirs: "đã vào nhà và hiếp em"
                                  or (_DONE_TO_ME.search(norm) and not frame)
                                  # a parent who names their child and its age: "con gái tôi 13 tuổi …"
                                  or (bool(MY_CHILD_AGED.search(norm)) and not frame))

    @cached_property
    def info_like(self) -> bool:
        """A question about the subject, not a disclosure."""
        norm = self.norm
        info = bool((INFO_START.search(norm) and INFO_WORDS.search(norm)) or INFO_STRONG.search(norm)
                    or PENALTY_Q.search(norm)) or self.frame
        return info and not self.real

    @cached_property
    def animal(self) -> bool:
        return bool(ANIMAL.search(self.norm))

    @cached_property
    def media(self) -> bool:
        """Fiction or sport, unless someone says it happens to them."""
        norm = self.norm
        return (bool(MEDIA.search(norm)) and not (self._says or CHILD_STRONG.search(norm))) or (
            bool(HEARSAY.search(norm)) and not self._says)

    @cached_property
    def _sentences(self) -> str:
        """``norm`` with a line break between sentences (a pattern with spaces does not cross it)."""
        if not self.text:
            return self.norm
        return "\n".join(p for p in (_ages(normalize(part)) for part in _SENTENCE_BREAK.split(self.text)) if p)

    @cached_property
    def child(self) -> bool:
        return _names_a_child(CHILD, self.norm, self.norm)

    @cached_property
    def child_victim(self) -> bool:
        norm = self.norm
        strong_child = CHILD_STRONG.search(norm)
        return bool(_HITS_CHILD.search(norm)) or self.child and bool(
            re.search(rf"(?:{CHILD.pattern})(?: \w+){{0,6}} bi\b", norm)
            # the child as the object of the violence, in the same sentence ("…vết bầm. Hai đứa nhỏ
            # chứng kiến hết": the children start the next sentence, they saw it)
            or re.search(rf"{VIOLENCE}(?: \w+){{0,2}} (?:{CHILD.pattern})", self._sentences)
            or re.search(rf"(?:{CHILD.pattern})(?: \w+){{0,3}} (?:xam hai|dam o|sam so|hiep)", norm)
            # a particular child is named and no adult says "I was …" before it (not in a part of a
            # long letter: "có hai đứa nhỏ" in one sentence is not the one hurt in the next)
            or (strong_child and not self.strict_child and not re.search(
                r"\b(?:toi|em|tui|minh|me|ba) (?:\w+ ){0,2}bi\b", norm[:strong_child.start()]))
            # the writer is the child ("em học lớp 9", "con mới 12 tuổi") and writes "em bị …"
            or (bool(WRITER_CHILD.search(norm)) and bool(
                START_PASSIVE.search(norm) or re.search(r"\b(?:em|con|chau|minh|tui|toi) (?:\w+ ){0,2}bi\b", norm))))

    @cached_property
    def now(self) -> bool:
        return _now(self.text, self.norm)


# pictures, not people: the classifiers of a photo, a photo's kind, a clip ("anh" alone is "he")
_IMAGE = re.compile(r"\b(?:(?:tam|buc|nhung|may|cac|cai|mot) anh|anh (?:nong|nude|khoa than|ghep|nhay cam|rieng tu|sex|than mat|trong suot)"
                    r"|hinh (?:anh|nong|khoa than|nhay cam|ghep)|clip|video|chup|quay (?:clip|phim|len|lai)|livestream|webcam|deepfake)\b")
# "just asking, nothing happened": the writer says the questions are not about them
_NOT_ME = re.compile(r"\b(?:hoi de biet thoi|hoi cho biet thoi|chi hoi thoi|khong co chuyen gi|khong phai chuyen cua (?:toi|em|minh|tui))\b")
# a demand or a threat that comes with the pictures: money, more pictures, a meeting, or else
_DEMAND = re.compile(r"\b(?:doi|doa|tong tien|khong thi|neu khong|chuyen tien|chuyen khoan|bat (?:em|toi|tui|minh|e|con)"
                     r"|phai (?:gui|chuyen|quay lai|gap|qua))\b")
# bleeding with the belly or the pregnancy named, in one stretch of words
_BELLY_BLEEDING = re.compile(r"\b(?:(?:ra|chay) mau(?! (?:kinh|cam|chan rang|nuou))(?: \w+){0,5} (?:bung|thai|tu cung)"
                             r"|(?:bung|thai|tu cung)(?: \w+){0,5} (?:ra|chay) mau(?! (?:kinh|cam|chan rang|nuou)))\b")
# "giờ"/"chừ" as "now" in speech ("giờ em thấy ra máu"), not the hour ("mấy giờ", "2 giờ")
_GIO_NOW = re.compile(r"(?:^|\b(?:ma|roi|nen|thi|va|con) )(?:gio|chu)\b|\b(?:gio|chu) (?:em|toi|tui|minh|thay|con|van|lai|bi|dang)\b")
_PAST_ONLY = re.compile(r"\b(?:hoi do|luc do|nam ngoai|nam truoc|hoi xua|ngay xua)\b")
_DANGER_WORDS = re.compile(rf"\b(?:{KILL}|dao|rua|sung|ma tau|axit|xang|cuu|chet|mau|nhot|bat coc|113|115)\b")
_PAST = re.compile(r"\b(?:hom qua|hoi hom|tuan truoc|thang truoc|nam ngoai|hoi nho|ngay xua|lan truoc)\b")
_UNCONSCIOUS_OR_BLEEDING = re.compile(
    r"\b(?:bat tinh|(?<!ly )hon me|ngat xiu|khong tinh|mau (?:ra )?nhieu|chay mau nhieu|mau chay nhieu|mat nhieu mau|be bet mau)\b")
_HAPPENING = re.compile(r"\b(?:dang|van dang|con dang|gio (?:no|han|ong ay)? ?(?:con|van) (?:ngoi|o|dung))\b")


_UNITS = {"mot": 1, "hai": 2, "ba": 3, "bon": 4, "tu": 4, "nam": 5, "lam": 5, "sau": 6, "bay": 7, "tam": 8, "chin": 9}
_UNIT = "mot|hai|ba|bon|nam|sau|bay|tam|chin"
_AGE_WORDS = re.compile(rf"\b(?:({_UNIT}) )?(muoi|{_UNIT})(?: (mot|hai|ba|bon|tu|lam|nam|sau|bay|tam|chin))? tuoi\b")


def _ages(norm: str) -> str:
    """An age under 18 written in words reads as digits: "mười lăm tuổi" → "15 tuoi", "sáu, bảy
    tuổi" → "6 7 tuoi"; "bốn mươi lăm", "bốn lăm" (45) and "hai mươi" stay as written."""
    def digits(m: "re.Match[str]") -> str:
        tens, first, second = m.groups()
        if first == "muoi":
            if tens:
                return m.group()                                      # "bốn mươi (lăm) tuổi"
            value = 10 + (_UNITS[second] if second else 0)
            return f"{value} tuoi" if value < 18 else m.group()
        if tens:
            return f"{_UNITS[tens]} {_UNITS[first]} tuoi"              # "sáu bảy tuổi": six or seven
        if second and second in ("lam", "tu", "mot"):
            return m.group()                                          # "bốn lăm tuổi" is 45
        prefix = f"{_UNITS[first]} {_UNITS[second]}" if second else f"{_UNITS[first]}"
        return f"{prefix} tuoi"
    return _AGE_WORDS.sub(digits, norm) if "tuoi" in norm else norm


def _clause_starts(norm: str, clauses: list[str]) -> tuple[int, ...] | None:
    """Where each clause begins in ``norm``, which has lost the punctuation between them (None
    when a caller's ``normalized`` is not this message's)."""
    starts, at = [], 0
    for clause in clauses:
        if clause:
            starts.append(at)
            at += len(clause) + 1
    return tuple(starts) if " ".join(c for c in clauses if c) == norm else None


# hearsay and the news: "nghe trên tivi nói có mấy đứa nhỏ bị…" is about children in general
HEARSAY = re.compile(r"\b(?:tren bao|bao dai|doc bao|tren tivi|tren ti vi|tren truyen hinh|nghe noi|nghe nguoi ta noi"
                     r"|tren mang (?:xa hoi )?(?:noi|dua tin|hay noi))\b")


def _now(text: str, norm: str) -> bool:
    """A "now" word. Two folded ones are ambiguous: "dang" is "đang" (now) but also "đăng" (post),
    "chu" is "chừ" (now, in Quảng Nam) but also "chủ", "chú", "chữ". They count when the writer
    typed the accented "now" word, or wrote without accents and no other compound follows."""
    lowered = text.lower()
    accented = lowered != fold(lowered)
    for m in NOW.finditer(norm):
        word = m.group()
        if word not in _AMBIGUOUS_NOW:
            return True
        marked, not_after = _AMBIGUOUS_NOW[word]
        if (marked in lowered) if accented else not not_after.match(norm, m.end()):
            return True
    return False


_AMBIGUOUS_NOW = {
    "chu": ("chừ", re.compile(r" (?:nhiem|nha|tich|de|y|ruot|bac|thich|quan|dong|tro|cong|tu|hang|doanh|nghia|ky|so|the|dao"
                              r"|muu|toa|quyen|chot|bien|thau|dau|tiem|xe|ho|nho|ba|no|cai|vo|tau|dat|nhat|trai|toi|em|ay)\b")),
    "dang": ("đang", re.compile(r" (?:len|bai|tai|anh|hinh|clip|video|ky|nhap|tin|facebook|fb|status|story|tiktok|quang cao)\b")),
}


@dataclass(frozen=True)
class _Span:
    """A cue found in one clause, placed in the whole normalised message."""

    begin: int
    finish: int
    string: str

    def start(self) -> int:
        return self.begin

    def end(self) -> int:
        return self.finish


def _matches(cue: Cue, ctx: _Context) -> Iterator[re.Match | _Span]:
    """The cue in the whole message, then in each clause alone: what one sentence says is not
    undone by the next ("Bố đánh. Có ai không?" is not "đánh cờ", "Xin chào. Cứu!" is a cry for
    help). "muốn chết" counts only at the start of a clause or after a subject ("mệt quá, muốn
    chết"), not as an exaggeration inside one ("nóng muốn chết"), so only clauses for it."""
    if cue.absent(ctx.norm) and (ctx.clause_starts is not None or all(cue.absent(c) for c in ctx.clauses)):
        return
    if cue.name != "want_to_die":
        yield from cue.pattern.finditer(ctx.norm)
    if ctx.clause_starts is None:
        if cue.name == "want_to_die":
            yield from (m for clause in ctx.clauses for m in cue.pattern.finditer(clause))
    elif cue.name == "want_to_die" or len(ctx.clause_starts) > 1:
        for m in cue.lines.finditer(ctx.lines):      # every clause alone, in one pass
            yield _Span(m.start(), m.end(), ctx.norm)


def _ignored(cue: Cue, m: re.Match | _Span, ctx: _Context) -> bool:
    """Matches that do not count: negated, a simile, fiction, a question about the subject, an
    animal, or (for anchored cues) no real person near the words."""
    norm = ctx.norm
    if cue.name == "suicide_tu_tu" and "tự tử" not in ctx.lowered and "từ từ" in ctx.lowered:
        return True  # written with accents as "từ từ" (slowly), not "tự tử"
    # the table holds violent readings of folded words: only the violence cue reads them so
    # ("cần chỗ trú" is the shelter cue's own "can")
    if cue.name == "violence" and _typed_otherwise(m.string[m.start():m.end()].split(" ")[0], ctx.lowered):
        return True
    if cue.negatable:
        # a negation counts inside its own clause: "Có ai không? Chồng dọa giết em" is a threat
        starts = ctx.clause_starts if m.string == norm and ctx.clause_starts else (0,)
        start = max(s for s in starts if s <= m.start())
        if NEGATION.search(m.string[start:m.start()]):
            return True
    if not cue.anchored:
        if cue.topic == "self_harm" and ctx.frame and not ctx.media:
            return False     # a teacher or a student may also write about themselves: never ignored
        return (ctx.media or ctx.info_like) and not ctx.real
    if ctx.media or ctx.info_like:
        return True
    if ctx.animal and ANIMAL.search(norm[max(0, m.start() - 30):m.start()]):
        return True  # "con mèo nhà tôi bị đánh ghen"
    if re.search(r"\bnhu (?:\w+ )?$", norm[max(0, m.start() - 12):m.start()]):
        return True  # a simile: "hàng thủ như bị trói tay"
    return not _anchor_near(norm, m.start(), m.end(), ctx.passive)


# Folded words that are also violent ones; written with accents, the writer says which they mean:
# "khi mô cần tui" is not "cắn tui", "để dành" is not "đánh".
_VIOLENT_SPELLING = {"can": ("cắn",), "tat": ("tát",), "da": ("đá",), "dam": ("đấm", "đâm"), "dap": ("đập", "đạp"),
                     "danh": ("đánh",), "chui": ("chửi",), "xo": ("xô",), "dot": ("đốt",)}


def _typed_otherwise(word: str, lowered: str) -> bool:
    """The folded violent ``word`` was typed with other accents only (never bare, never violent)."""
    forms = _VIOLENT_SPELLING.get(word)
    if not forms or not lowered or lowered == fold(lowered):
        return False
    return not re.search(rf"\b{word}\b", lowered) and not any(f in lowered for f in forms)


def _graded(cue: Cue, m: re.Match | _Span, ctx: _Context) -> tuple[str, str]:
    """The cue's level and topic, raised by what else the message says (now, a child)."""
    norm, level, topic = ctx.norm, cue.level, cue.topic
    if cue.name in ("kill_threat", "stalking") and ctx.now:
        level = "imminent"
    if cue.name == "weapon" and ctx.now and re.search(r"\bdang\b", norm):
        level = "imminent"
    if cue.name == "severe_injury" and _UNCONSCIOUS_OR_BLEEDING.search(norm) and not _PAST.search(norm):
        level = "imminent"
    if cue.name in ("injury", "pregnancy_violence") and _BELLY_BLEEDING.search(norm) and (ctx.now or _GIO_NOW.search(norm)) \
            and not _PAST_ONLY.search(norm):
        level = "imminent"   # bleeding from the womb now, after blows (a miscarriage, a placenta torn): 115 now
    if cue.name in ("trafficking", "sexual_violence", "severe_injury") and _HAPPENING.search(norm) \
            and not _PAST.search(norm):      # "hôm qua … lúc đang ngủ" tells of the past
        level = "imminent"
    if cue.name == "violence" and ctx.child_victim and not PEER.search(norm) \
            and re.search(VIOLENCE, norm[m.start():m.end()]):
        level, topic = "high", "child_abuse"  # an adult hurting a child is child abuse: high
    if cue.name == "sexual_violence" and ctx.child:
        topic = "child_abuse"
    if cue.name == "sexual_violence" and _IMAGE.search(norm[max(0, m.start() - 30):m.end()]):
        # the sexual words are about pictures ("gửi mấy tấm ảnh nhạy cảm", "ảnh ghép … khỏa thân"):
        # image-based abuse, online (TAXONOMY); a threat or a demand is the sextortion cue's (high)
        topic = "online_violence"
        level = "high" if ctx.child or _DEMAND.search(norm) else "medium"
    if cue.name in ("violence", "harassment") and CHILD_STRONG.search(norm) and not PEER.search(norm) \
            and re.search(r"\b(?:anh|hinh|clip|video)\b", norm) and re.search(r"\b(?:doa|gui|dang|tung|phat tan)\b", norm):
        level, topic = "high", "child_abuse"  # sextortion of a child (classmates' pictures are bullying)
    if cue.name == "harassment" and (CHILD_STRONG.search(norm) or (TEACHER.search(norm) and not ADULT_STUDENT.search(norm))):
        level, topic = "high", "child_abuse"  # an adult touching a child (a teacher, a pupil) is abuse, not harassment
    if cue.name == "sextortion" and (CHILD_STRONG.search(norm) or WRITER_CHILD.search(norm)):
        level = "high"     # a child asked for pictures: high, and the subject stays online (the steps that fit)
    return level, topic


def _raise(result: Assessment, level: str, topic: str, reason: str) -> None:
    if risk_rank(level) > risk_rank(result.risk) or result.topic is None:
        result.topic = topic
    result.risk = max_risk(result.risk, level)
    result.reasons.append(reason)


# "Dạ." / "Vâng," at the start of a sentence are politeness, and folded "da em" reads as "đá em"
# (kick me) once the punctuation is gone: they are dropped before the cues look.
_PARTICLE = re.compile(r"(?i)(?:^|(?<=[.!?\n]))\s*(?:dạ|da|vâng|vang|dạ vâng|ừ|ờ|uh|à|a)\s*[.,!…]+")


def _about_subject(ctx: _Context, norm: str) -> bool:
    """A question about the subject, not about a person. A writer who says who they are and what
    they prepare may quote danger words (a handbook on "bleeding after a beating"); a bare question
    about the subject may not."""
    return not ctx.now and (ctx.frame or (ctx.info_like and not _DANGER_WORDS.search(norm)))


def assess(text: str, *, normalized: str | None = None, strict_child: bool = False,
           summary: bool = True) -> Assessment:
    """Risk the text alone shows. ``text`` is the raw message; ``normalized`` may be passed when
    the caller has it already. With ``summary=False`` (a sentence of a long letter) ``child``,
    ``about_subject`` and ``real`` are only filled in when the text shows a risk."""
    text = tidy(text) if text else text
    if text and _PARTICLE.search(text):
        text, normalized = _PARTICLE.sub(" ", text), None
    norm = _ages(normalized if normalized is not None else normalize(text))
    result = Assessment()
    if not norm:
        return result
    ctx = _Context(text, norm, strict_child)
    english = is_english(text)
    for cue in () if english else CUES:
        for m in _matches(cue, ctx):
            if not _ignored(cue, m, ctx):
                _raise(result, *_graded(cue, m, ctx), cue.name)
                break
    for word, level, topic, anchored in () if english else ACCENTED_CUES:
        if word in ctx.lowered and risk_rank(level) > risk_rank(result.risk) and not ctx.info_like:
            if anchored and (ctx.animal or ctx.media or not (ctx.passive or ANCHOR.search(GENERIC.sub("_", norm)))):
                continue
            _raise(result, level, "child_abuse" if topic == "sexual_violence" and ctx.child else topic,
                   f"accented:{fold(word).replace(' ', '_')}")
    _assess_english(ctx.lowered, result)
    if result.topic == "violence":
        # who is hurt decides the topic: a child → child abuse; happening now → emergency;
        # otherwise the usual case, violence at home
        # classmates at school → school violence (an injury there is high, the subject stays)
        result.topic = "school_violence" if PEER.search(norm) and result.risk != "imminent" else (
            "child_abuse" if ctx.child_victim else (
                # "now" that is the violence going on ("đang"), not a wound "still swollen now" ("chừ còn sưng")
                "emergency" if result.risk == "imminent" or (ctx.now and _HAPPENING.search(norm)) else "domestic_violence"))
    if summary or result.risk != "none":
        result.child = ctx.child
        result.about_subject = _about_subject(ctx, norm)
        result.real = ctx.real
    return result


# someone in particular: "học trò của tôi", "con bé nhà hàng xóm", "em gái tôi", a child of an age
PARTICULAR = re.compile(
    r"\b(?:(?:con|chau|em gai|em trai|chi gai|anh trai|chi|anh|ban|ban than|hoc tro|hoc sinh|me|ba|bo|vo|chong|nguoi yeu"
    r"|hang xom|dong nghiep|co be|con be|thang be)(?: \w+)? (?:cua )?(?:toi|em|tui|minh|nha (?:toi|em|ben|hang xom))"
    r"|(?:em|con|chau|be|ban) (?:\w+ )?(?:1[0-7]|[1-9]) (?:tuoi|t)\b)")


_PARTICULAR_BI = re.compile(rf"(?:{PARTICULAR.pattern})(?: \w+){{0,5}} (?<!tranh )(?<!phong )(?<!khoi )(?<!neu )(?<!khi )(?<!lo )(?<!so )bi\b(?! (?:mat|quyet|kip|an|quan|thu|benh|om|cam|sot|xu|phat|tu|truy|ket an|kien))")

# Up to this length a message of several sentences is one event: its whole reading counts in full
# ("Con gái tôi 16 tuổi. Nhà trai bắt về làm vợ."); beyond it the whole adds at most medium.
SHORT_WHOLE = 400


GENERIC_CUES = frozenset({"violence", "fear", "distress"})


_DONE_TO_ME = re.compile(rf"\b(?:da|vua|moi|roi) (?:\w+ ){{0,3}}(?:{HIEP}|cuong buc|xam hai|{KILL}|{DANH}|dap|tat|bop co) "
                         r"(?:toi|em|tui|minh|con toi|con em|vo toi|chi toi|em toi|em gai toi|me toi|chau toi)\b")
# "về đánh tôi, đánh con": a child beside the parent, named only as "con" (not "con gà", "con cờ")
_HITS_CHILD = re.compile(r"\b(?:danh|dap|tat|dam|xo|bop co) con\b(?! (?:ga|meo|cho|heo|lon|vit|chuot|bo|trau|de|chim|ca|ruoi"
                         r"|muoi|sau|ran|gian|nit|co|bai|xuc xac|quay|vu|cu|nguoi|tau|thuyen|dao|doi)\b)")
# In a letter about a child named elsewhere: the child as the one hurt in this sentence ("bé" next to
# the harm, not "bể"), and the writer as the one hurt (then the child only saw it).
_HARM_CUES = frozenset({"violence", "injury", "severe_injury", "strangulation", "locked_in", "weapon"})
_CHILD_HURT = re.compile(r"\b(?:(?:be|chau be|thang be|con be|dua be|dua nho)(?: \w+){0,3} (?:bi|co vet|khoc thet|gao|keu|run|sung|bam)"
                         r"|(?:danh|dap|tat|bop|dut|dan|xo|nem|cau|nhot|khoa) (?:\w+ ){0,2}(?:be|chau be|thang be|con be|dua be|dua nho))\b")
_SELF_HURT = re.compile(r"\b(?:(?:toi|em|tui|minh) (?:\w+ ){0,2}bi|(?:danh|dap|tat|xo|bop co) (?:toi|em|tui|minh|vo))\b")
# the words by which a letter comes back to the writer who said they are a child
_WRITER_AGAIN = re.compile(r"\b(?:em|con|chau|minh|tui|toi|e)\b")


# words that name a child and, for a grown young woman or man, a family's fond name ("con bé" for
# a sister of twenty); and an adult's age
_FOND = frozenset({"con be", "co be", "thang be", "cau be"})
_ADULT_AGE = re.compile(r"\b(?:(?:1[89]|[2-9]\d) ?(?:tuoi|t)|(?:hai|ba|bon|nam|sau|bay|tam|chin) muoi(?: \w+)? tuoi"
                        r"|muoi (?:tam|chin) tuoi)\b")


def _names_a_child(pattern: re.Pattern, text: str, aged: str) -> bool:
    """``pattern`` (a child's words) matches in ``text``, and not only as a fond name ("con bé" for
    a grown sister) in a text (``aged``: ages in digits) that gives an adult's age."""
    found = [m.group() for m in pattern.finditer(text)]
    return bool(found) and not (all(f in _FOND for f in found) and _ADULT_AGE.search(aged))


def _child_named(norm: str, ages: bool = True) -> bool:
    """A letter names a child: an age under 18 (``ages``: also written in words), a school grade,
    "bé"; a fond name alone does not count when the letter gives an adult's age."""
    aged = _ages(norm)
    return _names_a_child(CHILD_STRONG, aged if ages else norm, aged)


def _letter_child(norm: str) -> tuple[str, re.Pattern] | None:
    """The child a long letter is written by ("em 15 tuoi", "em hoc lop 9"), as a phrase to put
    before the sentences where the writer speaks of themselves, and how those sentences do."""
    norm = _ages(norm)
    age = re.search(rf"\b{_AGE} ?(?:tuoi|t)\b", norm)
    writer = WRITER_CHILD.search(norm)
    if writer:
        # the letter's schoolmates come along: a child hurt by classmates is bullied (medium)
        peer = PEER.search(norm)
        return (f"em {age.group()}" if age else writer.group()) + (f" {peer.group()}" if peer else ""), _WRITER_AGAIN
    # a child named by another writer is not carried: put before a sentence, "bé 6 tuổi" would
    # read as the one hurt in any sentence that starts with "bị" (measured on set E: more wrong
    # child-abuse readings than right ones)
    return None


def assess_long(text: str, parts: list[str]) -> Assessment:
    """A message of several sentences (``parts``, from ``bot.nlu.segments``): each sentence and
    each pair of neighbouring sentences (for "he" in the next sentence) is read on its own, and the
    risk is the highest any of them supports. The whole text is read too, but beyond SHORT_WHOLE
    characters it adds at most ``medium`` (someone is hurt somewhere in the story): across a long letter a
    "now" in one sentence and a threat in another, or a child named in one and a beating in
    another, are not one event. A letter about the subject (a talk, a lesson, an essay) counts only
    the sentences that tell of a particular person."""
    if len(parts) < 2:
        return assess(text)
    text = tidy(text)
    if _PARTICLE.search(text):
        text = _PARTICLE.sub(" ", text)
    norm = normalize(text)
    ctx = _Context(text, norm)           # what the whole letter says (the cues are read per window)
    # across a long letter "đang" is the verb's aspect ("em đang làm tình nguyện viên cho một câu
    # lạc bộ"), not danger now: a writer who says who they are and what they prepare writes about
    # the subject whatever the tense, and so does one who says they only ask (a sentence that
    # tells of a particular person is still read below); other questions still need no "now"
    about = _about_subject(ctx, norm) or (len(text) > SHORT_WHOLE and ctx.frame) or bool(_NOT_ME.search(norm))
    whole = Assessment(child=ctx.child, real=ctx.real, about_subject=about)
    result = Assessment(child=whole.child, about_subject=whole.about_subject, real=whole.real)
    hits: list[tuple[str, str]] = []
    windows = [(f"s{k}", p) for k, p in enumerate(parts, 1)]
    # a pair only where the second sentence names nobody ("Tối qua lại đánh. Đau lắm."): with its
    # own "em", "chồng", "nó" it is read well enough alone (and letters are long: time matters)
    windows += [(f"s{k}+", f"{a} {b}") for k, (a, b) in enumerate(zip(parts, parts[1:]), 1)
                if not ANCHOR.search(GENERIC.sub("_", normalize(b)))]
    child = _letter_child(norm)
    named = child is None and _child_named(norm)
    for name, window in windows:
        if child and not CHILD_STRONG.search(_ages(normalize(window))) and child[1].search(normalize(window)):
            # the child who wrote the letter ("I am 15 … they want me as a wife") is the one hurt
            window = f"{child[0]}. {window}"
            a = assess(window, summary=False)
        else:
            a = assess(window, strict_child=True, summary=False)
        # in a letter about the subject the writer's "tôi muốn …" is their work ("tui muốn làm cho
        # đúng"), not an intention of their own: only someone hurt in particular counts
        particular = bool(PARTICULAR.search(normalize(window))) or (
            _Context(window, _ages(normalize(window))).personal(False) if whole.about_subject else a.real)
        if a.risk == "none" or (whole.about_subject and not particular and a.topic != "self_harm"):
            continue
        if named and a.topic not in ("child_abuse", "self_harm") and set(a.reasons) & _HARM_CUES \
                and _CHILD_HURT.search(normalize(window)) and not _SELF_HURT.search(normalize(window)):
            # a child another writer named in another sentence is the one hurt here ("a boy of six
            # or seven next door … every night I hear beating and the boy screaming")
            a.risk, a.topic = max_risk(a.risk, "high"), "child_abuse"
            a.reasons.append("named_child")
        if whole.child and a.topic in ("sexual_harassment", "sexual_violence") and _child_named(norm, ages=False):
            a.risk, a.topic = max_risk(a.risk, "high"), "child_abuse"   # the letter is about a child
        # "violence" and "fear" say someone is hurt or afraid, not what the subject is
        subject = None if set(a.reasons) <= GENERIC_CUES and a.topic in ("domestic_violence", "health_support") \
            else (a.topic or None)
        hits.append((a.risk, subject))
        result.reasons.extend(f"{name}:{r}" for r in a.reasons)
    short = len(text) <= SHORT_WHOLE
    if (short or not hits) and not (whole.about_subject and not whole.real):
        whole = assess(text, strict_child=True)   # costly for a long letter: only when needed
        if whole.risk != "none":
            level = whole.risk if short or len(parts) < 3 else "medium"
            generic = set(whole.reasons) <= GENERIC_CUES and whole.topic in ("domestic_violence", "health_support")
            hits.append((level, None if generic else (whole.topic or None)))
            result.reasons.extend(r for r in whole.reasons if r not in result.reasons)
    if hits:
        result.risk = max_risk(*(r for r, _ in hits))
        top = [t for r, t in hits if r == result.risk and t] or [t for r, t in hits if t]
        if top:
            result.topic = min(top, key=lambda t: _SALIENCE.index(t) if t in _SALIENCE else len(_SALIENCE))
        else:
            result.topic, result.generic_topic = "domestic_violence", True
    return result
