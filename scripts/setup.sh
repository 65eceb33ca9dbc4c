#!/usr/bin/env bash
# Installs pagedc's build dependencies from Debian packages (only what is missing) and builds it.
# Idempotent: on a machine that has everything it only runs the incremental build.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  cmake ninja-build g++ pkg-config python3
  python3-venv                                    # .venv-client/ for tests/client (Debian's python3 has no ensurepip without it)
  libprotobuf-dev protobuf-compiler libonnx-dev   # ONNX ModelProto classes, checker
  libgtest-dev                                    # unit tests
  llvm-14-tools                                   # FileCheck, lit, not, split-file
  libzip-dev                                      # .npz golden files
  nlohmann-json3-dev                              # manifests, JSON
  libcli11-dev                                    # command-line parsing
  libssl-dev                                      # SHA-256 checksums of compiled artifacts (libcrypto)
  libpcre2-dev                                    # Unicode regexes of tokenizer.json pre-tokenizers (runtime/tokenizer)
  libutf8proc-dev                                 # Unicode normalization (NFC/NFD/NFKC/NFKD) of tokenizer.json normalizers
  libdnnl-dev                                     # oneDNN: the CPU backend's GEMMs (docs/PERF.md has the measurement)
  libcpp-httplib-dev                              # pagedc serve's HTTP server (docs/DEPENDENCIES.md has the measurement)
  prometheus-cpp-dev                              # pagedc serve's /metrics
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

# The official OpenAI Python client, pinned in tests/client/requirements.txt, for the ctest
# openai_client (tests/client/README.md). Made anew when missing or when the pins change.
CLIENT_VENV=.venv-client
CLIENT_REQUIREMENTS=tests/client/requirements.txt
client_stamp="$(sha256sum "$CLIENT_REQUIREMENTS" | cut -d' ' -f1)"
if [ ! -x "$CLIENT_VENV/bin/python" ] || [ "$(cat "$CLIENT_VENV/.requirements.sha256" 2>/dev/null)" != "$client_stamp" ]; then
  echo "setup: creating $CLIENT_VENV from $CLIENT_REQUIREMENTS"
  rm -rf "$CLIENT_VENV"
  python3 -m venv "$CLIENT_VENV"
  "$CLIENT_VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$CLIENT_REQUIREMENTS"
  echo "$client_stamp" >"$CLIENT_VENV/.requirements.sha256"
fi

BUILD_DIR="${PAGEDC_BUILD_DIR:-build}"
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo ${PAGEDC_CMAKE_ARGS:-}
fi
ninja -C "$BUILD_DIR"
