#!/usr/bin/env python3
"""Plot `gpunorm bench --json` output as a PNG bar chart (standard library only).

For the largest size of each operation, one horizontal bar of `ratio_to_copy`
(the operation's effective bandwidth over the copy kernel's at the same size),
with dashed reference lines at 0.5 (target) and 0.8 (aim).

    gpunorm bench --json > bench.json
    python3 tools/plot_bench.py bench.json -o docs/bench_ratio.png
    gpunorm bench --json | python3 tools/plot_bench.py - --date 2025-01-31

No matplotlib: the PNG is drawn here (rectangles and a 5x9 bitmap font) and
encoded with zlib + struct.
"""

import argparse
import datetime
import json
import math
import os
import struct
import sys
import zlib

# --- 5x9 bitmap font --------------------------------------------------------
# Printable ASCII 32..126, five columns per glyph as hex bytes; bit 0 is the top
# row, the baseline is row 6 (the classic 5x7 LCD font). Rows 7-8 are for the
# descenders, which `_DESCENDERS` overrides with 9-bit columns.
_FONT_HEX = """
0000000000 00005f0000 0007000700 147f147f14 242a7f2a12 2313086462 3649552250 0005030000
001c224100 0041221c00 082a1c2a08 08083e0808 0050300000 0808080808 0060600000 2010080402
3e5149453e 00427f4000 4261514946 2141454b31 1814127f10 2745454539 3c4a494930 0171090503
3649494936 064949291e 0036360000 0056360000 0814224100 1414141414 0041221408 0201510906
324979413e 7e1111117e 7f49494936 3e41414122 7f4141221c 7f49494941 7f09090101 3e41415132
7f0808087f 00417f4100 2040413f01 7f08142241 7f40404040 7f0204027f 7f0408107f 3e4141413e
7f09090906 3e4151215e 7f09192946 4649494931 01017f0101 3f4040403f 1f2040201f 7f2018207f
6314081463 0304780403 6151494543 007f414100 0204081020 0041417f00 0402010204 4040404040
0001020400 2054545478 7f48444438 3844444420 384444487f 3854545418 087e090102 0000000000
7f08040478 00447d4000 0000000000 7f10284400 00417f4000 7c04180478 7c08040478 3844444438
0000000000 0000000000 7c08040408 4854545420 043f444020 3c4040207c 1c2040201c 3c4030403c
4428102844 0000000000 4464544c44 0008364100 00007f0000 0041360800 0804081008
""".split()
_DESCENDERS = {  # glyphs that reach below the baseline (9-bit columns)
    "g": (0x038, 0x144, 0x144, 0x144, 0x0FC),
    "j": (0x080, 0x100, 0x104, 0x0FD, 0x000),
    "p": (0x1FC, 0x044, 0x044, 0x044, 0x038),
    "q": (0x038, 0x044, 0x044, 0x044, 0x1FC),
    "y": (0x03C, 0x140, 0x140, 0x140, 0x0FC),
    "_": (0x100,) * 5,
}
GLYPHS = {chr(32 + i): tuple(bytes.fromhex(h)) for i, h in enumerate(_FONT_HEX)}
GLYPHS.update(_DESCENDERS)
GLYPH_W, GLYPH_H, CAP_H = 5, 9, 7  # cell width, cell height, cap height (rows)

# --- Layout and palette -------------------------------------------------------
W, H = 1000, 700
WHITE, BLACK, GREY = (255, 255, 255), (34, 34, 34), (110, 110, 110)
GRID = (228, 228, 228)
BAR = (76, 114, 176)  # ratio >= target: blue
BAR_LOW = (221, 132, 82)  # ratio < target: orange
TARGET, AIM = (0.5, (196, 78, 82)), (0.8, (70, 150, 90))  # (x, colour)


