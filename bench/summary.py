#!/usr/bin/env python3
"""Medians of several weft-bench runs, as the Markdown tables of BENCHMARKS.md.

    python3 bench/summary.py run1.jsonl run2.jsonl run3.jsonl

Each file holds one run's JSON lines (weft-bench --json, or make bench JSON=1).
For every case: the median of weft's figure, of the baseline's and of the
speedups, the speedups of each run in order, and the bar that applies to the
row (met when the median speedup reaches it). One table per suite, idle rows
first, then the loaded ones (`_loaded`, then `_loaded_one` and
`_loaded_spread` for the placements), each with its CPU-time rows (`_cpu`).
"""
import json
import statistics
import sys

NS = {"ns/op": 1.0, "us/op": 1e3, "ms/op": 1e6}


def readable(ns):
    unit, scale = next(((u, s) for u, s in (("ms/op", 1e6), ("us/op", 1e3)) if ns >= s),
                       ("ns/op", 1.0))
    v = ns / scale
    return ("%.0f" if v >= 100 else "%.1f" if v >= 10 else "%.2f") % v + " " + unit


def main(paths):
    rows = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                if not line.startswith("{"):
                    continue
                r = json.loads(line)
                rows.setdefault((r["suite"], r["case"]), []).append(r)
    suites = []
    for suite, _ in rows:
        if suite not in suites:
            suites.append(suite)
    for suite in suites:
        print("\n### Suite `%s`\n" % suite)
        print("| case | weft | baseline | baseline figure | speedup (runs) | bar |")
        print("|---|---|---|---|---|---|")
        cases = [k for k in rows if k[0] == suite]
        cases.sort(key=lambda k: ("_loaded" in k[1], "_one" in k[1], "_spread" in k[1]))
        for key in cases:
            runs = rows[key]
            unit = runs[0]["unit"]
            timed = unit in NS  # else a figure of its own unit (bytes/task), shown as is
            scale = NS[unit] if timed else 1.0
            show = readable if timed else (lambda v: "%.0f %s" % (v, unit))
            weft = statistics.median(r["weft"] * scale for r in runs)
            base = statistics.median(r["baseline_value"] * scale for r in runs)
            speedups = [r["speedup"] for r in runs]
            speedup = statistics.median(speedups)
            bar = runs[0].get("bar", 0)
            verdict = "report" if not bar else ">= %.1f: %s" % (bar, "met" if speedup >= bar else "**NOT MET**")
            print("| `%s` | %s | `%s` | %s | **%.2f** (%s) | %s |" % (
                key[1], show(weft), runs[0]["baseline"], show(base), speedup,
                ", ".join("%.2f" % s for s in speedups), verdict))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
