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
Every table is read from ``stat_counts``, kept up to date as episodes change
(webhook/stats/cube.py); ``ScanCounts``, ``indicators`` and ``breakdown`` compute the same numbers
from the episodes themselves (the reference, and how the counts are rebuilt).
Everything published goes through webhook/stats/suppress.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from sqlalchemy import String, and_, case, cast, func, literal, select, text, union_all

from webhook.db import reading
from webhook.models import Episode, StatCount
from webhook.stats.profile import AGE_GROUPS, GBV_TYPES, REPORTERS, RISKS
from webhook.stats.suppress import MASK, percent, suppress_line, suppress_table

from webhook.stats.cube import DIMENSIONS, DISCLOSED, NUMBERS, REPORTER_ORDER, SURVIVOR_ROLES  # noqa: E402

PERIODS = ("month", "quarter")


def tune_for_scan(s) -> None:
    """Before grouping a big year's episodes by person (``ScanCounts``: a rebuild or a check):
    on PostgreSQL enough memory to group in memory instead of spilling to disk, and no JIT
    (compiling these queries costs more than it saves). Transaction-local."""
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SET LOCAL work_mem = '64MB'"))
        s.execute(text("SET LOCAL jit = off"))


def _rank(column, order):
    return case(*[(column == v, i) for i, v in enumerate(order)], else_=len(order))


def _unrank(expr, order):
    return case(*[(expr == i, literal(v)) for i, v in enumerate(order)], else_=literal(None))


def _flag(column):
    return func.max(case((column.is_(True), 1), else_=0))


def _period_key(period: str):
    if period not in PERIODS:
        raise ValueError("period must be month or quarter")
    return Episode.month if period == "month" else case(*[(Episode.month <= 3 * q, q) for q in (1, 2, 3)], else_=4)


def _text(column, dialect: str):
    """Text compared by code point on both databases (PostgreSQL's default collation may order
    "nam_giang" and "namgiang" otherwise): the greatest of two names is the same in SQL and in
    webhook/stats/cube.py."""
    return column.collate("C") if dialect == "postgresql" else column


def _ranked(year: int, months: Optional[tuple[int, int]] = None, period: Optional[str] = None, dialect: str = ""):
    """The person rows with GBV type, risk, reporter and age group as their rank in ``GBV_TYPES``,
    ``RISKS``, ``REPORTER_ORDER`` and ``AGE_GROUPS`` (the length of the list: not in it)."""
    where = [Episode.year == year, Episode.consent != "no"]
    if months:
        where += [Episode.month >= months[0], Episode.month <= months[1]]
    keys = [Episode.person.label("person")] + ([_period_key(period).label("period")] if period else [])
    return (select(*keys,
                   func.min(_rank(Episode.gbv_type, GBV_TYPES)).label("gbv_type"),
                   func.max(_rank(Episode.risk, RISKS)).label("risk"),
                   func.min(_rank(Episode.reporter, REPORTER_ORDER)).label("reporter"),
                   func.min(_rank(Episode.age_group, AGE_GROUPS)).label("age_group"),
                   func.coalesce(func.max(case((Episode.sex != "unknown", _text(Episode.sex, dialect)))),
                                 "unknown").label("sex"),
                   func.max(_text(Episode.former_district, dialect)).label("former_district"),
                   func.max(_text(Episode.locality, dialect)).label("locality"),
                   func.max(_text(Episode.relationship, dialect)).label("relationship"),
                   func.min(_text(Episode.channel, dialect)).label("channel"),
                   _flag(Episode.sought_help).label("sought"),
                   _flag(Episode.needed_help).label("needed"),
                   _flag(Episode.helped).label("helped"))
            .where(*where).group_by(*keys))


RANKED = {"gbv_type": GBV_TYPES, "risk": RISKS, "reporter": REPORTER_ORDER, "age_group": AGE_GROUPS}


