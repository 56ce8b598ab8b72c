// syncd_bench: syncd beside lsyncd 2.2.3 and rsync over OpenSSH, on the same loopback, in one
// run, with the seed's config shape. Prints each figure and its ratio to syncd's.
// Usage: syncd_bench [--only latency|churn|startup|rename|deltas|idle] [--samples N]
//                    [--churn-files N] [--startup-files N] [--big-files N] [--big-mib N]
//                    [--rename-files N] [--delta-big-mib N] [--delta-rewrite-mib N]
//                    [--delta-small-files N]
//                    [--idle-dirs N] [--idle-seconds N] [--interval-ms N] [--peer-disk-mib N]
#include <sched.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tests/bench/workloads.h"

namespace {

using syncd::bench::Figure;

std::string Cell(const std::optional<double>& v) {
  if (!v) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, *v >= 100 ? "%.0f" : *v >= 10 ? "%.1f" : "%.3g", *v);
  return buf;
}

void Print(const std::vector<Figure>& figures) {
  const char* tools[] = {"syncd", "lsyncd delay=1", "lsyncd default (15 s)", "rsync -a over ssh"};
  std::printf("\n%-58s %-38s %10s %16s %22s %18s\n", "workload", "metric", tools[0], tools[1],
              tools[2], tools[3]);
  for (const Figure& f : figures) {
    std::string metric = f.metric + " (" + f.unit + ")";
    std::printf("%-58s %-38s", f.workload.c_str(), metric.c_str());
    auto base = f.by_tool.contains(tools[0]) ? f.by_tool.at(tools[0]) : std::nullopt;
    for (const char* t : tools) {
      auto it = f.by_tool.find(t);
      std::string cell = it == f.by_tool.end() ? "" : Cell(it->second);
      // Ratio to syncd: how many times syncd's figure the other tool's is.
      if (it != f.by_tool.end() && t != tools[0] && base && it->second && *base > 0)
        cell += " (" + Cell(*it->second / *base) + "x)";
      int width = t == tools[0] ? 10 : t == tools[1] ? 16 : t == tools[2] ? 22 : 18;
      std::printf(" %*s", width, cell.c_str());
    }
    std::printf("\n");
  }
}

}  // namespace

int main(int argc, char** argv) {
  syncd::bench::Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    std::string v = argv[i + 1];
    if (flag == "--only") o.only = v;
    else if (flag == "--samples") o.latency_samples = std::atoi(v.c_str());
    else if (flag == "--interval-ms") o.latency_interval_ms = std::atoi(v.c_str());
    else if (flag == "--churn-files") o.churn_files = std::atoi(v.c_str());
    else if (flag == "--startup-files") o.startup_small_files = std::atoi(v.c_str());
    else if (flag == "--big-files") o.startup_big_files = std::atoi(v.c_str());
    else if (flag == "--big-mib") o.startup_big_mib = std::atoi(v.c_str());
    else if (flag == "--rename-files") o.rename_files = std::atoi(v.c_str());
    else if (flag == "--delta-big-mib") o.delta_big_mib = std::atoi(v.c_str());
    else if (flag == "--delta-rewrite-mib") o.delta_rewrite_mib = std::atoi(v.c_str());
    else if (flag == "--delta-small-files") o.delta_small_files = std::atoi(v.c_str());
    else if (flag == "--idle-dirs") o.idle_dirs = std::atoi(v.c_str());
    else if (flag == "--idle-seconds") o.idle_seconds = std::atoi(v.c_str());
    else if (flag == "--peer-disk-mib") o.peer_disk_mib = std::atoi(v.c_str());
    else if (flag == "--scale-files") o.scale_files = std::atoi(v.c_str());
    else {
      std::fprintf(stderr, "unknown option %s\n", flag.c_str());
      return 2;
    }
  }
  if (geteuid() != 0) {
    std::fprintf(stderr, "syncd_bench needs root (sshd, namespaces)\n");
    return 1;
  }
  // syncd's history and manifests go here, not to this machine's /var/lib/syncd.
  char state[] = "/tmp/syncd-bench-state.XXXXXX";
  bool own_state = ::mkdtemp(state) != nullptr;
  if (own_state) ::setenv("SYNCD_STATE_DIR", state, 1);
  // A network namespace of its own: sshd on 127.0.0.1:22 and an exact count of bytes on lo.
  if (unshare(CLONE_NEWNET) != 0 || std::system("ip link set lo up") != 0) {
    std::perror("network namespace");
    return 1;
  }
  utsname u;
  uname(&u);
  std::printf("syncd_bench: %ld cores, kernel %s; syncd %s vs lsyncd 2.2.3 and rsync, loopback sshd\n",
              sysconf(_SC_NPROCESSORS_ONLN), u.release, SYNCD_VERSION);
  std::fflush(stdout);
  syncd::bench::Bench bench(o);
  std::printf("%s\n", bench.Storage().c_str());
  std::fflush(stdout);
  Print(bench.RunAll());
  if (own_state) std::filesystem::remove_all(state);
  return 0;
}
