#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs every test: GoogleTest units and FileCheck tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD_DIR="${PAGEDC_BUILD_DIR:-build}"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)"