class Canvas:
    """An RGB raster with just what the chart needs: rectangles and text."""

    def __init__(self, w, h, bg=WHITE):
        self.w, self.h = w, h
        self.px = bytearray(bytes(bg) * (w * h))

    def rect(self, x0, y0, x1, y1, colour):
        """Fill [x0, x1) x [y0, y1), clipped to the canvas."""
        x0, x1 = max(0, round(x0)), min(self.w, round(x1))
        y0, y1 = max(0, round(y0)), min(self.h, round(y1))
        if x0 >= x1:
            return
        row = bytes(colour) * (x1 - x0)
        for y in range(y0, y1):
            i = (y * self.w + x0) * 3
            self.px[i:i + len(row)] = row

    def vdash(self, x, y0, y1, colour, width=2, dash=8, gap=6):
        """A vertical dashed line centred on x."""
        y = y0
        while y < y1:
            self.rect(x - width / 2, y, x + width / 2, min(y + dash, y1), colour)
            y += dash + gap

    def text(self, x, y, s, colour, scale=2):
        """Draw s with its cell's top-left at (x, y); returns the width drawn."""
        for k, ch in enumerate(s):
            cols = GLYPHS.get(ch, GLYPHS["?"])
            gx = x + k * (GLYPH_W + 1) * scale
            for cx, bits in enumerate(cols):
                for cy in range(GLYPH_H):
                    if bits >> cy & 1:
                        px, py = gx + cx * scale, y + cy * scale
                        self.rect(px, py, px + scale, py + scale, colour)
        return text_width(s, scale)

    def png(self):
        """The canvas as PNG bytes (8-bit RGB, filter 0 on every row)."""
        stride = self.w * 3
        raw = b"".join(b"\x00" + self.px[y * stride:(y + 1) * stride] for y in range(self.h))

        def chunk(tag, data):
            return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

        ihdr = struct.pack(">IIBBBBB", self.w, self.h, 8, 2, 0, 0, 0)
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def text_width(s, scale=2):
    return max(0, len(s) * (GLYPH_W + 1) * scale - scale)


def fit_text(s, max_w, scale):
    """s cut (with '...') so that it is at most max_w pixels wide."""
    if text_width(s, scale) <= max_w:
        return s
    n = max(0, max_w // ((GLYPH_W + 1) * scale) - 3)
    return s[:n] + "..."


def ascii_only(s):
    return "".join(c if c in GLYPHS else "?" for c in str(s))


# --- Data ---------------------------------------------------------------------
def numel(row):
    return math.prod(row.get("shape") or [0])


def largest_rows(report):
    """The row of each op with the most elements (ties: most bytes), in JSON order, copy first."""
    best = {}
    for row in report.get("ops", []):
        key = (numel(row), row.get("bytes") or 0)
        op = row["op"]
        if op not in best or key > (numel(best[op]), best[op].get("bytes") or 0):
            best[op] = row
    rows = list(best.values())  # dicts keep first-insertion order
    return sorted(rows, key=lambda r: r["op"] != "copy")  # stable: only moves copy


def axis_step(top):
    """A tick step giving at most ~12 ticks up to top."""
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100):
        if top / step <= 12:
            return step
    return 10 ** math.ceil(math.log10(top))


def fmt_tick(v, step):
    return f"{v:.0f}" if step >= 1 else f"{v:.1f}"


