"""A report as CSV, JSON or PDF bytes. Every format carries the audit chain head.

* JSON: the :class:`Report` model as is.
* CSV: ``#`` lines with the title, period, time zone, generation time, chain head and the
  summary figures, then each table (a ``# table:`` line, the header row, the rows),
  separated by a blank line.
* PDF (reportlab, charts drawn by matplotlib): a first page with the summary, a page per
  chart, then the tables as monospaced text; the chain head is on every page's footer and
  in the document's metadata (Subject).
"""

from __future__ import annotations

import csv
import io
import textwrap
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

from matplotlib.figure import Figure
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

from roomwatch.compliance.report_model import Chart, Report, ReportTable


class ReportFormat(StrEnum):
    CSV = "csv"
    JSON = "json"
    PDF = "pdf"


#: PDF: summary lines on the first page, characters per table cell, pages at most per table.
LINES_PER_PAGE = 64
CELL_CHARS = 28
MAX_TABLE_PAGES = 200

MEDIA_TYPES = {
    ReportFormat.CSV: "text/csv",
    ReportFormat.JSON: "application/json",
    ReportFormat.PDF: "application/pdf",
}


def render(report: Report, fmt: ReportFormat | str) -> bytes:
    fmt = ReportFormat(fmt)
    if fmt is ReportFormat.JSON:
        return report.model_dump_json(indent=2).encode()
    if fmt is ReportFormat.CSV:
        return _csv(report)
    return _pdf(report)


def filename(report: Report, fmt: ReportFormat | str) -> str:
    where = report.site or "all-sites"
    return f"roomwatch-{report.kind.value}-{where}-{report.start}-{report.end}.{fmt}"


