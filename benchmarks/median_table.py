#!/usr/bin/python3
"""The markdown table of compare_cpu.sh and compare_gpu.sh: the median over
rounds of bench_ops' times (OUT/ours_R.json, Google Benchmark JSON) and
torch_ops.py's (OUT/torch_R.json), case by case, with their ratio.

  median_table.py OUT ROUNDS OURS_LABEL RATIO HEADER

RATIO is "ours/PyTorch" or "PyTorch/ours" (the column's name uses OURS_LABEL
for "ours"). HEADER is printed first, formatted with {ours[key]} (bench_ops'
context) and {torch[key]} (torch_ops.py's info); a missing key shows as "?".
Cases for which bench_ops reports the counter allocs_per_step (system
allocations per iteration after warm-up) get a column of it. With
OUT/baseline_R.json (compare_cpu.sh's BASELINE_OPS: bench_ops of another
commit, timed in the same rounds) the table gets its times and ours/before.
"""
import json
import pathlib
import statistics
import sys

ALLOCS = "allocs_per_step"


class Known(dict):
    def __missing__(self, key):
        return "?"


class Medians:
    """The medians over ROUNDS rounds in OUT: ours[name], torch[name] in ms
    (None when that side lacks the case), allocs[name], the cases in order,
    and bench_ops' context and torch_ops.py's info of the last round."""

    def __init__(self, out, rounds):
        out = pathlib.Path(out)
        ours, torch, allocs, self.order = {}, {}, {}, []
        self.context, self.info = Known(), Known()
        for r in range(1, rounds + 1):
            report = json.loads((out / f"ours_{r}.json").read_text())
            self.context = Known(report.get("context", {}))
            for b in report["benchmarks"]:
                name = b["name"].removesuffix("/real_time")
                assert b["time_unit"] == "ms", b
                ours.setdefault(name, []).append(b["real_time"])
                if ALLOCS in b:
                    allocs.setdefault(name, []).append(b[ALLOCS])
                if name not in self.order:
                    self.order.append(name)
            t = json.loads((out / f"torch_{r}.json").read_text())
            self.info = Known({k: v for k, v in t.items() if k != "results"})
            for name, ms in t["results"].items():
                torch.setdefault(name, []).append(ms)
        baseline = {}
        for r in range(1, rounds + 1):
            path = out / f"baseline_{r}.json"
            if path.exists():
                for b in json.loads(path.read_text())["benchmarks"]:
                    baseline.setdefault(b["name"].removesuffix("/real_time"), []).append(b["real_time"])
        self.order += [n for n in torch if n not in self.order]
        median = lambda d, n: statistics.median(d[n]) if n in d else None
        self.ours = {n: median(ours, n) for n in self.order}
        self.torch = {n: median(torch, n) for n in self.order}
        self.allocs = {n: median(allocs, n) for n in self.order}
        self.baseline = {n: median(baseline, n) for n in self.order} if baseline else None


def fmt_ms(v):
    return "n/a" if v is None else f"{v:.3f}" if v < 1 else f"{v:.2f}"


def fmt_ratio(a, b):
    return "n/a" if a is None or b is None else f"{a / b:.2f}"


def main():
    out, rounds, ours_label, ratio, header = sys.argv[1], int(sys.argv[2]), *sys.argv[3:6]
    if ratio not in ("ours/PyTorch", "PyTorch/ours"):
        sys.exit(f"median_table.py: RATIO must be ours/PyTorch or PyTorch/ours, not {ratio!r}")
    m = Medians(out, rounds)
    with_allocs = any(v is not None for v in m.allocs.values())
    print(header.format(ours=m.context, torch=m.info))
    print()
    before = " before ms |" if m.baseline else ""
    extra = (f" {ours_label}/before |" if m.baseline else "") + (" allocs/step |" if with_allocs else "")
    print(f"| case |{before} {ours_label} ms | PyTorch ms | {ratio.replace('ours', ours_label)} |{extra}")
    print("|---|" + "---:|" * (3 + (2 if m.baseline else 0) + (1 if with_allocs else 0)))
    for name in m.order:
        o, p = m.ours[name], m.torch[name]
        value = fmt_ratio(o, p) if ratio == "ours/PyTorch" else fmt_ratio(p, o)
        cells = [fmt_ms(m.baseline[name])] if m.baseline else []
        cells += [fmt_ms(o), fmt_ms(p), value]
        if m.baseline:
            cells.append(fmt_ratio(o, m.baseline[name]))
        if with_allocs:
            cells.append("n/a" if m.allocs[name] is None else f"{m.allocs[name]:g}")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
