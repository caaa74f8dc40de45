"""The numbers the province reports, from the anonymised episodes (webhook/stats/episodes.py).

Counting rules (docs/indicators.md):
- The unit is a person-year: one year pseudonym. A person's year is summarised from their
  monthly episodes: the most serious GBVIMS type (precedence order), the highest risk, the first
  known locality, age group, sex and relationship, the closest reporter role, and whether in any
  month they sought help, needed help and were helped. Month and quarter tables count the
  persons in contact in that period (a person in two quarters is in both; their year counts once).
- Episodes whose person refused to be counted (consent ``no``) are left out of everything.
- Indicator d: among survivors (a GBV disclosure, written by the person it happened to, or by a
  writer whose role is not known), the share who sought help from a service provider: accepted a
  counsellor (asked for one, or wrote back to one) or were referred.
- Indicator đ: among persons who needed help (a case was opened for them: danger, or they asked),
  the share whose case was resolved with help received (the counsellor's record or the person's
  answer to the follow-up). "Not known yet" is not counted as helped.
- Witnesses, relatives, parents and professionals are counted apart: they are not survivors.
Everything published goes through webhook/stats/suppress.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Optional

from sqlalchemy import and_, case, func, literal, select

from webhook.db import reading
from webhook.models import Episode
from webhook.stats.profile import AGE_GROUPS, GBV_TYPES, REPORTERS, RISKS
from webhook.stats.suppress import MASK, percent, suppress_line, suppress_table

DIMENSIONS = ("former_district", "locality", "gbv_type", "channel", "age_group", "reporter", "sex", "relationship",
              "risk")
PERIODS = ("month", "quarter")
SURVIVOR_ROLES = ("survivor", "student", "unknown")
DISCLOSED = GBV_TYPES[:7]                     # the six core types and "undetermined"
# the order in which a person's roles win when their months disagree
REPORTER_ORDER = ("survivor", "student", "parent", "witness_relative", "professional", "unknown")


def _rank(column, order):
    return case(*[(column == v, i) for i, v in enumerate(order)], else_=len(order))


def _unrank(expr, order):
    return case(*[(expr == i, literal(v)) for i, v in enumerate(order)], else_=literal(None))


def _flag(column):
    return func.max(case((column.is_(True), 1), else_=0))


def person_years(year: int, months: Optional[tuple[int, int]] = None):
    """One row per person of the year (or of months ``(first, last)``), as a subquery."""
    where = [Episode.year == year, Episode.consent != "no"]
    if months:
        where += [Episode.month >= months[0], Episode.month <= months[1]]
    gbv = func.min(_rank(Episode.gbv_type, GBV_TYPES))
    risk = func.max(_rank(Episode.risk, RISKS))
    reporter = func.min(_rank(Episode.reporter, REPORTER_ORDER))
    age = func.min(_rank(Episode.age_group, AGE_GROUPS))
    return (select(Episode.person.label("person"),
                   _unrank(gbv, GBV_TYPES).label("gbv_type"),
                   _unrank(risk, RISKS).label("risk"),
                   _unrank(reporter, REPORTER_ORDER).label("reporter"),
                   _unrank(age, AGE_GROUPS).label("age_group"),
                   func.coalesce(func.max(case((Episode.sex != "unknown", Episode.sex))), "unknown").label("sex"),
                   func.max(Episode.former_district).label("former_district"),
                   func.max(Episode.locality).label("locality"),
                   func.max(Episode.relationship).label("relationship"),
                   func.min(Episode.channel).label("channel"),
                   _flag(Episode.sought_help).label("sought"),
                   _flag(Episode.needed_help).label("needed"),
                   _flag(Episode.helped).label("helped"))
            .where(*where).group_by(Episode.person).subquery())


@dataclass
class Indicators:
    survivors: int = 0
    sought: int = 0
    needed: int = 0
    helped: int = 0
    others: int = 0                  # witnesses, relatives, parents, professionals
    persons: int = 0

    @property
    def d(self):
        return percent(self.sought, self.survivors)

    @property
    def dd(self):                    # đ
        return percent(self.helped, self.needed)


def indicators(s, year: int, months: Optional[tuple[int, int]] = None) -> Indicators:
    p = person_years(year, months)
    disclosed = p.c.gbv_type.in_(DISCLOSED)
    survivor = and_(disclosed, p.c.reporter.in_(SURVIVOR_ROLES))
    row = s.execute(select(
        func.count(),
        func.coalesce(func.sum(case((survivor, 1), else_=0)), 0),
        func.coalesce(func.sum(case((and_(survivor, p.c.sought == 1), 1), else_=0)), 0),
        func.coalesce(func.sum(case((p.c.needed == 1, 1), else_=0)), 0),
        func.coalesce(func.sum(case((and_(p.c.needed == 1, p.c.helped == 1), 1), else_=0)), 0),
        func.coalesce(func.sum(case((and_(disclosed, p.c.reporter.notin_(SURVIVOR_ROLES)), 1), else_=0)), 0),
    ).select_from(p)).one()
    persons, survivors, sought, needed, helped, others = (int(v or 0) for v in row)
    return Indicators(survivors, sought, needed, helped, others, persons)


def breakdown(s, year: int, by: str, months: Optional[tuple[int, int]] = None) -> list[tuple[str, int]]:
    """Persons of the year per value of one dimension (raw counts; publish through ``table``)."""
    if by not in DIMENSIONS:
        raise ValueError(f"by must be one of {', '.join(DIMENSIONS)}")
    p = person_years(year, months)
    col = getattr(p.c, by)
    rows = s.execute(select(func.coalesce(col, "unknown"), func.count()).select_from(p)
                     .group_by(func.coalesce(col, "unknown")).order_by(func.coalesce(col, "unknown"))).all()
    return [(str(k), int(n)) for k, n in rows]


def by_period(s, year: int, period: str = "month") -> list[tuple[int, int]]:
    """Persons in contact per month or quarter (each period counts its own persons)."""
    if period not in PERIODS:
        raise ValueError("period must be month or quarter")
    key = Episode.month if period == "month" else case(*[(Episode.month <= 3 * q, q) for q in (1, 2, 3)], else_=4)
    rows = s.execute(select(key, func.count(func.distinct(Episode.person)))
                     .where(Episode.year == year, Episode.consent != "no").group_by(key).order_by(key)).all()
    return [(int(k), int(n)) for k, n in rows]


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list] = field(default_factory=list)
    total: list = field(default_factory=list)
    note: str = ""


def table(gw, year: int, by: str) -> Table:
    """A published one-dimension table: persons per value, suppressed, with its total."""
    with reading(gw.Session) as s:
        raw = breakdown(s, year, by)
    values = [n for _k, n in raw]
    cells, total = suppress_line(values, sum(values))
    names = [district_name(k) if by == "former_district" else k for k, _n in raw]
    return Table(title=f"{year} {by}", header=[by, "persons"], rows=[[k, c] for k, c in zip(names, cells)],
                 total=["total", total])


def cross(gw, year: int, by: str, period: str = "quarter") -> Table:
    """Persons per period (rows) and value (columns), suppressed in both directions."""
    with reading(gw.Session) as s:
        periods = range(1, 13 if period == "month" else 5)
        data = {}
        keys: set = set()
        for n in periods:
            months = (n, n) if period == "month" else (3 * n - 2, 3 * n)
            for k, count in breakdown(s, year, by, months):
                data[(n, k)] = count
                keys.add(k)
    keys_sorted = sorted(keys)
    cells = [[data.get((n, k), 0) for k in keys_sorted] for n in periods]
    row_totals = [sum(r) for r in cells]
    col_totals = [sum(cells[i][j] for i in range(len(cells))) for j in range(len(keys_sorted))]
    masked, rows, cols, grand = suppress_table(cells, row_totals, col_totals)
    names = [district_name(k) if by == "former_district" else k for k in keys_sorted]
    return Table(title=f"{year} {period} x {by}", header=[period, *names, "total"],
                 rows=[[n, *masked[i], rows[i]] for i, n in enumerate(periods)],
                 total=["total", *cols, grand],
                 note="a person in contact in two periods is counted in both")


def indicator_table(gw, year: int, period: str = "quarter") -> Table:
    """Indicators d and đ for the year and per period (the trend), each share suppressed."""
    with reading(gw.Session) as s:
        out = [("year", indicators(s, year))]
        for n in range(1, 13 if period == "month" else 5):
            months = (n, n) if period == "month" else (3 * n - 2, 3 * n)
            out.append((str(n), indicators(s, year, months)))
    rows = []
    for label, ind in out:
        counts, _t = suppress_line([ind.sought, ind.survivors - ind.sought], ind.survivors)
        rows.append([label, ind.survivors if ind.survivors == 0 or ind.survivors >= 5 else "<5", counts[0], ind.d,
                     ind.needed if ind.needed == 0 or ind.needed >= 5 else "<5",
                     suppress_line([ind.helped, ind.needed - ind.helped], ind.needed)[0][0], ind.dd])
    return Table(title=f"{year} indicators d and đ", header=[period, "survivors", "sought help", "d (per cent)", "needed help",
                                                              "helped", "đ (per cent)"], rows=rows)


def locality_table(gw, year: int) -> Table:
    """Per former district: persons, survivors, sought help, d, needed help, helped, đ. Each
    count column is suppressed down the districts (they add up to its total)."""
    p = person_years(year)
    disclosed = p.c.gbv_type.in_(DISCLOSED)
    survivor = and_(disclosed, p.c.reporter.in_(SURVIVOR_ROLES))
    key = func.coalesce(p.c.former_district, "unknown")
    with reading(gw.Session) as s:
        raw = s.execute(select(
            key, func.count(),
            func.sum(case((survivor, 1), else_=0)), func.sum(case((and_(survivor, p.c.sought == 1), 1), else_=0)),
            func.sum(case((p.c.needed == 1, 1), else_=0)),
            func.sum(case((and_(p.c.needed == 1, p.c.helped == 1), 1), else_=0)),
        ).select_from(p).group_by(key).order_by(key)).all()
    names = [r[0] for r in raw]
    columns = [[int(r[i] or 0) for r in raw] for i in range(1, 6)]
    masked = [suppress_line(col, sum(col)) for col in columns]
    rows = []
    for i, name in enumerate(names):
        persons, surv, sought, needed, helped = (m[0][i] for m in masked)
        rows.append([district_name(name), persons, surv, sought, _share(sought, surv, columns[2][i], columns[1][i]),
                     needed, helped, _share(helped, needed, columns[4][i], columns[3][i])])
    totals = [m[1] for m in masked]
    total = ["total", totals[0], totals[1], totals[2], percent(sum(columns[2]), sum(columns[1])), totals[3], totals[4],
             percent(sum(columns[4]), sum(columns[3]))]
    return Table(title=f"{year} by former district", header=["former district", "persons", "survivors", "sought help",
                                                              "d (per cent)", "needed help", "helped", "đ (per cent)"],
                 rows=rows, total=total, note="the 18 former district-level units of Quảng Nam (before 1/7/2025)")


def _share(shown_num, shown_den, num: int, den: int):
    """A share in a table whose counts were suppressed: never shown when either count is
    hidden (a percentage would give the hidden count back)."""
    if not isinstance(shown_num, int) or not isinstance(shown_den, int):
        return MASK if den else None
    return percent(num, den)


@lru_cache(maxsize=1)
def _district_names() -> dict:
    import yaml

    from bot.paths import ROOT

    data = yaml.safe_load((ROOT / "data" / "kb" / "localities.yml").read_text("utf-8"))
    return {item["id"]: item["name_vi"] for item in data.get("localities", [])}


def district_name(value: str) -> str:
    return _district_names().get(value, value)


def yearly_tables(gw, year: int) -> list[Table]:
    """Every table of the yearly report, in order."""
    return ([indicator_table(gw, year, "quarter"), locality_table(gw, year)]
            + [table(gw, year, by) for by in ("gbv_type", "age_group", "sex", "reporter", "relationship", "channel")]
            + [cross(gw, year, "gbv_type", "quarter")])


def yearly_docx(gw, year: int) -> bytes:
    """The yearly report for the department in charge (a Word document): the plan's indicators,
    a table per former district and the breakdowns, all suppressed."""
    from webhook.stats import incidents
    from webhook.stats.export import LEGEND, to_docx

    tables = yearly_tables(gw, year)
    serious = [i for i in incidents.pending(gw, include_submitted=True) if i.opened_day.year == year]
    late = sum(1 for i in serious if not i.submitted and i.days_left < 0)
    blocks = [
        f"Kính gửi: {gw.settings.report_to}",
        f"Đường dây hỗ trợ phòng, chống bạo lực trên cơ sở giới, Quảng Nam (nay thuộc thành phố Đà Nẵng). "
        f"Số liệu năm {year} về những người đã liên hệ với đường dây, thực hiện Kế hoạch 2021–2025 theo Quyết định "
        f"2232/QĐ-TTg.",
        ("h", "1. Chỉ tiêu"),
        "d: ít nhất 50% người bị bạo lực trên cơ sở giới tìm đến sự hỗ trợ của cơ sở cung cấp dịch vụ. "
        "đ: 100% trường hợp có nhu cầu hỗ trợ được hỗ trợ dưới các hình thức khác nhau.",
        "Cách tính (docs/indicators.md): mỗi người được tính một lần trong năm; d = số người bị bạo lực đã chấp nhận "
        "tư vấn viên hoặc được chuyển tuyến / số người bị bạo lực đã liên hệ; đ = số người có ca được kết thúc với "
        "kết quả đã nhận hỗ trợ / số người có ca cần hỗ trợ. Người chứng kiến, người thân, cha mẹ và cán bộ được tính "
        "riêng. Số liệu chỉ phản ánh người đã liên hệ với đường dây.",
        tables[0],
        ("h", "2. Theo địa bàn (18 đơn vị cấp huyện cũ)"), tables[1],
        ("h", "3. Theo loại bạo lực (GBVIMS), nhóm tuổi, giới tính, người liên hệ, quan hệ với người gây bạo lực, kênh"),
        *tables[2:],
        ("h", "4. Vụ việc nghiêm trọng"),
        f"Số vụ việc nghiêm trọng (nguy hiểm tức thời) trong năm: {_count(len(serious))}; "
        f"đã gửi báo cáo: {_count(sum(1 for i in serious if i.submitted))}; quá hạn 10 ngày chưa gửi: {_count(late)}.",
        ("h", "Bảo vệ dữ liệu"),
        "Không có nội dung tin nhắn, số điện thoại hay mã định danh nào trong báo cáo. Ô có từ 1 đến 4 người được "
        "ghi \"<5\"; ô \"x\" được ẩn để không suy ra được ô \"<5\" từ tổng. " + LEGEND,
    ]
    return to_docx(f"Báo cáo năm {year}: thống kê ẩn danh của đường dây hỗ trợ", blocks)


def _count(n: int):
    return n if n == 0 or n >= 5 else "<5"
