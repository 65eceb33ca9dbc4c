#!/usr/bin/env bash
# Installs pagedc's build dependencies from Debian packages (only what is missing) and builds it.
# Idempotent: on a machine that has everything it only runs the incremental build.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  cmake ninja-build g++ pkg-config python3
  libprotobuf-dev protobuf-compiler libonnx-dev   # ONNX ModelProto classes, checker
  libgtest-dev                                    # unit tests
  llvm-14-tools                                   # FileCheck, lit, not, split-file
  libzip-dev                                      # .npz golden files
  nlohmann-json3-dev                              # manifests, JSON
  libcli11-dev                                    # command-line parsing
  libssl-dev                                      # SHA-256 checksums of compiled artifacts (libcrypto)
  libpcre2-dev                                    # Unicode regexes of tokenizer.json pre-tokenizers (runtime/tokenizer)
  libdnnl-dev                                     # oneDNN: the CPU backend's GEMMs (docs/PERF.md has the measurement)
)

missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

BUILD_DIR="${PAGEDC_BUILD_DIR:-build}"
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo ${PAGEDC_CMAKE_ARGS:-}
fi
ninja -C "$BUILD_DIR"
