"""The PDF report (fpdf2): the title and the facts, then the charts on the same page, then the
matching images with thumbnails. Every time is in the report's time zone."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib
from fpdf import FPDF
from fpdf.fonts import FontFace

from imagedex.reports import times
from imagedex.reports.data import ReportData, ReportRow
from imagedex.reports.render_charts import chart_png

FONT = "DejaVu"
# DejaVu ships with matplotlib: unicode titles and labels without a download or a system font
_FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def _document(data: ReportData) -> FPDF:
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_creation_date(data.generated_at)
    pdf.set_title(data.title)
    pdf.set_creator("imagedex")
    pdf.add_font(FONT, "", str(_FONT_DIR / "DejaVuSans.ttf"))
    pdf.add_font(FONT, "B", str(_FONT_DIR / "DejaVuSans-Bold.ttf"))
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_margins(15, 15, 15)
    return pdf


def _summary(pdf: FPDF, data: ReportData) -> None:
    """The title and what the report covers, compact, so that page 1 goes on with the charts."""
    pdf.add_page()
    pdf.set_font(FONT, "B", 20)
    pdf.multi_cell(0, 10, data.title, align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    top = data.charts.labels[0] if data.charts.labels else None
    window = "all time" if data.window == "all" else f"{data.window}: {data.period}"
    facts = [
        ("Query", data.query or "(every image)"),
        ("Window", window),
        ("Generated at", f"{data.generated} ({data.timezone})"),
        ("Matching images", str(data.total)),
        ("Listed below", f"{len(data.rows)} newest" if data.rows else "none"),
        ("Top label", f"{top[0]} ({top[1]} images)" if top else "none"),
        ("Unsafe images", str(data.charts.unsafe)),
    ]
    if data.ingest is not None:
        queue = data.ingest["queue"]
        facts.append(("Queue", f"{queue['visible']} waiting, {queue['in_flight']} in progress"))
        facts.append(("Dead letters", str(data.ingest["dead_letters"])))
        facts.append(("Indexed last hour", str(data.ingest["throughput"]["last_hour"])))
    for name, value in facts:
        pdf.set_font(FONT, "B", 10)
        pdf.cell(40, 6, name)
        pdf.set_font(FONT, "", 10)
        pdf.multi_cell(0, 6, value, new_x="LMARGIN", new_y="NEXT")


def _charts(pdf: FPDF, data: ReportData) -> None:
    """Images over time across the page, then the other four charts two by two, each pair on
    a new page only when it does not fit on this one."""
    pdf.ln(4)
    wide = pdf.epw
    over_time_height = wide * 3.0 / 8.0
    if pdf.get_y() + over_time_height > pdf.page_break_trigger:
        pdf.add_page()
    pdf.image(io.BytesIO(chart_png("over_time", data.charts, (8.0, 3.0))), w=wide)
    gap = 4.0
    half = (wide - gap) / 2
    height = half * 3.6 / 4.0
    pairs = (("top_labels", "label_share"), ("confidence", "moderation"))
    for left, right in pairs:
        pdf.ln(gap)
        if pdf.get_y() + height > pdf.page_break_trigger:
            pdf.add_page()
        y = pdf.get_y()
        pdf.image(io.BytesIO(chart_png(left, data.charts, (4.0, 3.6))), x=pdf.l_margin, y=y, w=half)
        x = pdf.l_margin + half + gap
        pdf.image(io.BytesIO(chart_png(right, data.charts, (4.0, 3.6))), x=x, y=y, w=half)
        pdf.set_y(y + height)


def _labels_text(row: ReportRow, limit: int = 5) -> str:
    return "\n".join(f"{label} ({conf:.0f}%)" for label, conf in row.labels[:limit]) or "—"


def _table(pdf: FPDF, data: ReportData) -> None:
    pdf.ln(6)
    if pdf.get_y() + 40 > pdf.page_break_trigger:  # the heading and a first row, or a new page
        pdf.add_page()
    pdf.set_font(FONT, "B", 14)
    heading = f"Images ({len(data.rows)} of {data.total})"
    pdf.cell(0, 10, heading, new_x="LMARGIN", new_y="NEXT")
    if not data.rows:
        pdf.set_font(FONT, "", 11)
        pdf.cell(0, 8, "No image matches this report's query in its window.")
        return
    pdf.set_font(FONT, "", 8)
    with pdf.table(
        col_widths=(32, 50, 58, 40),
        headings_style=FontFace(emphasis="BOLD", fill_color=(230, 230, 230)),
        line_height=4.5,
        v_align="MIDDLE",
        repeat_headings=1,
    ) as table:
        header = table.row()
        for name in ("Image", "Title", "Top labels", f"Ingested ({data.timezone})"):
            header.cell(name)
        for row in data.rows:
            cells = table.row()
            thumb = data.thumbnails.get(row.id)
            if thumb is not None:
                cells.cell(img=io.BytesIO(thumb), img_fill_width=True, link=row.link)
            else:
                cells.cell("(no preview)")
            cells.cell(row.title, link=row.link)
            cells.cell(_labels_text(row))
            ingested = times.local_or_none(row.ingested_at, data.timezone)
            cells.cell(f"{ingested:%Y-%m-%d %H:%M}" if ingested else row.ingested_at)


def render_pdf(data: ReportData) -> bytes:
    pdf = _document(data)
    _summary(pdf, data)
    _charts(pdf, data)
    _table(pdf, data)
    return bytes(pdf.output())
