#!/usr/bin/env bash
# Downloads MNIST, CIFAR-10 and CIFAR-100 from their official locations into a
# data root laid out as `tpp` expects, verifying every download by SHA-256:
#
#   <root>/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
#   <root>/cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin
#   <root>/cifar-100-binary/{train,test}.bin
#
# Usage: scripts/get_data.sh [--dest DIR] [mnist] [cifar10] [cifar100]
#   DIR defaults to $TPP_DATA, else ./data; with no names, all three.
# Files already present with the right checksum are not fetched again.
# Fashion-MNIST: on Debian, `apt-get install dataset-fashion-mnist` puts it in
# /usr/share/datasets/fashion-mnist, where `tpp` finds it by itself.
# This needs network access; the build machines of this project have none.
set -euo pipefail

dest="${TPP_DATA:-./data}"
names=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dest) dest="$2"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    mnist|cifar10|cifar100) names+=("$1"); shift ;;
    *) echo "get_data.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ ${#names[@]} -gt 0 ]] || names=(mnist cifar10 cifar100)

fetch() {  # fetch URL FILE
  if command -v curl >/dev/null; then
    curl -fL --retry 3 -o "$2.part" "$1" || return 1
  elif command -v wget >/dev/null; then
    wget -O "$2.part" "$1" || return 1
  else
    echo "get_data.sh: neither curl nor wget is installed" >&2; return 1
  fi
  mv "$2.part" "$2"
}

has_sha256() {  # has_sha256 FILE SUM
  [[ -f "$1" ]] && [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$2" ]]
}

# get FILE SUM URL... : the first URL whose download has the right checksum.
get() {
  local file="$1" sum="$2"; shift 2
  if has_sha256 "$file" "$sum"; then echo "ok      $file"; return 0; fi
  mkdir -p "$(dirname "$file")"
  for url in "$@"; do
    echo "fetch   $url"
    if fetch "$url" "$file" && has_sha256 "$file" "$sum"; then echo "ok      $file"; return 0; fi
    echo "failed  $url (download error or SHA-256 mismatch)" >&2
    rm -f "$file" "$file.part"
  done
  echo "get_data.sh: could not fetch $(basename "$file") with SHA-256 $sum" >&2
  return 1
}

get_mnist() {
  # The original site first, then the mirror PyTorch's torchvision uses.
  local sites=("https://yann.lecun.com/exdb/mnist" "https://ossci-datasets.s3.amazonaws.com/mnist")
  local -A sums=(
    [train-images-idx3-ubyte.gz]=440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609
    [train-labels-idx1-ubyte.gz]=3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c
    [t10k-images-idx3-ubyte.gz]=8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6
    [t10k-labels-idx1-ubyte.gz]=f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6
  )
  for name in "${!sums[@]}"; do
    get "$dest/mnist/$name" "${sums[$name]}" "${sites[0]}/$name" "${sites[1]}/$name"
  done
}

# get_cifar ARCHIVE SUM FOLDER: download, verify, unpack into $dest.
get_cifar() {
  local archive="$dest/downloads/$1"
  get "$archive" "$2" "https://www.cs.toronto.edu/~kriz/$1"
  tar -xzf "$archive" -C "$dest"
  echo "unpack  $dest/$3"
}

mkdir -p "$dest"
for name in "${names[@]}"; do
  case "$name" in
    mnist) get_mnist ;;
    cifar10) get_cifar cifar-10-binary.tar.gz c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd \
               cifar-10-batches-bin ;;
    cifar100) get_cifar cifar-100-binary.tar.gz 58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec \
                cifar-100-binary ;;
  esac
done
echo "done: tpp data --dataset <name> --data-dir $dest"
