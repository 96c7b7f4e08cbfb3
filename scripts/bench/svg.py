#!/usr/bin/env python3
"""Draws the scale curves of `make bench` as a hand-written SVG.

Input (argv[1]): a TSV with a header `tree kind x command seconds rss_kib`, one row per timed
run: kind is `files` (x = number of files) or `bytes` (x = bytes). Output (argv[2]): an SVG of
two panels, time against the tree's size, one line per command (lifeboat and the tar pipelines
on the same axes), with peak RSS in the legend."""
import collections
import sys

W, H, PAD = 460, 320, 60
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf"]


def panel(rows, kind, ox, title, xlabel, xscale, xfmt):
    series = collections.OrderedDict()
    for r in rows:
        if r["kind"] == kind:
            series.setdefault(r["command"], []).append((float(r["x"]) / xscale,
                                                        float(r["seconds"]),
                                                        int(r["rss_kib"])))
    out = ['<g transform="translate(%d,0)">' % ox,
           '<text x="%d" y="20" font-size="14" text-anchor="middle">%s</text>' % (W / 2, title)]
    if not series:
        out.append('<text x="%d" y="%d" font-size="12" text-anchor="middle">not run</text>'
                   % (W / 2, H / 2))
        return out + ["</g>"]
    xmax = max(x for s in series.values() for x, _, _ in s) * 1.05
    ymax = max(y for s in series.values() for _, y, _ in s) * 1.1 or 1
    def px(x):
        return PAD + (W - PAD - 20) * x / xmax
    def py(y):
        return H - PAD - (H - PAD - 40) * y / ymax
    out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>'
               % (PAD, H - PAD, W - 20, H - PAD))
    out.append('<line x1="%d" y1="40" x2="%d" y2="%d" stroke="black"/>' % (PAD, PAD, H - PAD))
    for i in range(5):
        yv = ymax * i / 4
        xv = xmax * i / 4
        out.append('<text x="%d" y="%.1f" font-size="10" text-anchor="end">%.1f</text>'
                   % (PAD - 4, py(yv) + 3, yv))
        out.append('<text x="%.1f" y="%d" font-size="10" text-anchor="middle">%s</text>'
                   % (px(xv), H - PAD + 14, xfmt(xv)))
    out.append('<text x="%d" y="%d" font-size="11" text-anchor="middle">%s</text>'
               % (W / 2, H - PAD + 30, xlabel))
    out.append('<text x="14" y="%d" font-size="11" transform="rotate(-90 14 %d)" '
               'text-anchor="middle">seconds</text>' % (H / 2, H / 2))
    for n, (cmd, pts) in enumerate(series.items()):
        c = COLORS[n % len(COLORS)]
        pts.sort()
        path = " ".join("%.1f,%.1f" % (px(x), py(y)) for x, y, _ in pts)
        out.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>' % (c, path))
        for x, y, _ in pts:
            out.append('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>' % (px(x), py(y), c))
        rss = max(r for _, _, r in pts) / 1024
        ly = H - PAD + 46 + 14 * n
        out.append('<rect x="%d" y="%d" width="12" height="4" fill="%s"/>' % (PAD, ly - 4, c))
        out.append('<text x="%d" y="%d" font-size="11">%s (peak RSS %.0f MiB)</text>'
                   % (PAD + 18, ly, cmd, rss))
    return out + ["</g>"]


def main():
    with open(sys.argv[1]) as f:
        head = f.readline().split()
        rows = [dict(zip(head, line.split("\t"))) for line in f if line.strip()]
    ncmd = len({r["command"] for r in rows})
    height = H + 50 + 14 * ncmd
    body = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
            'font-family="sans-serif">' % (2 * W, height),
            '<rect width="100%" height="100%" fill="white"/>']
    body += panel(rows, "files", 0, "small files (0.5-8 KiB)", "files", 1,
                  lambda v: "%dk" % round(v / 1000))
    body += panel(rows, "bytes", W, "large files (64 MiB)", "GB", 1e9,
                  lambda v: "%.1f" % v)
    body.append("</svg>")
    with open(sys.argv[2], "w") as f:
        f.write("\n".join(body) + "\n")


if __name__ == "__main__":
    main()
