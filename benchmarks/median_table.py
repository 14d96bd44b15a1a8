#!/usr/bin/python3
"""The markdown table of compare_cpu.sh and compare_gpu.sh: the median over
rounds of bench_ops' times (OUT/ours_R.json, Google Benchmark JSON) and
torch_ops.py's (OUT/torch_R.json), case by case, with their ratio.

  median_table.py OUT ROUNDS OURS_LABEL RATIO HEADER

RATIO is "ours/PyTorch" or "PyTorch/ours" (the column's name uses OURS_LABEL
for "ours"). HEADER is printed first, formatted with {ours[key]} (bench_ops'
context) and {torch[key]} (torch_ops.py's info); a missing key shows as "?".
Cases for which bench_ops reports the counter allocs_per_step (system
allocations per iteration after warm-up) get a column of it.
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
        self.order += [n for n in torch if n not in self.order]
        median = lambda d, n: statistics.median(d[n]) if n in d else None
        self.ours = {n: median(ours, n) for n in self.order}
        self.torch = {n: median(torch, n) for n in self.order}
        self.allocs = {n: median(allocs, n) for n in self.order}


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
    extra = " allocs/step |" if with_allocs else ""
    print(f"| case | {ours_label} ms | PyTorch ms | {ratio.replace('ours', ours_label)} |{extra}")
    print("|---|---:|---:|---:|" + ("---:|" if with_allocs else ""))
    for name in m.order:
        o, p = m.ours[name], m.torch[name]
        value = fmt_ratio(o, p) if ratio == "ours/PyTorch" else fmt_ratio(p, o)
        allocs = "" if not with_allocs else f" {'n/a' if m.allocs[name] is None else f'{m.allocs[name]:g}'} |"
        print(f"| {name} | {fmt_ms(o)} | {fmt_ms(p)} | {value} |{allocs}")


if __name__ == "__main__":
    main()
