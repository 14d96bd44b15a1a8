#!/usr/bin/env bash
# Set-up, build, and the main job: for now a short CPU training demo on real
# data (MNIST from ../shared/data or $TPP_DATA; Fashion-MNIST from Debian's
# dataset-fashion-mnist package). Later issues turn this into the full
# pruning pipeline.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh" -DTPP_BUILD_TESTS=OFF
tpp="${TPP_BUILD_DIR:-$root/build}/tpp"
"$tpp" --version
cd "$root"
echo "== An MLP on MNIST when it is present, else Fashion-MNIST"
if "$tpp" data --dataset mnist >/dev/null 2>&1; then dataset=mnist; else dataset=fashion-mnist; fi
"$tpp" demo --dataset "$dataset" --arch mlp --epochs 2
echo "== A small CNN (conv-BN-ReLU-pool x2) on Fashion-MNIST"
"$tpp" demo --dataset fashion-mnist --arch cnn --epochs 1 --limit 20000