def _flat(prefix: str, value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flat(f"{prefix}.{k}" if prefix else str(k), v)
    else:
        yield prefix, value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _csv(report: Report) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for key, value in _meta(report):
        writer.writerow([f"# {key}", _cell(value)])
    for key, value in _flat("", report.summary):
        writer.writerow([f"# summary.{key}", _cell(value)])
    for t in report.tables:
        writer.writerow([])
        writer.writerow([f"# table: {t.id}", t.title])
        writer.writerow(t.columns)
        writer.writerows([_cell(v) for v in row] for row in t.rows)
    return out.getvalue().encode()


def _meta(report: Report) -> list[tuple[str, Any]]:
    return [
        ("report", report.title),
        ("kind", report.kind.value),
        ("site", report.site or "all sites"),
        ("from", report.start.isoformat()),
        ("to", report.end.isoformat()),
        ("timezone", report.timezone),
        ("generated_at", report.generated_at.isoformat()),
        ("audit_chain_head", report.audit_chain_head),
    ]


# ---------------------------------------------------------------------------- PDF

_PAGE = landscape(A4)
_MARGIN = 36.0
_MONO = "Courier"


class _Pdf:
    """reportlab pages with the report's title on top and the chain head at the foot."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.out = io.BytesIO()
        self.canvas = canvas.Canvas(self.out, pagesize=_PAGE, invariant=True)
        self.canvas.setTitle(report.title)
        self.canvas.setSubject(f"audit chain head {report.audit_chain_head}")
        self.canvas.setCreator("Roomwatch")
        self.number = 0

    def page(self) -> float:
        """Start a page; returns the y under the title."""
        if self.number:
            self.canvas.showPage()
        self.number += 1
        width, height = _PAGE
        c = self.canvas
        c.setFont("Helvetica-Bold", 12)
        c.drawString(_MARGIN, height - _MARGIN, self.report.title[:120])
        c.setFont(_MONO, 6.5)
        c.setFillGray(0.3)
        c.drawString(
            _MARGIN,
            _MARGIN / 2,
            f"Roomwatch - generated {self.report.generated_at.isoformat(timespec='seconds')}"
            f" - audit chain head {self.report.audit_chain_head}",
        )
        c.drawRightString(width - _MARGIN, _MARGIN / 2, f"page {self.number}")
        c.setFillGray(0)
        return float(height) - _MARGIN - 22

    def lines(self, lines: list[str], top: float, size: float) -> None:
        text = self.canvas.beginText(_MARGIN, top)
        text.setFont(_MONO, size, leading=size * 1.25)
        for line in lines:
            text.textLine(line)
        self.canvas.drawText(text)

    def image(self, png: bytes, top: float) -> None:
        width, _ = _PAGE
        box_w, box_h = width - 2 * _MARGIN, top - _MARGIN
        self.canvas.drawImage(
            ImageReader(io.BytesIO(png)), _MARGIN, _MARGIN, box_w, box_h, preserveAspectRatio=True
        )

    def bytes(self) -> bytes:
        self.canvas.save()
        return self.out.getvalue()


def _pdf(report: Report) -> bytes:
    pdf = _Pdf(report)
    top = pdf.page()
    lines = [f"{k:<18} {_cell(v)}" for k, v in _meta(report)[1:]]
    lines.append("")
    lines += [f"{k:<46} {_cell(v)}" for k, v in _flat("", report.summary)]
    lines.append("")
    for note in report.notes:
        lines += [*textwrap.wrap(note, 140), ""]
    pdf.lines(lines[:LINES_PER_PAGE], top, 7.5)
    for chart in report.charts:
        pdf.image(chart_png(chart), pdf.page())
    for t in report.tables:
        _table(pdf, t)
    return pdf.bytes()


def chart_png(chart: Chart) -> bytes:
    """One bar chart as a PNG (matplotlib, no display needed)."""
    fig = Figure(figsize=(10.5, 6.2))
    ax = fig.add_axes((0.08, 0.2, 0.9, 0.72))
    n = max(1, len(chart.series))
    width = 0.8 / n
    positions = list(range(len(chart.labels)))
    for i, (name, values) in enumerate(chart.series.items()):
        ax.bar([p + (i - (n - 1) / 2) * width for p in positions], values, width, label=name)
    if chart.threshold is not None:
        ax.axhline(chart.threshold, color="#b00020", linestyle="--", linewidth=1, label="threshold")
    ax.set_title(chart.title)
    ax.set_xlabel(chart.x_label)
    ax.set_ylabel(chart.y_label)
    ax.set_xticks(positions)
    crowded = len(chart.labels) > 6
    ax.set_xticklabels(
        chart.labels, rotation=45 if crowded else 0, ha="right" if crowded else "center", fontsize=8
    )
    ax.grid(axis="y", alpha=0.3)
    if n > 1 or chart.threshold is not None:
        ax.legend(fontsize=8)
    if not chart.labels:
        ax.text(0.5, 0.5, "no data in this period", transform=ax.transAxes, ha="center")
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=130)
    return out.getvalue()


def _table(pdf: _Pdf, t: ReportTable) -> None:
    keep = [t.columns.index(c) for c in t.pdf_columns or t.columns]
    cells = [[_cell(row[i]).replace("\n", " ")[:CELL_CHARS] for i in keep] for row in t.rows]
    header = [t.columns[i][:CELL_CHARS] for i in keep]
    widths = [max([len(header[i])] + [len(row[i]) for row in cells]) for i in range(len(header))]

    def line(values: list[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    chars = len(line(header))
    usable = _PAGE[0] - 2 * _MARGIN
    size = max(3.0, min(7.5, usable / (0.6 * max(chars, 1))))  # Courier: 0.6 em per char
    body = int((_PAGE[1] - 2 * _MARGIN - 40) / (size * 1.25)) - 4
    pages = max(1, -(-len(cells) // body))
    shown = min(pages, MAX_TABLE_PAGES)
    for p in range(shown):
        top = pdf.page()
        text = [f"{t.title} ({len(cells)} rows; page {p + 1} of {pages})", "", line(header)]
        text.append("-" * chars)
        text += [line(row) for row in cells[p * body : (p + 1) * body]]
        if p == shown - 1 and shown < pages:
            text.append(f"... {len(cells) - shown * body} more rows in the CSV and JSON exports")
        pdf.lines(text, top, size)
