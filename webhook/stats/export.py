"""Published tables as text, CSV or JSON (XLSX/DOCX and charts: issue 5, next increment).
Only ``report.Table`` objects come here, and they are already suppressed."""
from __future__ import annotations

import csv
import io
import json

from webhook.stats.report import Table


def _cell(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(v)


def to_text(t: Table) -> str:
    grid = [t.header] + [[_cell(v) for v in r] for r in t.rows] + ([[_cell(v) for v in t.total]] if t.total else [])
    widths = [max(len(str(r[i])) for r in grid) for i in range(len(t.header))]
    lines = [t.title, ""]
    for n, r in enumerate(grid):
        lines.append("  ".join(str(c).rjust(w) if n and i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    if t.note:
        lines += ["", t.note]
    lines.append('"<5": 1 to 4 persons; "x": hidden so that a "<5" cannot be worked out; "—": nothing to count')
    return "\n".join(lines)


def to_csv(t: Table) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(t.header)
    for r in t.rows:
        w.writerow([_cell(v) for v in r])
    if t.total:
        w.writerow([_cell(v) for v in t.total])
    return out.getvalue()


def to_json(t: Table) -> str:
    return json.dumps({"title": t.title, "header": t.header, "rows": t.rows, "total": t.total, "note": t.note},
                      ensure_ascii=False)


FORMATS = {"text": to_text, "csv": to_csv, "json": to_json}


# --- the documents for officials are in the helpline's language (HELPLINE_LOCALE, Vietnamese) ---

def _words() -> dict:
    from bot.messages import _

    return {w: _(w) for w in (
        "persons", "survivors", "sought help", "d (per cent)", "needed help", "helped", "đ (per cent)", "quarter",
        "month", "total", "year", "former district", "gbv_type", "former_district", "age_group", "sex", "reporter",
        "relationship", "channel", "risk", "locality", "indicators d and đ", "by former district",
        "a person in contact in two periods is counted in both",
        "the 18 former district-level units of Quảng Nam (before 1/7/2025)")}


def localize(t: Table) -> Table:
    """Headers, titles, notes and the "total"/"year" labels translated; values and codes kept."""
    words = _words()
    tr = lambda v: words.get(v, v) if isinstance(v, str) else v          # noqa: E731
    year, _sep, rest = t.title.partition(" ")
    title = f"{year} " + " × ".join(tr(part) for part in rest.split(" x "))
    return Table(title=title, header=[tr(h) for h in t.header], rows=[[tr(r[0]), *r[1:]] for r in t.rows],
                 total=[tr(v) for v in t.total], note=tr(t.note))


# --- Office Open XML, written by hand (no extra dependency; opens in Excel, LibreOffice, Word) ---

import re
import zipfile
from xml.sax.saxutils import escape

_CT_XLSX = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '{sheets}</Types>')
_RELS = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
         '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
         '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
         'officeDocument" Target="{target}"/></Relationships>')


def _sheet_name(title: str, used: set) -> str:
    name = re.sub(r"[\[\]:*?/\\]", " ", title)[:28] or "Sheet"
    base, n = name, 2
    while name in used:
        name, n = f"{base[:25]} {n}", n + 1
    used.add(name)
    return name


def _xlsx_cell(ref: str, v) -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return f'<c r="{ref}"><v>{v}</v></c>'
    return f'<c r="{ref}" t="inlineStr"><is><t>{escape(_cell(v))}</t></is></c>'


def _col(n: int) -> str:
    s = ""
    n += 1
    while n:
        n, r = divmod(n - 1, 26)
        s = chr(65 + r) + s
    return s


def to_xlsx(tables: list[Table]) -> bytes:
    """One worksheet per table: title, header, rows, total, note, and the legend."""
    used: set = set()
    sheets = []
    for t in map(localize, tables):
        lines = [[t.title], [], t.header, *t.rows] + ([t.total] if t.total else []) + \
            ([[], [t.note]] if t.note else []) + [[], [LEGEND]]
        xml_rows = "".join(
            f'<row r="{i + 1}">' + "".join(_xlsx_cell(f"{_col(j)}{i + 1}", v) for j, v in enumerate(line)) + "</row>"
            for i, line in enumerate(lines))
        sheets.append((_sheet_name(t.title, used),
                       '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                       '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                       f'<sheetData>{xml_rows}</sheetData></worksheet>'))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", _CT_XLSX.format(sheets="".join(
            f'<Override PartName="/xl/worksheets/sheet{i + 1}.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            for i in range(len(sheets)))))
        z.writestr("_rels/.rels", _RELS.format(target="xl/workbook.xml"))
        z.writestr("xl/workbook.xml",
                   '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                   '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
                   'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
                   + "".join(f'<sheet name="{escape(name, {chr(34): "&quot;"})}" sheetId="{i + 1}" r:id="rId{i + 1}"/>'
                             for i, (name, _x) in enumerate(sheets)) + "</sheets></workbook>")
        z.writestr("xl/_rels/workbook.xml.rels",
                   '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                   '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                   + "".join(f'<Relationship Id="rId{i + 1}" Type="http://schemas.openxmlformats.org/officeDocument/'
                             f'2006/relationships/worksheet" Target="worksheets/sheet{i + 1}.xml"/>'
                             for i in range(len(sheets))) + "</Relationships>")
        for i, (_name, xml) in enumerate(sheets):
            z.writestr(f"xl/worksheets/sheet{i + 1}.xml", xml)
    return buf.getvalue()


LEGEND = '"<5": 1 to 4 persons; "x": hidden so that a "<5" cannot be worked out; "—": nothing to count'


def _p(text: str, bold: bool = False, size: int = 0) -> str:
    props = ("<w:b/>" if bold else "") + (f'<w:sz w:val="{size}"/>' if size else "")
    rpr = f"<w:rPr>{props}</w:rPr>" if props else ""
    return f'<w:p><w:r>{rpr}<w:t xml:space="preserve">{escape(text)}</w:t></w:r></w:p>'


def _tbl(t: Table) -> str:
    border = "".join(f'<w:{s} w:val="single" w:sz="4" w:space="0" w:color="999999"/>'
                     for s in ("top", "left", "bottom", "right", "insideH", "insideV"))
    rows = [t.header, *t.rows] + ([t.total] if t.total else [])
    body = "".join("<w:tr>" + "".join(
        f'<w:tc><w:p><w:r>{"<w:rPr><w:b/></w:rPr>" if r == 0 else ""}'
        f'<w:t xml:space="preserve">{escape(_cell(v))}</w:t></w:r></w:p></w:tc>' for v in row) + "</w:tr>"
        for r, row in enumerate(rows))
    return f'<w:tbl><w:tblPr><w:tblBorders>{border}</w:tblBorders></w:tblPr>{body}</w:tbl>'


def to_docx(title: str, blocks: list) -> bytes:
    """A Word document: ``blocks`` are strings (paragraphs), ("h", text) headings and tables."""
    parts = [_p(title, bold=True, size=32)]
    for b in blocks:
        if isinstance(b, Table):
            b = localize(b)
            parts += [_p(b.title, bold=True), _tbl(b)] + ([_p(b.note)] if b.note else []) + [_p("")]
        elif isinstance(b, tuple) and b[0] == "h":
            parts.append(_p(b[1], bold=True, size=26))
        else:
            parts.append(_p(str(b)))
    doc = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
           '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
           + "".join(parts) + '<w:sectPr><w:pgSz w:w="11906" w:h="16838"/></w:sectPr></w:body></w:document>')
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml",
                   '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                   '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                   '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                   '<Default Extension="xml" ContentType="application/xml"/>'
                   '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
                   'officedocument.wordprocessingml.document.main+xml"/></Types>')
        z.writestr("_rels/.rels", _RELS.format(target="word/document.xml"))
        z.writestr("word/document.xml", doc)
    return buf.getvalue()


# Marked for Babel: the words ``localize`` translates.
def _marks():  # pragma: no cover - never called, read by `pybabel extract`
    from bot.messages import _
    return (_("persons"), _("survivors"), _("sought help"), _("d (per cent)"), _("needed help"), _("helped"),
            _("đ (per cent)"), _("quarter"), _("month"), _("total"), _("year"), _("former district"), _("gbv_type"),
            _("former_district"), _("age_group"), _("sex"), _("reporter"), _("relationship"), _("channel"), _("risk"),
            _("locality"), _("indicators d and đ"), _("by former district"),
            _("a person in contact in two periods is counted in both"),
            _("the 18 former district-level units of Quảng Nam (before 1/7/2025)"))
