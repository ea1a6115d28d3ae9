"""report.html: the report as one self-contained page a browser opens (figures inline, tables
sortable by clicking a column's header, which shows the order it sorts by; verdicts coloured;
tables that wrap their cells instead of hiding columns on a narrow screen), converted from
report.md by Python-Markdown."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 72rem; margin: 2rem auto;
       padding: 0 1rem; color: #1d1d1f; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 13px; width: 100%; }
th, td { border: 1px solid #d0d0d0; padding: 0.25rem 0.4rem; text-align: right; overflow-wrap: break-word; }
th { background: #f3f3f5; cursor: pointer; user-select: none; } th:first-child, td:first-child { text-align: left; }
th::after { content: " \\2195"; color: #aaa; } th[aria-sort="ascending"]::after { content: " \\25B2"; color: #333; }
th[aria-sort="descending"]::after { content: " \\25BC"; color: #333; }
tr:nth-child(even) td { background: #fafafa; }
td.captured { background: #dcf2dc !important; color: #135e13; }
td.not-captured { background: #f8dede !important; color: #8a1c1c; }
td.inconclusive { background: #fbf0cf !important; color: #6b5200; }
@media (max-width: 760px) { body { margin: 1rem auto; } table { font-size: 11px; }
  th, td { padding: 0.2rem 0.25rem; } }
img { max-width: 100%; height: auto; display: block; margin: 1rem 0; }
code { background: #f3f3f5; padding: 0 0.2rem; border-radius: 3px; }
"""

# click a header to sort its table by that column (numbers by value, the rest as text)
SORT_JS = """
document.querySelectorAll("table").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var body = table.tBodies[0], rows = Array.from(body.rows), up = th.getAttribute("aria-sort") !== "ascending";
      var key = function (r) { var t = r.cells[col].innerText, n = parseFloat(t); return isNaN(n) ? t : n; };
      rows.sort(function (a, b) { var x = key(a), y = key(b); return (x > y ? 1 : x < y ? -1 : 0) * (up ? 1 : -1); });
      table.querySelectorAll("th").forEach(function (other) { other.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", up ? "ascending" : "descending");
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def _inline_images(body: str, folder: Path) -> str:
    """<img src="figure4.png"> -> the PNG as a data URI, so the page needs no other file."""
    def inline(m: re.Match) -> str:
        path = folder / m.group(1)
        if m.group(1).endswith(".png") and "/" not in m.group(1) and path.is_file():
            return f'src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode("ascii")}"'
        return m.group(0)
    return re.sub(r'src="([^"]+)"', inline, body)


VERDICT_CELL = re.compile(r"<td>(captured|not captured|inconclusive)</td>")


def _coloured_verdicts(body: str) -> str:
    """A cell that is a verdict gets its class (green captured, red not captured, amber
    inconclusive); its text stays, for a reader without colour."""
    return VERDICT_CELL.sub(lambda m: f'<td class="{m.group(1).replace(" ", "-")}">{m.group(1)}</td>', body)


def _safe_links(body: str) -> str:
    """Links only to web pages, mail or files beside the report: ``javascript:`` and other
    schemes in a received name become an inert ``#``."""
    return re.sub(r'href="(?!https?:|mailto:|#)([^"]*:[^"]*)"', 'href="#"', body)


def md_cell(text) -> str:
    """Text as one markdown table cell: ``|`` escaped, line breaks folded."""
    return " ".join(str(text).split()).replace("|", "\\|")


def html_page(markdown_text: str, folder: Path, title: str) -> str:
    """One HTML page from a report's markdown; the figures it names in ``folder`` inlined."""
    import markdown

    md = markdown.Markdown(extensions=["tables"], output_format="html")
    # No raw HTML: a method name or a path read from a received file is text, never markup
    # (a '<script>' in probes.csv is shown, escaped, not run). Python-Markdown's documented way.
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")
    body = _coloured_verdicts(_inline_images(_safe_links(md.convert(markdown_text)), folder))
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n"
            f"<script>{SORT_JS}</script>\n</body>\n</html>\n")
