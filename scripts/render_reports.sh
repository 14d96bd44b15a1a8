#!/usr/bin/env bash
# Renders report pages in headless Chromium (Debian's `chromium`) to PNG, to
# look at them as a user's browser shows them.
#
#   scripts/render_reports.sh OUT_DIR PAGE.html...
#   scripts/render_reports.sh OUT_DIR --tour      # makes the pages first: a tiny
#       train, tpp prune and compare on Fashion-MNIST (or $TPP_DATA), and renders them
#
# Each page becomes OUT_DIR/<name>.png at 1280 pixels wide.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: scripts/render_reports.sh OUT_DIR (PAGE.html... | --tour)}
shift
browser=$(command -v chromium || command -v chromium-browser || true)
[[ -n "$browser" ]] || { echo "render_reports: no chromium (apt-get install chromium)" >&2; exit 1; }
mkdir -p "$out"
pages=("$@")
if [[ "${1:-}" == "--tour" ]]; then
  tpp="${TPP_BUILD_DIR:-$root/build}/tpp"
  runs="$out/runs"
  data=(--dataset fashion-mnist --limit 1000 --test-limit 500 --device cpu)
  "$tpp" train --arch vgg_small "${data[@]}" --epochs 2 --lr-schedule 0:0.05 --out "$runs/dense" --overwrite
  "$tpp" prune --method tpp --base "$runs/dense/best.safetensors" --stage-pr '*features*:0.75' \
    --skip-layers '*features.0' "${data[@]}" --epochs 2 --lr-schedule 0:0.01 --reg-granularity 0.02 \
    --reg-interval 5 --stabilize-iters 100 --zero-out-interval 20 --log-interval 10 --out "$runs/tpp" --overwrite
  "$tpp" prune --method l1 --base "$runs/dense/best.safetensors" --stage-pr '*features*:0.75' \
    --skip-layers '*features.0' "${data[@]}" --epochs 2 --lr-schedule 0:0.01 --out "$runs/l1" --overwrite
  "$tpp" compare "$runs/dense" "$runs/l1" "$runs/tpp" --out "$runs/compare.html" --speed-rounds 3
  pages=("$runs/dense/report.html" "$runs/tpp/report.html" "$runs/compare.html")
fi
for page in "${pages[@]}"; do
  name=$(realpath --relative-to="$(dirname "$(dirname "$(realpath "$page")")")" "$page" | tr '/' '-')
  "$browser" --headless=new --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,2400 \
    --screenshot="$out/${name%.html}.png" "file://$(realpath "$page")" >/dev/null 2>&1
  echo "$out/${name%.html}.png"
done
