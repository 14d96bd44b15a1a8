#!/usr/bin/env bash
# Installs the Debian packages that building and testing tpp-engine need.
# Idempotent: installs only what is missing. Runs apt as root, or via sudo.
set -euo pipefail

packages=(
  build-essential clang libomp-dev cmake ninja-build pkg-config ccache
  libopenblas-dev libdnnl-dev libfmt-dev doctest-dev libstb-dev zlib1g-dev libcli11-dev
  nlohmann-json3-dev libturbojpeg0-dev libbenchmark-dev
  libopenmpi-dev openmpi-bin
  dataset-fashion-mnist
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  as_root=(sudo)
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
