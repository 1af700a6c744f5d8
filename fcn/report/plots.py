"""Per-epoch curves and the confusion matrix as inline SVG: no plotting library, a few KB each,
point values as tooltips."""

import math

from fcn.report.html import esc, finite

WIDTH, HEIGHT = 460, 280
# Plot area inside the chart: room for tick labels left and below, the legend above.
LEFT, RIGHT, TOP, BOTTOM = 62, 14, 44, 40
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def nice_ticks(lo, hi, target=5):
    """Round tick values covering [lo, hi] with about `target` steps of 1, 2, 2.5 or 5 x 10^k.

    nice_ticks(0.82, 0.91): raw step 0.018 -> 0.02, ticks 0.82, 0.84, ..., 0.92.
    lo == hi is widened by 10% of |lo| (or 1 at zero) so a flat series still has an axis.
    """
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / target
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-9))
    k0 = math.floor(lo / step + 1e-9)
    k1 = math.ceil(hi / step - 1e-9)
    return [float(f"{k * step:.12g}") for k in range(k0, k1 + 1)]


def _label(value):
    return f"{value:.6g}"


def line_chart(title, series, y_label="", integer_x=True):
    """An SVG line chart of [(name, [(x, y or None)])]; missing and non-finite y are skipped
    (the line breaks there). Returns '' when no series has a point."""
    points = [(n, [(x, y) for x, y in pts if finite(y)]) for n, pts in series]
    points = [(n, pts) for n, pts in points if pts]
    if not points:
        return ""
    xs = [x for _, pts in points for x, _ in pts]
    ys = [y for _, pts in points for _, y in pts]
    x_ticks = nice_ticks(min(xs), max(xs), target=min(6, max(1, int(max(xs) - min(xs)))))
    if integer_x:
        x_ticks = [t for t in x_ticks if t == int(t)] or [min(xs)]
    x0, x1 = min(x_ticks[0], min(xs)), max(x_ticks[-1], max(xs))
    y_ticks = nice_ticks(min(ys), max(ys))
    y0, y1 = y_ticks[0], y_ticks[-1]
    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x):
        return LEFT + (pw / 2 if x1 == x0 else (x - x0) / (x1 - x0) * pw)

    def py(y):
        return TOP + ph - (y - y0) / (y1 - y0) * ph

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11" '
        f'role="img" aria-label="{esc(title)}">',
        f'<text x="{WIDTH / 2:.1f}" y="15" text-anchor="middle" font-size="13" '
        f'font-weight="bold">{esc(title)}</text>',
    ]
    for t in y_ticks:
        y = py(t)
        out.append(
            f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e6e6e6"/>'
            f'<text x="{LEFT - 5}" y="{y + 4:.1f}" text-anchor="end">{_label(t)}</text>'
        )
    for t in x_ticks:
        x = px(t)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP + ph}" y2="{TOP + ph + 4}" stroke="#444"/>'
            f'<text x="{x:.1f}" y="{TOP + ph + 16}" text-anchor="middle">{_label(t)}</text>'
        )
    out.append(
        f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>'
        f'<text x="{LEFT + pw / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle">epoch</text>'
        f'<text transform="translate(13 {TOP + ph / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{esc(y_label)}</text>'
    )
    legend_x = LEFT
    for i, (name, pts) in enumerate(points):
        colour = COLOURS[i % len(COLOURS)]
        out.append(
            f'<rect x="{legend_x}" y="24" width="14" height="3" fill="{colour}"/>'
            f'<text x="{legend_x + 18}" y="29">{esc(name)}</text>'
        )
        legend_x += 28 + 6.5 * len(name)
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{coords}"/>')
        for x, y in pts:
            out.append(
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{colour}">'
                f"<title>{esc(name)}, epoch {_label(x)}: {y:.6g}</title></circle>"
            )
    out.append("</svg>")
    return "\n".join(out)


def confusion_svg(matrix, class_names, cell=None):
    """The confusion matrix (rows: ground truth, columns: prediction) as an SVG heatmap, each
    row normalised to its ground-truth pixels (recall on the diagonal); counts as tooltips."""
    n = len(matrix)
    cell = cell or max(28, min(64, 480 // max(n, 1)))
    left, top = 110, 90
    size = n * cell
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + size + 10}" '
        f'height="{top + size + 10}" font-family="sans-serif" font-size="11" role="img" '
        'aria-label="confusion matrix">',
        f'<text x="{left + size / 2:.1f}" y="14" text-anchor="middle">prediction</text>',
        f'<text transform="translate(12 {top + size / 2:.1f}) rotate(-90)" '
        'text-anchor="middle">ground truth</text>',
    ]
    for i, name in enumerate(class_names[:n]):
        c = left + i * cell + cell / 2
        out.append(
            f'<text transform="translate({c:.1f} {top - 6}) rotate(-45)">{esc(name)}</text>'
            f'<text x="{left - 6}" y="{top + i * cell + cell / 2 + 4:.1f}" '
            f'text-anchor="end">{esc(name)}</text>'
        )
    for i, row in enumerate(matrix):
        total = sum(row)
        for j, count in enumerate(row):
            share = count / total if total else 0.0
            shade = int(round(255 * (1 - share)))  # white (0) to dark blue (1)
            fill = f"rgb({shade},{shade},255)" if total else "#eee"
            ink = "#fff" if share > 0.5 else "#000"
            cx, cy = left + j * cell + cell / 2, top + i * cell + cell / 2 + 4
            out.append(
                f'<rect x="{left + j * cell}" y="{top + i * cell}" width="{cell}" '
                f'height="{cell}" fill="{fill}" stroke="#fff"><title>{esc(class_names[i])} '
                f"as {esc(class_names[j])}: {count} pixels</title></rect>"
                f'<text x="{cx:.1f}" y="{cy:.1f}" text-anchor="middle" fill="{ink}">'
                f"{share:.2f}</text>"
            )
    out.append("</svg>")
    return "\n".join(out)
