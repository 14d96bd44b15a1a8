#!/usr/bin/python3
"""The thread-scaling table of compare_cpu.sh: for each case, the median ms
of ours and PyTorch's at each thread count, and the speed-up of the largest
count over the smallest.

  scaling_table.py ROUNDS THREADS:OUT [THREADS:OUT ...]

OUT is a folder as median_table.py reads (ours_R.json, torch_R.json).
"""
import sys

from median_table import Medians, fmt_ms, fmt_ratio


def main():
    rounds = int(sys.argv[1])
    runs = []
    for arg in sys.argv[2:]:
        threads, out = arg.split(":", 1)
        runs.append((int(threads), Medians(out, rounds)))
    runs.sort(key=lambda r: r[0])
    (low, first), (high, last) = runs[0], runs[-1]
    columns = [f"ours {t}t ms" for t, _ in runs] + [f"PyTorch {t}t ms" for t, _ in runs]
    columns += [f"ours {high}t/{low}t speed-up", f"PyTorch {high}t/{low}t speed-up"]
    print("| case | " + " | ".join(columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for name in first.order:
        cells = [fmt_ms(m.ours.get(name)) for _, m in runs] + [fmt_ms(m.torch.get(name)) for _, m in runs]
        cells += [fmt_ratio(first.ours.get(name), last.ours.get(name)),
                  fmt_ratio(first.torch.get(name), last.torch.get(name))]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
