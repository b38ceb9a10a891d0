#!/usr/bin/env bash
# Builds the libFuzzer targets with clang + ASan + UBSan, fuzzes each for $FUZZ_SECONDS (default
# 60), then replays the seed corpus through ctest. Not run by CI (CI replays the corpus only).
#
#   tests/fuzz/run.sh                     # every target
#   tests/fuzz/run.sh fuzz_codec_chain    # some targets
#
# Environment: FUZZ_SECONDS, FUZZ_BUILD_DIR (default build/fuzz), FUZZ_JOBS (parallel build jobs,
# default 2), CC/CXX (default clang/clang++). New inputs go to $FUZZ_BUILD_DIR/fuzz-work/<target>
# (never into the committed seeds); crashes to $FUZZ_BUILD_DIR/fuzz-artifacts/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${FUZZ_BUILD_DIR:-$ROOT/build/fuzz}
SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  TARGETS=(fuzz_codec_chain fuzz_shard_index fuzz_grid fuzz_chunked_array fuzz_batch fuzz_tiff_tile)
fi

cmake -S "$ROOT" -B "$BUILD" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER="${CC:-clang}" -DCMAKE_CXX_COMPILER="${CXX:-clang++}" \
  -DVOXCORE_BUILD_FUZZERS=ON -DVOXCORE_BUILD_TESTS=ON -DVOXCORE_CUDA=OFF \
  -DVOXCORE_SANITIZE=address,undefined
cmake --build "$BUILD" -j "${FUZZ_JOBS:-2}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
mkdir -p "$BUILD/fuzz-artifacts"
status=0
for t in "${TARGETS[@]}"; do
  mkdir -p "$BUILD/fuzz-work/$t"
  echo "== $t: fuzzing for ${SECONDS_PER_TARGET}s"
  # A chunk-sized input must never make the library allocate more than 1 GiB: sizes come from
  # metadata, not from the payload (RELIABILITY.md), so -malloc_limit_mb treats that as a crash.
  if ! "$BUILD/tests/fuzz/$t" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 \
      -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 \
      -artifact_prefix="$BUILD/fuzz-artifacts/$t-" \
      "$BUILD/fuzz-work/$t" "$ROOT/tests/fuzz/corpus/$t"; then
    echo "!! $t found a crash; reproducer in $BUILD/fuzz-artifacts/" >&2
    status=1
  fi
done

echo "== corpus replay"
ctest --test-dir "$BUILD" -R _replay --output-on-failure || status=1
exit $status
