"""HTML pieces shared by the pages: escaping, number formats, sortable tables, style, script."""

import html
import math

# Click a header of a table.sortable to sort by its column; again to reverse. Cells sort by
# their data-value (numbers where the header has data-sort="num"); empty values go last.
SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("thead th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var num = th.dataset.sort === "num";
      var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
      table.querySelectorAll("thead th").forEach(function (h) {
        h.removeAttribute("aria-sort");
      });
      th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      function key(row) {
        var v = row.cells[col].dataset.value;
        if (v === undefined) v = row.cells[col].textContent;
        return num ? (v === "" ? NaN : parseFloat(v)) : v.toLowerCase();
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        var xm = num ? isNaN(x) : x === "", ym = num ? isNaN(y) : y === "";
        if (xm || ym) return xm - ym;
        return (x < y ? -1 : x > y ? 1 : 0) * dir;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; padding: 16px 24px;
       max-width: 1500px; color: #222; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px;
       border-bottom: 1px solid #ddd; } h3 { font-size: 15px; margin: 16px 0 6px; }
a { color: #0b5cad; } .muted { color: #666; }
table { border-collapse: collapse; margin: 4px 0 12px; }
th, td { padding: 3px 10px; border-bottom: 1px solid #e4e4e4; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f3f3f3; }
table.sortable thead th { cursor: pointer; user-select: none; }
th[aria-sort=ascending]::after { content: " \\25B2"; }
th[aria-sort=descending]::after { content: " \\25BC"; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; }
dl.facts dt { color: #666; } dl.facts dd { margin: 0; }
.notes { background: #fff8e1; border-left: 4px solid #f0b400; padding: 6px 12px; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.gallery { display: flex; flex-wrap: wrap; gap: 10px; align-items: flex-start; }
.strip { display: flex; gap: 10px; overflow-x: auto; padding-bottom: 6px; }
.strip figure { flex: 0 0 auto; }
figure { margin: 0; }
/* Thumbnails are at most 640 px wide; smaller originals are shown at 640 px too, to be judged. */
figure img { display: block; width: 640px; max-width: 100%; border: 1px solid #ccc; }
figure img.plot { width: auto; }
figcaption { font-size: 12px; color: #555; }
.swatch { display: inline-block; width: 12px; height: 12px; border: 1px solid #999;
          vertical-align: -1px; margin-right: 6px; }
pre { background: #f6f6f6; padding: 8px; overflow: auto; max-height: 480px; }
img.plot { max-width: 100%; }
"""


def esc(value):
    return html.escape(str(value), quote=True)


def finite(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def number(x, digits=4, scale=1.0):
    """A figure for a table; 'n/a' where it is undefined (null in JSON, NaN)."""
    return f"{x * scale:.{digits}f}" if finite(x) else "n/a"


def duration(seconds):
    """'42 s', '13 min 24 s', '2 h 05 min'; '?' when unknown."""
    if not finite(seconds):
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def cell(text, value=None):
    """A table cell: (escaped display text, sort value or None)."""
    return (esc(text), value)


def table(head, rows, sortable=False, caption=None):
    """head: [(label, 'num' | 'text')]; rows: lists of cells, each a (html, sort value) pair
    or a plain string (escaped). Sortable tables carry data-sort and data-value attributes."""
    out = ['<table class="sortable">' if sortable else "<table>"]
    if caption:
        out.append(f"<caption>{esc(caption)}</caption>")
    ths = "".join(
        f'<th data-sort="{kind}">{esc(label)}</th>' if sortable else f"<th>{esc(label)}</th>"
        for label, kind in head
    )
    out.append(f"<thead><tr>{ths}</tr></thead><tbody>")
    for row in rows:
        tds = []
        for c in row:
            text, value = c if isinstance(c, tuple) else (esc(c), None)
            attr = f' data-value="{esc(value)}"' if sortable and value is not None else ""
            tds.append(f"<td{attr}>{text}</td>")
        out.append("<tr>" + "".join(tds) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def document(title, body, script=False):
    """A whole page: UTF-8, our style inline, no external resource."""
    js = f"<script>{SORT_SCRIPT}</script>" if script else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head>\n"
        f"<body>\n{body}\n{js}</body></html>\n"
    )
