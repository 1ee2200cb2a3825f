"""A report as CSV, JSON or PDF bytes. Every format carries the audit chain head.

* JSON: the :class:`Report` model as is.
* CSV: ``#`` lines with the title, period, time zone, generation time, chain head and the
  summary figures, then each table (a ``# table:`` line, the header row, the rows),
  separated by a blank line.
* PDF (matplotlib, no display needed): a first page with the summary, a page per chart,
  then the tables as monospaced text; the chain head is on every page's footer and in the
  document's metadata (Subject).
"""

from __future__ import annotations

import csv
import io
import json
import textwrap
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from roomwatch.compliance.reports import Chart, Report, ReportTable


class ReportFormat(StrEnum):
    CSV = "csv"
    JSON = "json"
    PDF = "pdf"


#: PDF tables: lines per page, characters per cell, pages at most per table.
LINES_PER_PAGE = 58
CELL_CHARS = 28
MAX_TABLE_PAGES = 150

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

_A4_LANDSCAPE = (11.69, 8.27)


def _page(report: Report, number: int) -> Figure:
    fig = Figure(figsize=_A4_LANDSCAPE)
    fig.text(0.03, 0.965, report.title, fontsize=11, weight="bold", va="top")
    fig.text(
        0.03,
        0.02,
        f"Roomwatch · generated {report.generated_at.isoformat(timespec='seconds')} · "
        f"audit chain head {report.audit_chain_head}",
        fontsize=6.5,
        family="monospace",
        color="#444444",
    )
    fig.text(0.97, 0.02, f"page {number}", fontsize=7, ha="right", color="#444444")
    return fig


def _pdf(report: Report) -> bytes:
    out = io.BytesIO()
    metadata = {
        "Title": report.title,
        "Subject": f"audit chain head {report.audit_chain_head}",
        "Creator": "Roomwatch",
        "CreationDate": None,
    }
    number = 0
    with PdfPages(out, metadata=metadata) as pdf:
        number += 1
        pdf.savefig(_summary_page(report, number))
        for chart in report.charts:
            number += 1
            pdf.savefig(_chart_page(report, chart, number))
        for t in report.tables:
            for fig in _table_pages(report, t, number + 1):
                number += 1
                pdf.savefig(fig)
    return out.getvalue()


def _summary_page(report: Report, number: int) -> Figure:
    fig = _page(report, number)
    lines = [f"{k:<18} {_cell(v)}" for k, v in _meta(report)[1:]]
    lines.append("")
    lines += [f"{k:<44} {_cell(v)}" for k, v in _flat("", report.summary)]
    lines.append("")
    for note in report.notes:
        lines += [*textwrap.wrap(note, 130), ""]
    fig.text(
        0.03, 0.92, "\n".join(lines[:LINES_PER_PAGE]), fontsize=7.5, family="monospace", va="top"
    )
    return fig


def _chart_page(report: Report, chart: Chart, number: int) -> Figure:
    fig = _page(report, number)
    ax = fig.add_axes((0.08, 0.2, 0.88, 0.68))
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
    ax.set_xticklabels(
        chart.labels,
        rotation=45 if len(chart.labels) > 6 else 0,
        ha="right" if len(chart.labels) > 6 else "center",
        fontsize=7,
    )
    ax.grid(axis="y", alpha=0.3)
    if n > 1 or chart.threshold is not None:
        ax.legend(fontsize=8)
    if not chart.labels:
        ax.text(0.5, 0.5, "no data in this period", transform=ax.transAxes, ha="center")
    return fig


def _table_pages(report: Report, t: ReportTable, first_number: int) -> Iterator[Figure]:
    cells = [[_cell(v)[:CELL_CHARS] for v in row] for row in t.rows]
    header = [c[:CELL_CHARS] for c in t.columns]
    widths = [max([len(header[i])] + [len(row[i]) for row in cells]) for i in range(len(header))]

    def line(values: list[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True))

    body = LINES_PER_PAGE - 4
    pages = max(1, -(-len(cells) // body))
    shown = min(pages, MAX_TABLE_PAGES)
    chars = len(line(header))
    size = max(3.0, min(7.5, 7.5 * 150 / max(chars, 1)))
    for p in range(shown):
        fig = _page(report, first_number + p)
        chunk = cells[p * body : (p + 1) * body]
        text = [f"{t.title} ({len(cells)} rows; page {p + 1} of {pages})", "", line(header)]
        text.append("-" * chars)
        text += [line(row) for row in chunk]
        if p == shown - 1 and shown < pages:
            text.append(f"... {len(cells) - shown * body} more rows in the CSV and JSON exports")
        fig.text(0.03, 0.92, "\n".join(text), fontsize=size, family="monospace", va="top")
        yield fig


def dumps_json(value: Any) -> str:
    return json.dumps(value, indent=2, default=str, ensure_ascii=False)
