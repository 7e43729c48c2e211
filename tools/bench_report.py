#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Medians and Rust/C ratios from results/raw/bench.raw (`impl round bench domain value unit`):
writes the TSV (bench, domain, c_median, rust_median, ratio), an SVG bar chart of the ratios, and
prints the table."""
import statistics
import sys
from collections import defaultdict


def main():
    raw, tsv, svg = sys.argv[1:4]
    values = defaultdict(lambda: defaultdict(list))
    units, order = {}, []
    with open(raw) as f:
        for line in f:
            parts = line.split()
            if len(parts) != 6:
                continue
            impl, _round, bench, domain, value, unit = parts
            key = (bench, domain)
            if key not in units:
                order.append(key)
            units[key] = unit
            values[key][impl].append(float(value))
    rows = []
    for key in order:
        c, r = values[key].get("c", []), values[key].get("rust", [])
        if not c or not r:
            continue
        cm, rm = statistics.median(c), statistics.median(r)
        rows.append((key[0], key[1], cm, rm, rm / cm if cm else float("nan"), units[key], len(c)))
    if not rows:
        print("bench: no results (see results/raw/bench-console.log)")
        return 1
    with open(tsv, "w") as f:
        f.write("bench\tdomain\tc_median\trust_median\tratio\n")
        for b, d, cm, rm, ratio, unit, _ in rows:
            f.write(f"{b}\t{d}\t{cm:.0f}\t{rm:.0f}\t{ratio:.3f}\n")
    print(f"{'bench':<24}{'domain':<8}{'C median':>14}{'Rust median':>14}{'Rust/C':>9}  unit (n)")
    for b, d, cm, rm, ratio, unit, n in rows:
        print(f"{b:<24}{d:<8}{cm:>14.0f}{rm:>14.0f}{ratio:>9.3f}  {unit} ({n})")

    # A bar per benchmark: the ratio, with the parity line at 1.0.
    w, bar_h, gap, left, top = 760, 22, 10, 230, 40
    h = top + len(rows) * (bar_h + gap) + 40
    scale = (w - left - 40) / max(2.0, max(r[4] for r in rows) * 1.1)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="13">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{left}" y="22" font-size="15">iommufd-rs vs C: median Rust/C ratio (time or memory; lower is better)</text>']
    for i, (b, d, cm, rm, ratio, unit, n) in enumerate(rows):
        y = top + i * (bar_h + gap)
        colour = "#3a7" if ratio <= 1.1 else "#c44"
        out.append(f'<text x="{left - 8}" y="{y + 16}" text-anchor="end">{b} ({d})</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{ratio * scale:.1f}" height="{bar_h}" fill="{colour}"/>')
        out.append(f'<text x="{left + ratio * scale + 6:.1f}" y="{y + 16}">{ratio:.2f}</text>')
    x1 = left + scale
    out.append(f'<line x1="{x1:.1f}" y1="{top - 6}" x2="{x1:.1f}" y2="{h - 30}" stroke="#333" stroke-dasharray="4,3"/>')
    out.append(f'<text x="{x1:.1f}" y="{h - 12}" text-anchor="middle">1.0 = parity</text>')
    out.append("</svg>")
    with open(svg, "w") as f:
        f.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
