// Micro-benchmarks of the pure logic on the event path: filters, batcher, planning, codec.
#include <benchmark/benchmark.h>

#include "syncd/batcher.h"
#include "syncd/filter.h"
#include "syncd/sync_engine.h"
#include "tests/fakes/fake_fs.h"
#include "transport/codec.h"

namespace syncd {
namespace {

void BM_FilterSeedExclude(benchmark::State& state) {
  Filter f({".*"});
  for (auto _ : state) benchmark::DoNotOptimize(f.Excluded("var/lib/php/sessions/sess_abc123", false));
}
BENCHMARK(BM_FilterSeedExclude);

void BM_FilterTenPatternsDeepPath(benchmark::State& state) {
  Filter f({".*", "*.tmp", "cache/", "/logs/***", "**/build/*.o", "[0-9]*.bak", "a/b/c", "*~",
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

// Planning one changed file against the engine's knowledge of the peer.
void BM_PlanOneChangedFile(benchmark::State& state) {
  testing::FakeFileSystem fs;
  for (int i = 0; i < 2000; ++i) fs.File("sess_" + std::to_string(i), "data");
  SyncConfig config;
  config.source = "/src";
  config.rsync.archive = true;
  SyncEngine engine(config, fs);
  auto batch = engine.PlanReconcile({fs.at("")});
  engine.Committed(*batch, {});
  int i = 0;
  for (auto _ : state) {
    fs.at("sess_" + std::to_string(i % 2000)).meta.mtime_sec += 1;
    ChangeBatch b = engine.PlanChanges({"sess_" + std::to_string(i++ % 2000)});
    engine.Committed(b, {});
  }
}
BENCHMARK(BM_PlanOneChangedFile);

void BM_EncodeDecodeEntry(benchmark::State& state) {
  Entry e;
  e.path = "var/lib/php/sessions/sess_0123456789abcdef";
  e.meta = Meta{0600, 33, 33, "www-data", "www-data", 1700000000, 5};
  for (auto _ : state) {
    std::string frame = transport::Encoder(transport::MsgType::kSetMeta).EntryField(e).Finish();
    transport::Decoder d(std::string_view(frame).substr(5));
    benchmark::DoNotOptimize(d.EntryField());
  }
}
BENCHMARK(BM_EncodeDecodeEntry);

}  // namespace
}  // namespace syncd
