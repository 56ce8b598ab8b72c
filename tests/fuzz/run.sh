#!/usr/bin/env bash
# Builds the agent's fuzzer with clang and runs it for a bounded time on the seed corpus.
# Usage: run.sh SOURCE_DIR BUILD_DIR SECONDS. Fails on a crash, a leak, a sanitizer report or
# a session ended without FATAL; the input that did it is left in BUILD_DIR.
set -euo pipefail
src=$(cd "$1" && pwd)
mkdir -p "$2"
build=$(cd "$2" && pwd)
seconds=${3:-60}
cxx=$(command -v clang++-16 || true)
if [ -z "$cxx" ]; then
  echo "run.sh: clang++-16 not found; ./setup.sh installs it (clang-16, libclang-rt-16-dev)" >&2
  exit 1
fi
cmake -S "$src/tests/fuzz" -B "$build" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
mkdir -p "$build/corpus"
cd "$build"
# New inputs go to the first directory; the seeds stay as they are.
exec ./agent_fuzz -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 \
  "$build/corpus" "$src/tests/fuzz/corpus"
