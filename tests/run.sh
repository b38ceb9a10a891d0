#!/usr/bin/env bash
# Runs the whole suite: the C++ tests (ctest), an installed-package C++ consumer build, the Python
# layer contract (lint-imports, configured in pyproject.toml), then pytest.
# Expects tests/install.sh to have run.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
gen=""
command -v ninja >/dev/null && gen="-G Ninja"

cmake -S . -B build/tests $gen -DCMAKE_BUILD_TYPE=Release -DVOXCORE_BUILD_TESTS=ON
cmake --build build/tests -j "$jobs"
ctest --test-dir build/tests --output-on-failure -j "$jobs"

# The same C++ suite and the fuzz corpus replays against an ASan+UBSan build of the core.
cmake -S . -B build/asan $gen -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVOXCORE_BUILD_TESTS=ON \
  -DVOXCORE_CUDA=OFF -DVOXCORE_SANITIZE=address,undefined
cmake --build build/asan -j "$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --test-dir build/asan --output-on-failure -j "$jobs"

# A C++ program outside the tree finds the installed library with find_package(voxcore).
rm -rf build/consumer build/install
cmake --install build/tests --prefix build/install --component cpp >/dev/null
cmake -S cpp/examples -B build/consumer $gen -DCMAKE_PREFIX_PATH="$PWD/build/install" -DCMAKE_BUILD_TYPE=Release
cmake --build build/consumer -j "$jobs"
./build/consumer/brick_reader

# The layer contract, read from the source tree (docs/architecture.md).
PYTHONPATH="$PWD/python" lint-imports --no-cache

python3 -m pytest tests -q