# --- Chart --------------------------------------------------------------------
def render(report, date):
    rows = largest_rows(report)
    if not rows:
        raise ValueError("no 'ops' rows in the input")
    adapter = report.get("adapter") or {}
    counts = sorted({numel(r) for r in rows})
    count = f"{counts[-1]:,} elements" if len(counts) == 1 else f"up to {counts[-1]:,} elements"
    copy_row = next((r for r in rows if r["op"] == "copy"), None)
    copy_gbps = copy_row["gbps"] if copy_row else report.get("copy_gbps")

    c = Canvas(W, H)
    # Title (bold: drawn twice, 1 px apart) and subtitle; the date is never cut.
    title = fit_text(ascii_only(f"{adapter.get('name', '?')} ({adapter.get('backend', '?')}), {count}"), W - 60, 2)
    c.text(30, 20, title, BLACK)
    c.text(31, 20, title, BLACK)
    sub = "largest size of each operation"
    if copy_gbps:
        sub += f", copy kernel {copy_gbps:.1f} GB/s"
    c.text(30, 46, fit_text(sub, W - 60 - text_width(", " + date), 2) + ", " + ascii_only(date), GREY)

    # Plot area: labels on the left, room for the values on the right.
    labels = [ascii_only(r["op"]) for r in rows]
    left = 40 + max(text_width(s) for s in labels)
    right, top, bottom = W - 80, 120, H - 95
    ratios = [r.get("ratio_to_copy") for r in rows]
    vmax = max([1.0] + [v for v in ratios if isinstance(v, (int, float)) and math.isfinite(v)])
    step = axis_step(vmax * 1.05)
    xmax = math.ceil(vmax * 1.05 / step - 1e-9) * step

    def xpos(v):
        return left + (right - left) * v / xmax

    # Grid, ticks and tick labels.
    nticks = int(round(xmax / step))
    for i in range(nticks + 1):
        x = xpos(i * step)
        c.rect(x, top, x + 1, bottom, GRID)
        lab = fmt_tick(i * step, step)
        c.text(x - text_width(lab) / 2, bottom + 8, lab, GREY)
    xlabel = "ratio_to_copy (GB/s of the op / GB/s of copy, same size)"
    c.text((left + right - text_width(xlabel)) / 2, bottom + 32, xlabel, BLACK)

    # Bars, then the reference lines over them (labelled above the plot), then
    # the values on a white patch so that a line never runs through one.
    slot = (bottom - top) / len(rows)
    bar_h = min(34, slot * 0.68)
    values = []
    for i, (label, v) in enumerate(zip(labels, ratios)):
        cy = top + slot * (i + 0.5)
        ty = cy - CAP_H  # text cell top that centres the caps (2 * CAP_H / 2) on cy
        c.text(left - 12 - text_width(label), ty, label, BLACK)
        if not isinstance(v, (int, float)) or math.isnan(v):
            values.append((left + 6, ty, "n/a", GREY))
            continue
        end = xpos(max(0.0, min(v, xmax)))
        c.rect(left, cy - bar_h / 2, end, cy + bar_h / 2, BAR if v >= TARGET[0] else BAR_LOW)
        values.append((end + 6, ty, f"{v:.2f}", BLACK))
    for name, (v, colour), side in (("target", TARGET, -1), ("aim", AIM, 1)):
        x = xpos(v)
        c.vdash(x, top - 22, bottom, colour)
        lab = f"{name} {v}"  # target's label left of its line, aim's right: never overlap
        c.text(x + 6 if side > 0 else x - 6 - text_width(lab), top - 26, lab, colour)
    for x, y, s, colour in values:
        c.rect(x - 3, y - 3, x + text_width(s) + 3, y + 2 * CAP_H + 3, WHITE)
        c.text(x, y, s, colour)
    c.rect(left - 1, top - 6, left + 1, bottom, BLACK)
    c.rect(left - 1, bottom, right + 1, bottom + 2, BLACK)

    # Footer: legend, and where the data came from.
    y = H - 30
    x = 30
    for colour, lab in ((BAR, f"at or above target ({TARGET[0]})"), (BAR_LOW, "below target")):
        c.rect(x, y, x + 14, y + 14, colour)
        x += 22 + c.text(x + 22, y, lab, BLACK) + 30
    foot = fit_text(ascii_only(f"driver: {adapter.get('driver') or '?'}"), W - 30 - x, 2)
    c.text(W - 30 - text_width(foot), y, foot, GREY)
    return c.png()


def main(argv=None):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description="Plot the ratio_to_copy of `gpunorm bench --json` as a PNG.")
    p.add_argument("input", help="bench JSON file, or - for stdin")
    p.add_argument("-o", "--output", default=os.path.join(repo, "docs", "bench_ratio.png"),
                   help="PNG to write (default: docs/bench_ratio.png in the repository)")
    p.add_argument("--date", default=datetime.date.today().isoformat(),
                   help="date shown on the plot (default: today)")
    args = p.parse_args(argv)
    try:
        if args.input == "-":
            report = json.load(sys.stdin)
        else:
            with open(args.input, encoding="utf-8") as f:
                report = json.load(f)
        png = render(report, args.date)
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"plot_bench: {args.input}: {e}", file=sys.stderr)
        return 1
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "wb") as f:
        f.write(png)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
