#!/bin/sh
# Line and branch coverage of src/, layer by layer, from a coverage build
# whose tests have run (make coverage does both). Prints a table and exits
# non-zero when a layer is below the goal: 95% of lines, 85% of branches.
# Branches are counted as gcc emits them, less the ones gcovr can tell are
# compiler-made (exception paths, which C has none of).
set -eu
src=$1 build=$2
json=$build/coverage.json
gcovr --root "$src" --object-directory "$build" --filter "$src/src/" \
    --exclude-unreachable-branches --json-summary "$json" >/dev/null
python3 - "$json" <<'PY'
import json, sys
files = json.load(open(sys.argv[1]))["files"]
layers = {}
for f in files:
    parts = f["filename"].split("/")
    layer = parts[parts.index("src") + 1] if "src" in parts else "?"
    t = layers.setdefault(layer, [0, 0, 0, 0])
    t[0] += f["line_covered"]; t[1] += f["line_total"]
    t[2] += f["branch_covered"]; t[3] += f["branch_total"]
order = ["base", "sync", "thread", "queue", "pool", "process"]
names = [n for n in order if n in layers] + sorted(set(layers) - set(order))
total = [sum(layers[n][i] for n in names) for i in range(4)]
pct = lambda a, b: 100.0 * a / b if b else 100.0
short = 0
print(f"{'layer':<10}{'lines':>18}{'branches':>20}   goal: 95% lines, 85% branches")
for n in names + ["all"]:
    lc, lt, bc, bt = total if n == "all" else layers[n]
    lp, bp = pct(lc, lt), pct(bc, bt)
    met = lp >= 95 and bp >= 85
    short += n != "all" and not met
    print(f"{n:<10}{lp:>7.1f}% {lc:>4}/{lt:<5}{bp:>9.1f}% {bc:>4}/{bt:<5}  "
          + ("" if n == "all" else "met" if met else "BELOW"))
sys.exit(1 if short else 0)
PY
