#!/usr/bin/env bash
# End to end: `tpp train` against a PyTorch script with the same recipe
# (benchmarks/torch_train.py), one epoch on Fashion-MNIST each, data loading
# included, in alternating rounds; prints the median training images/s of both
# and the ratio of their times per image (ours/PyTorch: below 1 we are faster).
#
#   benchmarks/compare_train.sh [rounds]        (default 3)
#   env: ARCHS (default "resnet20 vgg_small"), LIMIT (training images per epoch,
#        default 5120), THREADS (default 2), TPP (a tpp binary; default: build
#        BUILD_DIR, default build-bench, as compare_cpu.sh), DATA_DIR (the
#        folder of the Fashion-MNIST .gz files; default /usr/share/datasets/fashion-mnist),
#        TPP_FLAGS (more flags for tpp train, e.g. "--workers 1"), BOOST=1 (both at
#        raised priority, as compare_cpu.sh's BOOST)
set -euo pipefail

if [[ ${BOOST:-0} == 1 && -z ${TPP_BOOSTED:-} ]]; then
  exec env TPP_BOOSTED=1 setsid --wait bash -c \
    'echo -19 >/proc/self/autogroup || echo "compare_train: could not raise priority" >&2; exec "$0" "$@"' "$0" "$@"
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
rounds=${1:-3}
archs=${ARCHS:-resnet20 vgg_small}
limit=${LIMIT:-5120}
threads=${THREADS:-2}
data_dir=${DATA_DIR:-/usr/share/datasets/fashion-mnist}
build=${BUILD_DIR:-$root/build-bench}

[[ -e $data_dir/train-images-idx3-ubyte.gz ]] \
  || { echo "compare_train: no Fashion-MNIST in $data_dir (apt-get install dataset-fashion-mnist, or set DATA_DIR)" >&2; exit 1; }
tpp=${TPP:-}
if [[ -z $tpp ]]; then
  # shellcheck source=cpu_build.sh
  source "$here/cpu_build.sh"
  cpu_build "$build" tpp
  tpp=$build/tpp
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# tpp finds the dataset as <data dir>/fashion-mnist.
mkdir -p "$out/data" && ln -s "$data_dir" "$out/data/fashion-mnist"
for r in $(seq 1 "$rounds"); do
  for arch in $archs; do
    # shellcheck disable=SC2086
    OMP_NUM_THREADS=$threads "$tpp" train --arch "$arch" --dataset fashion-mnist --data-dir "$out/data" --epochs 1 \
      --limit "$limit" --test-limit 256 --device cpu --out "$out/run" --overwrite ${TPP_FLAGS:-} >"$out/tpp.log" 2>&1 \
      || { tail -5 "$out/tpp.log" >&2; echo "compare_train: tpp train failed" >&2; exit 1; }
    /usr/bin/python3 -c 'import json,sys; print(next(json.loads(l)["images_per_s"] for l in open(sys.argv[1]) if "images_per_s" in l))' \
      "$out/run/log.jsonl" >>"$out/ours_$arch"
    /usr/bin/python3 "$here/torch_train.py" --arch "$arch" --data-dir "$data_dir" --limit "$limit" \
      --threads "$threads" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["images_per_s"])' \
      >>"$out/torch_$arch"
  done
done

echo "tpp train vs PyTorch, 1 epoch of $limit Fashion-MNIST images, batch 128, $threads thread(s), median of $rounds alternating rounds; $(lscpu | sed -n 's/^Model name: *//p')"
echo
echo "| case | ours img/s | PyTorch img/s | ours/PyTorch (time per image) |"
echo "|---|---:|---:|---:|"
for arch in $archs; do
  /usr/bin/python3 - "$arch" "$out/ours_$arch" "$out/torch_$arch" <<'PY'
import statistics, sys
arch, ours, torch = sys.argv[1], *(statistics.median(float(v) for v in open(p)) for p in sys.argv[2:4])
print(f"| tpp train {arch} fashion-mnist | {ours:.0f} | {torch:.0f} | {torch / ours:.2f} |")
PY
done