def person_years(year: int, months: Optional[tuple[int, int]] = None, dialect: str = ""):
    """One row per person of the year (or of months ``(first, last)``), as a subquery."""
    # Each rank is aggregated once, in the inner query, and turned back into its label outside it:
    # _unrank(min(rank)) in one query repeats the aggregate once per label, which the databases do
    # not merge (each copy has its own bound parameters), so every row was ranked ~26 times.
    ranked = _ranked(year, months, dialect=dialect).subquery()
    return select(*[_unrank(c, RANKED[c.name]).label(c.name) if c.name in RANKED else c
                    for c in ranked.c]).subquery()


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
    p = person_years(year, months, s.get_bind().dialect.name)
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
    p = person_years(year, months, s.get_bind().dialect.name)
    col = getattr(p.c, by)
    rows = s.execute(select(func.coalesce(col, "unknown"), func.count()).select_from(p)
                     .group_by(func.coalesce(col, "unknown")).order_by(func.coalesce(col, "unknown"))).all()
    return [(str(k), int(n)) for k, n in rows]


def by_period(s, year: int, period: str = "month") -> list[tuple[int, int]]:
    """Persons in contact per month or quarter (each period counts its own persons)."""
    if period not in PERIODS:
        raise ValueError("period must be month or quarter")
    rows = s.execute(select(StatCount.period, StatCount.persons)
                     .where(StatCount.year == year, StatCount.kind == period, StatCount.dim == "",
                            StatCount.persons > 0).order_by(StatCount.period)).all()
    return [(int(k), int(n)) for k, n in rows]


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list] = field(default_factory=list)
    total: list = field(default_factory=list)
    note: str = ""


class ScanCounts:
    """Raw (unsuppressed) counts of one year computed from its episodes in ONE pass (grouped by
    person): for the year, or for each month or quarter (``period``), the indicators' numbers in
    total and per value of each dimension in ``dims``. Seconds on a big year: the reports read
    ``Counts`` (kept up to date by webhook/stats/cube.py) instead; this is how that table is
    rebuilt and checked."""

    def __init__(self, s, year: int, period: Optional[str] = None, dims=()):
        self.dims = frozenset(dims)
        r = _ranked(year, period=period, dialect=s.get_bind().dialect.name).subquery()
        disclosed = r.c.gbv_type < len(DISCLOSED)
        roles = [REPORTER_ORDER.index(v) for v in SURVIVOR_ROLES]
        survivor = and_(disclosed, r.c.reporter.in_(roles))
        flags = [case((survivor, 1), else_=0).label("survivor"),
                 case((and_(survivor, r.c.sought == 1), 1), else_=0).label("survivor_sought"),
                 r.c.needed.label("needed_help"),
                 case((and_(r.c.needed == 1, r.c.helped == 1), 1), else_=0).label("needed_helped"),
                 case((and_(disclosed, r.c.reporter.notin_(roles)), 1), else_=0).label("other")]
        per = [r.c.period] if period else []
        # the person rows, with only the columns needed (the rest of the aggregates is not
        # computed), are made once and read by every branch below
        p = select(*per, *[r.c[d] for d in DIMENSIONS if d in self.dims], *flags).cte("p").prefix_with("MATERIALIZED")
        per = [p.c.period] if period else []
        sums = [func.count()] + [func.sum(p.c[f.name]) for f in flags]
        branches = [select(literal(""), *(per or [literal(0)]), literal(""), *sums).select_from(p).group_by(*per)]
        for dim in DIMENSIONS:
            if dim in self.dims:
                value = cast(p.c[dim], String) if dim in RANKED else p.c[dim]      # one type for the UNION
                branches.append(select(literal(dim), *(per or [literal(0)]), value, *sums).select_from(p)
                                .group_by(*per, p.c[dim]))
        self.data: dict[tuple[str, int], dict[str, tuple]] = {}
        for dim, n, value, *numbers in s.execute(union_all(*branches)).all():
            if dim in RANKED:
                order = RANKED[dim]
                value = order[int(value)] if value is not None and 0 <= int(value) < len(order) else None
            cell = self.data.setdefault((dim, int(n)), {})
            key = "unknown" if value is None else str(value)
            old = cell.get(key, (0,) * 6)
            cell[key] = tuple(a + int(b or 0) for a, b in zip(old, numbers))

    def indicators(self, n: int = 0) -> Indicators:
        """Of the year (0) or of period ``n``."""
        persons, survivors, sought, needed, helped, others = self.data.get(("", n), {}).get("", (0,) * 6)
        return Indicators(survivors, sought, needed, helped, others, persons)

    def values(self, by: str, n: int = 0) -> list[tuple[str, tuple]]:
        """(value, (persons, survivors, sought, needed, helped, others)), sorted by value."""
        if by not in self.dims:
            raise ValueError(f"{by} was not counted")
        return sorted(self.data.get((by, n), {}).items())


