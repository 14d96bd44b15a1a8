#!/usr/bin/env bash
# The differential test on a fresh seed: draws the cases with PyTorch
# (scripts/difftest.py), replays them with tpp_difftest on the device and
# prints the seed and the commands that replay it. Exit 77 (a skip) when
# /usr/bin/python3 has no torch, or for a CUDA device when no GPU is usable.
# TPP_DIFFTEST_SEED picks the seed (default: from the clock).
#   tests/difftest/fresh_seed.sh BUILD/tests/tpp_difftest [cases per op [device]]
set -euo pipefail
runner=$1
per_op=${2:-12}
device=${3:-cpu}
root=$(cd "$(dirname "$0")/../.." && pwd)
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  echo "difftest: SKIPPED: /usr/bin/python3 cannot import torch (apt-get install python3-torch)"
  exit 77
fi
seed=${TPP_DIFFTEST_SEED:-$(( $(date +%s%N) % 1000000007 ))}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cases="$work/seed-$seed.safetensors"
echo "difftest seed: $seed (device $device)"
echo "replay: /usr/bin/python3 scripts/difftest.py --seed $seed --cases-per-op $per_op --out cases.safetensors" \
     "&& $runner cases.safetensors --device $device --trace"
/usr/bin/python3 "$root/scripts/difftest.py" --seed "$seed" --cases-per-op "$per_op" --out "$cases" >/dev/null
status=0
timeout 300 "$runner" "$cases" --device "$device" --skip-without-gpu || status=$?
if [ "$status" -ge 124 ]; then
  echo "difftest seed $seed: tpp_difftest crashed or hung (status $status); the case it was on:"
  timeout 300 "$runner" "$cases" --device "$device" --trace 2>&1 | grep 'difftest: running' | tail -n 1 || true
fi
exit "$status"
