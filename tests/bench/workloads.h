// The benchmark's tools and workloads. Every tool replicates with the seed's config shape
// (default.rsyncssh, exclude '.*', archive, prune_empty_dirs) over the same loopback sshd,
// into a peer that sees the same paths in a mount namespace of its own.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/integration/harness.h"

namespace syncd::bench {

struct Options {
  int latency_samples = 50;
  int latency_interval_ms = 200;
  int churn_files = 2000;
  int startup_small_files = 20000;
  int startup_big_files = 20;
  int startup_big_mib = 20;
  int rename_files = 1000;
  int delta_big_mib = 200;      // The file that gets a 1 MiB change in the middle, and an append.
  int delta_rewrite_mib = 50;   // The file rewritten with new data.
  int delta_small_files = 2000;
  int idle_dirs = 50000;
  int idle_seconds = 10;
  int scale_files = 1000000;  // Small files, ten per directory (a session store grown large).
  std::string only;  // Run only the workload of this name.
  // Each node has a disk of its own: the peer's tree lives on an ext4 image of this size on a
  // direct-I/O loop device. 0 puts both trees on the one filesystem the benchmark runs on.
  int peer_disk_mib = 3072;
};

// One measured figure; `value` is unset when the tool does not apply or timed out.
struct Figure {
  std::string workload;
  std::string metric;
  std::string unit;
  std::map<std::string, std::optional<double>> by_tool;  // tool name -> value
  bool lower_is_better = true;
};

// The standby's own disk: an ext4 image on a loop device mounted at `at`, unmounted on
// destruction. Without it the two "nodes" share one filesystem journal, and every write of the
// workload delays every file the replicator creates (measured: 600 us per create instead of 110).
class PeerDisk {
 public:
  PeerDisk(const std::string& image, const std::string& at, int mib);
  ~PeerDisk();
  bool mounted() const { return mounted_; }
  const std::string& describe() const { return describe_; }

 private:
  std::string at_, device_, describe_;
  bool mounted_ = false;
};

// The machine both nodes run on: sshd, keys, known_hosts, and where the trees live.
class Bench {
 public:
  explicit Bench(Options options);
  ~Bench();

  std::vector<Figure> RunAll();
  std::string Storage() const;  // Where each node's tree lives, for the report.

 private:
  struct Tool;
  std::unique_ptr<itest::Process> StartTool(const std::string& tool, const std::string& source,
                                            std::optional<double> delay);
  bool WaitConverged(const std::string& source, std::chrono::seconds timeout,
                     bool contents = true);
  std::string Fresh(const std::string& name);  // An empty source directory; clears its peer.
  std::string Peer(const std::string& source) const;
  bool WaitReady(itest::Process& tool, const std::string& source);
  // One `rsync -a --delete` of `source` to the peer over OpenSSH; true if it succeeded.
  bool Rsync(const std::string& source);
  // One syncfs() of the peer's filesystem, then the seconds since `start`: when what a tool
  // wrote is on the peer's disk.
  double DurableSince(std::chrono::steady_clock::time_point start) const;
  static uint64_t LoopbackBytes();

  void Latency(std::vector<Figure>& out);
  void Churn(std::vector<Figure>& out);
  void Startup(std::vector<Figure>& out);
  void Rename(std::vector<Figure>& out);
  void Deltas(std::vector<Figure>& out);
  void Idle(std::vector<Figure>& out);
  void Scale(std::vector<Figure>& out);

  Options o_;
  itest::TempDir tmp_;
  std::string osm1_, osm2_, home_, syncd_key_, lsyncd_key_, known_hosts_;
  std::unique_ptr<PeerDisk> peer_disk_;  // Unmounted after sshd_ is gone.
  std::unique_ptr<itest::SshServer> sshd_;
};

}  // namespace syncd::bench