class Counts:
    """The same numbers as ``ScanCounts``, read from ``stat_counts`` (a few thousand rows): every
    dimension, for the year (``period`` None) or each month or quarter."""

    def __init__(self, s, year: int, period: Optional[str] = None):
        self.dims = frozenset(DIMENSIONS)
        self.data: dict[tuple[str, int], dict[str, tuple]] = {}
        rows = s.execute(select(StatCount.dim, StatCount.period, StatCount.value,
                                *[getattr(StatCount, n) for n in NUMBERS])
                         .where(StatCount.year == year, StatCount.kind == (period or "year"), StatCount.persons > 0))
        for dim, n, value, *numbers in rows:
            self.data.setdefault((dim, int(n)), {})[value] = tuple(int(v) for v in numbers)

    indicators = ScanCounts.indicators
    values = ScanCounts.values


class Stats:
    """The counts of one year for the tables of one page or report: each period kind is read
    once (every dimension at once) and shared by the tables built from it."""

    def __init__(self, gw, year: int):
        self.gw, self.year, self._counts = gw, year, {}

    def counts(self, period: Optional[str] = None, dim: Optional[str] = None) -> Counts:
        if dim is not None and dim not in DIMENSIONS:
            raise ValueError(f"by must be one of {', '.join(DIMENSIONS)}")
        if period is not None and period not in PERIODS:
            raise ValueError("period must be month or quarter")
        if period not in self._counts:
            with reading(self.gw.Session) as s:       # no write lock: a page never holds up a message
                self._counts[period] = Counts(s, self.year, period)
        return self._counts[period]


def _stats(gw, year: int, stats: Optional[Stats]) -> Stats:
    return stats if stats is not None and stats.year == year else Stats(gw, year)


def table(gw, year: int, by: str, stats: Optional[Stats] = None) -> Table:
    """A published one-dimension table: persons per value, suppressed, with its total."""
    raw = [(k, v[0]) for k, v in _stats(gw, year, stats).counts(None, by).values(by)]
    values = [n for _k, n in raw]
    cells, total = suppress_line(values, sum(values))
    names = [district_name(k) if by == "former_district" else k for k, _n in raw]
    return Table(title=f"{year} {by}", header=[by, "persons"], rows=[[k, c] for k, c in zip(names, cells)],
                 total=["total", total])


def cross(gw, year: int, by: str, period: str = "quarter", stats: Optional[Stats] = None) -> Table:
    """Persons per period (rows) and value (columns), suppressed in both directions."""
    if period not in PERIODS:
        raise ValueError("period must be month or quarter")
    periods = range(1, 13 if period == "month" else 5)
    counts = _stats(gw, year, stats).counts(period, by)
    data = {(n, k): v[0] for n in periods for k, v in counts.values(by, n)}
    keys = {k for _n, k in data}
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


