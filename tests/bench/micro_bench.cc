// Micro-benchmarks of the pure logic on the event path (filters, batcher, planning, codec) and
// of the delta stages on 64 MiB of content (signature, delta, patch), per MiB as bytes/s.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>

#include "syncd/batcher.h"
#include "syncd/filter.h"
#include "syncd/sync_planner.h"
#include "tests/fakes/fake_fs.h"
#include "tests/random_bytes.h"
#include "transport/codec.h"
#include "transport/rsync_delta.h"

namespace syncd {
namespace {

void BM_FilterSeedExclude(benchmark::State& state) {
  Filter f = Filter::Excluding({".*"});
  for (auto _ : state) benchmark::DoNotOptimize(f.Excluded("var/lib/php/sessions/sess_abc123", false));
}
BENCHMARK(BM_FilterSeedExclude);

void BM_FilterTenPatternsDeepPath(benchmark::State& state) {
  Filter f = Filter::Excluding({".*", "*.tmp", "cache/", "/logs/***", "**/build/*.o", "[0-9]*.bak", "a/b/c", "*~",
            "*.swp", "/var/run"});
  for (auto _ : state) benchmark::DoNotOptimize(f.Excluded("spool/jobs/2026/11/22/job-000123", false));
}
BENCHMARK(BM_FilterTenPatternsDeepPath);

// Adding a change notice for one of many pending paths (mostly repeats, as PHP writes).
void BM_BatcherAdd(benchmark::State& state) {
  Batcher b({});
  std::vector<std::string> paths;
  for (int i = 0; i < 2000; ++i) paths.push_back("sess_" + std::to_string(i));
  TimePoint now{};
  size_t i = 0;
  for (auto _ : state) {
    b.Add(paths[i++ % paths.size()], now);
    if (b.size() >= 2000) b.Take(now);
  }
}
BENCHMARK(BM_BatcherAdd);

// Planning one changed file against the planner's knowledge of the peer.
void BM_PlanOneChangedFile(benchmark::State& state) {
  testing::FakeFileSystem fs;
  for (int i = 0; i < 2000; ++i) fs.File("sess_" + std::to_string(i), "data");
  SyncConfig config;
  config.source = "/src";
  config.rsync.archive = true;
  SyncPlanner planner(config, fs);
  auto batch = planner.PlanReconcile({fs.at("")});
  planner.Committed(*batch, {});
  int i = 0;
  for (auto _ : state) {
    fs.at("sess_" + std::to_string(i % 2000)).meta.mtime_sec += 1;
    ChangeBatch b = planner.PlanChanges({"sess_" + std::to_string(i++ % 2000)});
    planner.Committed(b, {});
  }
}
BENCHMARK(BM_PlanOneChangedFile);

void BM_EncodeDecodeEntry(benchmark::State& state) {
  Entry e;
  e.path = "var/lib/php/sessions/sess_0123456789abcdef";
  e.meta = Meta{0600, 33, 33, "www-data", "www-data", 1700000000, 5, {}};
  for (auto _ : state) {
    std::string frame = transport::Encoder(transport::MsgType::kSetMeta).EntryField(e).Finish();
    transport::Decoder d(std::string_view(frame).substr(5));
    benchmark::DoNotOptimize(d.EntryField());
  }
}
BENCHMARK(BM_EncodeDecodeEntry);

constexpr size_t kDeltaBytes = 64 << 20;

// The old copy as an open unlinked file, and the new content: 1 MiB changed in the middle.
struct DeltaInput {
  std::string old_content = testing::RandomBytes(kDeltaBytes, 1);
  std::string new_content;
  int fd = -1;
  DeltaInput() {
    new_content = old_content;
    new_content.replace(kDeltaBytes / 2, 1 << 20, testing::RandomBytes(1 << 20, 2));
    FILE* f = std::tmpfile();
    fd = ::dup(::fileno(f));
    std::fclose(f);
    (void)!::pwrite(fd, old_content.data(), old_content.size(), 0);
  }
  ~DeltaInput() { ::close(fd); }
};

DeltaInput& Input() {
  static DeltaInput input;
  return input;
}

void BM_SignatureOfFile(benchmark::State& state) {
  Input();  // Made before the clock starts.
  for (auto _ : state) benchmark::DoNotOptimize(transport::SignatureOfFile(Input().fd, kDeltaBytes));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kDeltaBytes));
}
BENCHMARK(BM_SignatureOfFile)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_DeltaMostlyMatching(benchmark::State& state) {
  std::string sig = *transport::SignatureOfFile(Input().fd, kDeltaBytes);
  for (auto _ : state) {
    auto encoder = *transport::DeltaEncoder::Make(sig);
    size_t out = 0;
    auto sink = [&](std::string_view b) { out += b.size(); };
    for (size_t at = 0; at < kDeltaBytes; at += 256 << 10)
      (void)encoder->Update(std::string_view(Input().new_content).substr(at, 256 << 10), sink);
    (void)encoder->Finish(sink);
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kDeltaBytes));
}
BENCHMARK(BM_DeltaMostlyMatching)->Unit(benchmark::kMillisecond);

void BM_PatchMostlyMatching(benchmark::State& state) {
  std::string sig = *transport::SignatureOfFile(Input().fd, kDeltaBytes);
  auto encoder = *transport::DeltaEncoder::Make(sig);
  std::string delta;
  auto to_delta = [&](std::string_view b) { delta.append(b); };
  (void)encoder->Update(Input().new_content, to_delta);
  (void)encoder->Finish(to_delta);
  for (auto _ : state) {
    transport::PatchApplier patch(Input().fd);
    size_t out = 0;
    auto sink = [&](std::string_view b) { out += b.size(); };
    (void)patch.Update(delta, sink);
    (void)patch.Finish(sink);
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kDeltaBytes));
}
BENCHMARK(BM_PatchMostlyMatching)->Unit(benchmark::kMillisecond);


}  // namespace
}  // namespace syncd
