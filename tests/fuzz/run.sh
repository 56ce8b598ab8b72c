#!/usr/bin/env bash
# Builds the fuzzers with clang and runs each for half of SECONDS: the agent's (on the seed
# corpus) and the client's (a real agent's answers, edited).
# Usage: run.sh SOURCE_DIR BUILD_DIR SECONDS. Fails on a crash, a leak, a sanitizer report, a
# session ended without FATAL or a client callback run twice; the input that did it is left in
# BUILD_DIR.
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
mkdir -p "$build/corpus" "$build/client_corpus"
cd "$build"
half=$(( seconds / 2 > 1 ? seconds / 2 : 1 ))
# New inputs go to the first directory; the seeds stay as they are.
./agent_fuzz -max_total_time="$half" -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 \
  "$build/corpus" "$src/tests/fuzz/corpus"
exec ./client_fuzz -max_total_time="$half" -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 \
  "$build/client_corpus"
