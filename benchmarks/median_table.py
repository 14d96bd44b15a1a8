#!/usr/bin/python3
"""The markdown table of compare_cpu.sh and compare_gpu.sh: the median over
rounds of bench_ops' times (OUT/ours_R.json, Google Benchmark JSON) and
torch_ops.py's (OUT/torch_R.json), case by case, with their ratio.

  median_table.py OUT ROUNDS OURS_LABEL RATIO HEADER

RATIO is "ours/PyTorch" or "PyTorch/ours" (the column's name uses OURS_LABEL
for "ours"). HEADER is printed first, formatted with {ours[key]} (bench_ops'
context) and {torch[key]} (torch_ops.py's info); a missing key shows as "?".
"""
import json
import pathlib
import statistics
import sys


class Known(dict):
    def __missing__(self, key):
        return "?"


def main():
    out, rounds, ours_label, ratio, header = pathlib.Path(sys.argv[1]), int(sys.argv[2]), *sys.argv[3:6]
    if ratio not in ("ours/PyTorch", "PyTorch/ours"):
        sys.exit(f"median_table.py: RATIO must be ours/PyTorch or PyTorch/ours, not {ratio!r}")
    ours, torch, order = {}, {}, []
    context, info = Known(), Known()
    for r in range(1, rounds + 1):
        report = json.loads((out / f"ours_{r}.json").read_text())
        context = Known(report.get("context", {}))
        for b in report["benchmarks"]:
            name = b["name"].removesuffix("/real_time")
            assert b["time_unit"] == "ms", b
            ours.setdefault(name, []).append(b["real_time"])
            if name not in order:
                order.append(name)
        t = json.loads((out / f"torch_{r}.json").read_text())
        info = Known({k: v for k, v in t.items() if k != "results"})
        for name, ms in t["results"].items():
            torch.setdefault(name, []).append(ms)

    print(header.format(ours=context, torch=info))
    print()
    print(f"| case | {ours_label} ms | PyTorch ms | {ratio.replace('ours', ours_label)} |")
    print("|---|---:|---:|---:|")
    for name in order + [n for n in torch if n not in order]:
        o = statistics.median(ours[name]) if name in ours else None
        p = statistics.median(torch[name]) if name in torch else None
        fmt = lambda v: "n/a" if v is None else f"{v:.3f}" if v < 1 else f"{v:.2f}"
        value = "n/a" if o is None or p is None else f"{(o / p if ratio == 'ours/PyTorch' else p / o):.2f}"
        print(f"| {name} | {fmt(o)} | {fmt(p)} | {value} |")


if __name__ == "__main__":
    main()