def indicator_table(gw, year: int, period: str = "quarter", stats: Optional[Stats] = None) -> Table:
    """Indicators d and đ for the year and per period (the trend), each share suppressed."""
    if period not in PERIODS:
        raise ValueError("period must be month or quarter")
    st = _stats(gw, year, stats)
    each = st.counts(period)
    out = [("year", st.counts().indicators())]
    out += [(str(n), each.indicators(n)) for n in range(1, 13 if period == "month" else 5)]
    rows = []
    for label, ind in out:
        counts, _t = suppress_line([ind.sought, ind.survivors - ind.sought], ind.survivors)
        rows.append([label, ind.survivors if ind.survivors == 0 or ind.survivors >= 5 else "<5", counts[0], ind.d,
                     ind.needed if ind.needed == 0 or ind.needed >= 5 else "<5",
                     suppress_line([ind.helped, ind.needed - ind.helped], ind.needed)[0][0], ind.dd])
    return Table(title=f"{year} indicators d and đ", header=[period, "survivors", "sought help", "d (per cent)", "needed help",
                                                              "helped", "đ (per cent)"], rows=rows)


def locality_table(gw, year: int, stats: Optional[Stats] = None) -> Table:
    """Per former district: persons, survivors, sought help, d, needed help, helped, đ. Each
    count column is suppressed down the districts (they add up to its total)."""
    raw = [(k, *v[:5]) for k, v in _stats(gw, year, stats).counts(None, "former_district").values("former_district")]
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


def targets(year: int) -> dict:
    """{"d": 50, "dd": 100}: the targets of the plans in force in ``year`` (data/kb/plans.yml)."""
    from bot.kb import plans

    return {k: v for k, (v, _plan) in plans.targets(year).items()}


def plans_text(year: int) -> str:
    """What the year's numbers are measured against, in Vietnamese: the plans in force and their
    targets, or that no plan in force sets a target for d and đ (data/kb/plans.yml)."""
    from bot.kb import plans

    found = plans.targets(year)
    names = {"d": "d: người bị bạo lực trên cơ sở giới tìm kiếm sự trợ giúp từ cơ quan cung cấp dịch vụ",
             "dd": "đ: trường hợp có nhu cầu trợ giúp được trợ giúp"}
    if found:
        parts = []
        for key in ("d", "dd"):
            if key in found:
                value, plan = found[key]
                parts.append(f"{names[key]}, chỉ tiêu {'ít nhất ' if key == 'd' else ''}{value:g}% "
                             f"({plan.name_vi}, {plan.instrument}; đến {plan.until.strftime('%d/%m/%Y')}).")
        return " ".join(parts)
    ended = [p for p in plans.plans() if p.targets and p.until.year < year]
    last = max(ended, key=lambda p: p.until) if ended else None
    context = [p.context_vi for p in plans.in_force(year) if p.context_vi]
    out = (f"Năm {year} không có chương trình hay kế hoạch đang có hiệu lực đặt chỉ tiêu cho d và đ; số liệu d "
           f"(tỷ lệ người bị bạo lực tìm kiếm sự trợ giúp) và đ (tỷ lệ người cần trợ giúp được trợ giúp) được báo "
           f"cáo không kèm chỉ tiêu.")
    if last:
        out += f" {last.name_vi} ({last.instrument}) đã kết thúc ngày {last.until.strftime('%d/%m/%Y')}."
    if context:
        out += " Để tham khảo: " + "; ".join(context) + "."
    return out


def district_name(value: str) -> str:
    from bot.kb import places

    return places.load().district_name(value)


YEARLY_DIMS = ("gbv_type", "age_group", "sex", "reporter", "relationship", "channel")


def yearly_tables(gw, year: int) -> list[Table]:
    """Every table of the yearly report, in order."""
    st = Stats(gw, year)
    return ([indicator_table(gw, year, "quarter", st), locality_table(gw, year, st)]
            + [table(gw, year, by, st) for by in YEARLY_DIMS]
            + [cross(gw, year, "gbv_type", "quarter", st)])


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
        f"Số liệu năm {year} về những người đã liên hệ với đường dây.",
        ("h", "1. Chỉ tiêu"),
        plans_text(year),
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
