#include "tests/bench/workloads.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

namespace syncd::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using itest::Process;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

void WriteRaw(const std::string& path, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return;
  for (size_t off = 0; off < data.size();) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  ::close(fd);
}

std::string Bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(&s[i], &v, 8);
  }
  return s;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// Records when named files appear in a directory of the peer: inotify on the real directory,
// so the time is the moment the tool renamed the finished file into place.
class ArrivalWatcher {
 public:
  explicit ArrivalWatcher(const std::string& dir) {
    fd_ = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    inotify_add_watch(fd_, dir.c_str(), IN_MOVED_TO | IN_CLOSE_WRITE);
    thread_ = std::thread([this] { Run(); });
  }
  ~ArrivalWatcher() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::optional<Clock::time_point> Arrival(const std::string& name) {
    std::lock_guard lock(mu_);
    auto it = seen_.find(name);
    if (it == seen_.end()) return std::nullopt;
    return it->second;
  }

 private:
  void Run() {
    alignas(inotify_event) char buf[64 * 1024];
    while (!stop_) {
      ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        continue;
      }
      auto now = Clock::now();
      std::lock_guard lock(mu_);
      for (char* p = buf; p < buf + n;) {
        auto* ev = reinterpret_cast<inotify_event*>(p);
        if (ev->len) seen_.try_emplace(ev->name, now);
        p += sizeof(inotify_event) + ev->len;
      }
    }
  }
  int fd_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, Clock::time_point> seen_;
};

const char* kSyncd = "syncd";
const char* kLsyncd1 = "lsyncd delay=1";
const char* kLsyncd15 = "lsyncd default (15 s)";
const char* kRsync = "rsync -a over ssh";

std::string Capture(const std::string& command) {
  std::string out;
  if (FILE* f = ::popen(command.c_str(), "r")) {
    char buf[256];
    while (std::fgets(buf, sizeof buf, f)) out += buf;
    ::pclose(f);
  }
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

PeerDisk::PeerDisk(const std::string& image, const std::string& at, int mib) : at_(at) {
  std::string size = std::to_string(mib) + "M";
  if (std::system(("fallocate -l " + size + " '" + image + "' && mkfs.ext4 -q -F -i 4096 '" + image + "'").c_str()) != 0) {
    describe_ = "one shared filesystem (could not make an ext4 image)";
    return;
  }
  device_ = Capture("losetup --direct-io=on --find --show '" + image + "' 2>/dev/null");
  if (device_.empty() || std::system(("mount '" + device_ + "' '" + at + "'").c_str()) != 0) {
    if (!device_.empty()) std::system(("losetup -d " + device_).c_str());
    device_.clear();
    describe_ = "one shared filesystem (no loop device)";
    return;
  }
  mounted_ = true;
  describe_ = "peer on its own ext4 (" + size + ", " + device_ + ", direct I/O)";
}

PeerDisk::~PeerDisk() {
  if (mounted_) std::system(("umount '" + at_ + "'").c_str());
  if (!device_.empty()) std::system(("losetup -d " + device_).c_str());
}

Bench::Bench(Options options)
    : o_(std::move(options)),
      tmp_("bench"),
      osm1_(tmp_ / "osm1"),
      osm2_(tmp_ / "osm2"),
      home_(tmp_ / "home"),
      syncd_key_(tmp_ / "syncd_key"),
      lsyncd_key_(tmp_ / "lsyncd_key"),
      known_hosts_(tmp_ / "home/.ssh/known_hosts") {
  itest::MakeDirs(osm1_ + "/data");
  itest::MakeDirs(osm2_);
  if (o_.peer_disk_mib > 0)
    peer_disk_ = std::make_unique<PeerDisk>(tmp_ / "osm2.img", osm2_, o_.peer_disk_mib);
  itest::MakeDirs(osm2_ + "/data");
  itest::MakeDirs(home_ + "/.ssh");
  sshd_ = std::make_unique<itest::SshServer>(
      tmp_ / "sshd", 22, std::vector<std::pair<std::string, std::string>>{{osm2_, osm1_}});
  sshd_->Authorize(itest::SshServer::MakeUserKey(syncd_key_));
  sshd_->AuthorizeShell(itest::SshServer::MakeUserKey(lsyncd_key_));
  itest::WriteFile(known_hosts_, sshd_->KnownHostsLine("ed25519") + sshd_->KnownHostsLine("ecdsa"));
  sshd_->Start();
}

Bench::~Bench() = default;

std::string Bench::Storage() const {
  return "trees: source on " + Capture("findmnt -no SOURCE,FSTYPE,OPTIONS -T '" + osm1_ + "'") + "; " +
         (peer_disk_ ? peer_disk_->describe() : "peer on the same filesystem (--peer-disk-mib 0)");
}

std::string Bench::Peer(const std::string& source) const {
  return osm2_ + source.substr(osm1_.size());
}

std::string Bench::Fresh(const std::string& name) {
  std::string source = osm1_ + "/data/" + name;
  fs::remove_all(source);
  fs::remove_all(Peer(source));
  itest::MakeDirs(source);
  return source;
}

std::unique_ptr<Process> Bench::StartTool(const std::string& tool, const std::string& source,
                                          std::optional<double> delay) {
  std::string config = tmp_ / ("config-" + std::to_string(std::hash<std::string>()(tool)) + ".lua");
  std::ostringstream c;
  c << "settings { nodaemon = true, insist = true }\n"
    << "sync { default.rsyncssh, source = '" << source << "', host = '127.0.0.1', targetdir = '"
    << source << "', exclude = {'.*'}, rsync = { archive = true, prune_empty_dirs = true },\n";
  if (delay) c << "  delay = " << *delay << ",\n";
  if (tool == kSyncd) {
    c << "  ssh = { identityFile = '" << syncd_key_ << "' } }\n";
  } else {
    c << "  ssh = { identityFile = '" << lsyncd_key_ << "', options = { UserKnownHostsFile = '"
      << known_hosts_ << "', StrictHostKeyChecking = 'yes', BatchMode = 'yes' } } }\n";
  }
  itest::WriteFile(config, c.str());
  static int runs = 0;
  std::string log = tmp_ / ("tool-" + std::to_string(++runs) + ".log");  // One per run.
  std::vector<std::string> env{"HOME=" + home_, "SSH_AUTH_SOCK="};
  if (tool == kSyncd)
    return std::make_unique<Process>(std::vector<std::string>{itest::SyncdBinary(), "-nodaemon", "-log", "Delay", config},
                                     env, log);
  return std::make_unique<Process>(std::vector<std::string>{"/usr/bin/lsyncd", "-nodaemon", config},
                                   env, log);
}

bool Bench::Rsync(const std::string& source) {
  Process rsync({"/usr/bin/rsync", "-a", "--delete", "-e",
                 "ssh -i " + lsyncd_key_ + " -o UserKnownHostsFile=" + known_hosts_ + " -o BatchMode=yes",
                 source + "/", "127.0.0.1:" + source + "/"},
                {"HOME=" + home_}, tmp_ / "rsync.log");
  return rsync.Wait(std::chrono::seconds(600)) == 0;
}

bool Bench::WaitReady(Process& tool, const std::string& source) {
  itest::WriteFile(source + "/ready_marker", "x");
  std::string peer = Peer(source) + "/ready_marker";
  return itest::WaitUntil([&] { return fs::exists(peer) || !tool.running(); },
                          std::chrono::seconds(180)) &&
         tool.running();
}

double Bench::DurableSince(Clock::time_point start) const {
  if (int fd = ::open(osm2_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); fd >= 0) {
    ::syncfs(fd);
    ::close(fd);
  }
  return Seconds(Clock::now() - start);
}

bool Bench::WaitConverged(const std::string& source, std::chrono::seconds timeout, bool contents) {
  itest::SnapshotOptions src{
      .skip_dot_files = true, .prune_empty_dirs = true, .dir_times = false, .contents = contents};
  itest::SnapshotOptions dst{
      .skip_dot_files = true, .prune_empty_dirs = false, .dir_times = false, .contents = contents};
  std::string peer = Peer(source);
  bool same = itest::WaitUntil(
      [&] {
        auto a = itest::Snapshot(source, src);
        auto b = itest::Snapshot(peer, dst);
        a.erase(".");
        b.erase(".");
        return a == b;
      },
      timeout);
  return same;
}

uint64_t Bench::LoopbackBytes() {
  std::ifstream in("/proc/net/dev");
  for (std::string line; std::getline(in, line);) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    name.erase(0, name.find_first_not_of(' '));
    if (name != "lo") continue;
    std::istringstream f(line.substr(colon + 1));
    uint64_t v[9];
    for (uint64_t& x : v) f >> x;
    return v[8];  // Transmitted bytes: each loopback packet is counted once.
  }
  return 0;
}

void Bench::Latency(std::vector<Figure>& out) {
  Figure p50{"latency, one 4 KiB file", "p50", "ms", {}}, p90{"", "p90", "ms", {}},
      p99{"", "p99", "ms", {}}, max{"", "max", "ms", {}}, lost{"", "not arrived", "files", {}};
  struct Run {
    const char* tool;
    std::optional<double> delay;
  };
  for (Run run : {Run{kSyncd, std::nullopt}, Run{kLsyncd1, 1.0}, Run{kLsyncd15, std::nullopt}}) {
    std::string source = Fresh("latency");
    auto tool = StartTool(run.tool, source, run.delay);
    if (!WaitReady(*tool, source)) {
      std::fprintf(stderr, "%s did not start:\n%s\n", run.tool, tool->log().c_str());
      continue;
    }
    ArrivalWatcher watcher(Peer(source));
    std::string data = Bytes(4096, 1);
    std::vector<Clock::time_point> written;
    for (int i = 0; i < o_.latency_samples; ++i) {
      WriteRaw(source + "/lat_" + std::to_string(i), data);
      written.push_back(Clock::now());
      std::this_thread::sleep_for(std::chrono::milliseconds(o_.latency_interval_ms));
    }
    double wait_s = run.delay ? *run.delay + 10 : (run.tool == std::string(kSyncd) ? 10 : 30);
    itest::WaitUntil(
        [&] { return watcher.Arrival("lat_" + std::to_string(o_.latency_samples - 1)).has_value(); },
        std::chrono::milliseconds(static_cast<int>(wait_s * 1000)));
    std::vector<double> ms;
    int missing = 0;
    for (int i = 0; i < o_.latency_samples; ++i) {
      auto at = watcher.Arrival("lat_" + std::to_string(i));
      if (!at) {
        ++missing;
        continue;
      }
      ms.push_back(std::chrono::duration<double, std::milli>(*at - written[i]).count());
    }
    p50.by_tool[run.tool] = Percentile(ms, 0.5);
    p90.by_tool[run.tool] = Percentile(ms, 0.9);
    p99.by_tool[run.tool] = Percentile(ms, 0.99);
    max.by_tool[run.tool] = ms.empty() ? 0 : *std::max_element(ms.begin(), ms.end());
    lost.by_tool[run.tool] = missing;
    tool->Signal(SIGTERM);
    tool->Wait(std::chrono::seconds(40));
  }
  for (Figure* f : {&p50, &p90, &p99, &max, &lost}) out.push_back(*f);
}

void Bench::Churn(std::vector<Figure>& out) {
  // The loss window on failover is the time the peer takes to catch up once the writes stop;
  // the span from the first write also holds the workload's own writing time.
  Figure lag{"session churn (" + std::to_string(o_.churn_files) + " files x 3 rewrites, 20% deleted)",
             "converged, after the last write", "s", {}};
  Figure time{"", "converged, from the first write", "s", {}};
  Figure cpu{"", "CPU of the syncer and its children", "s", {}};
  Figure bytes{"", "bytes on the wire", "KiB", {}};
  Figure per_event{"", "syncd CPU per inotify event (whole run)", "us", {}};
  for (auto [name, delay] : {std::pair<const char*, std::optional<double>>{kSyncd, std::nullopt},
                             {kLsyncd1, 1.0}}) {
    std::string source = Fresh("churn");
    auto tool = StartTool(name, source, delay);
    if (!WaitReady(*tool, source)) continue;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    double cpu0 = tool->CpuSeconds();
    uint64_t bytes0 = LoopbackBytes();
    auto start = Clock::now();
    std::mt19937 rng(7);
    for (int i = 0; i < o_.churn_files; ++i)
      WriteRaw(source + "/sess_" + std::to_string(i), Bytes(300 + rng() % 724, static_cast<uint64_t>(i)));
    for (int round = 1; round <= 3; ++round)
      for (int i = 0; i < o_.churn_files; ++i)
        WriteRaw(source + "/sess_" + std::to_string(i),
                 Bytes(300 + rng() % 724, static_cast<uint64_t>(i + round * 100000)));
    for (int i = 0; i < o_.churn_files; i += 5) ::unlink((source + "/sess_" + std::to_string(i)).c_str());
    auto last_write = Clock::now();
    bool ok = WaitConverged(source, std::chrono::seconds(300));
    double elapsed = Seconds(Clock::now() - start);
    lag.by_tool[name] = ok ? std::optional<double>(Seconds(Clock::now() - last_write)) : std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // Children reaped.
    time.by_tool[name] = ok ? std::optional<double>(elapsed) : std::nullopt;
    cpu.by_tool[name] = tool->CpuSeconds() - cpu0;
    bytes.by_tool[name] = static_cast<double>(LoopbackBytes() - bytes0) / 1024;
    double cpu_total = tool->CpuSeconds();
    tool->Signal(SIGTERM);
    tool->Wait(std::chrono::seconds(40));
    // syncd counts the kernel events it read; everything it did, divided by them.
    std::string log = tool->log();
    size_t at = log.find("handled ");
    if (name == std::string(kSyncd) && at != std::string::npos) {
      double events = std::stod(log.substr(at + 8));
      if (events > 0) per_event.by_tool[name] = cpu_total * 1e6 / events;
    }
  }
  for (Figure* f : {&lag, &time, &cpu, &bytes, &per_event}) out.push_back(*f);
}

void Bench::Startup(std::vector<Figure>& out) {
  Figure time{"startup (" + std::to_string(o_.startup_small_files) + " small files, " +
                  std::to_string(o_.startup_big_files) + " x " + std::to_string(o_.startup_big_mib) +
                  " MiB)",
              "time to converge", "s", {}};
  // rsync and lsyncd are done when the peer's page cache holds the tree; syncd only once the
  // peer has it on disk. The same syncfs() on the peer's filesystem right after each tool is
  // done puts all three on that footing.
  Figure durable{"", "durable on the peer (tool done, then syncfs)", "s", {}};
  Figure bytes{"", "bytes on the wire", "MiB", {}};
  std::string source = Fresh("startup");
  for (int i = 0; i < o_.startup_small_files; ++i) {
    std::string dir = source + "/d" + std::to_string(i % 100);
    if (i < 100) itest::MakeDirs(dir);
    WriteRaw(dir + "/f" + std::to_string(i), Bytes(200 + static_cast<size_t>(i % 2000), static_cast<uint64_t>(i)));
  }
  for (int i = 0; i < o_.startup_big_files; ++i)
    WriteRaw(source + "/big" + std::to_string(i),
             Bytes(static_cast<size_t>(o_.startup_big_mib) << 20, static_cast<uint64_t>(1000 + i)));
  ::sync();
  for (const char* name : {kSyncd, kLsyncd1, kRsync}) {
    fs::remove_all(Peer(source));
    uint64_t bytes0 = LoopbackBytes();
    auto start = Clock::now();
    bool ok = false;
    std::unique_ptr<Process> tool;
    if (name == std::string(kRsync)) {
      ok = Rsync(source);
    } else {
      tool = StartTool(name, source, name == std::string(kLsyncd1) ? std::optional<double>(1.0)
                                                                   : std::nullopt);
      // Each tool says when its startup copy is complete, as rsync does by exiting; polling
      // 40,000 entries meanwhile would take a core from the tools being measured.
      bool is_syncd = name == std::string(kSyncd);
      ok = itest::WaitUntil(
          [&] {
            std::string log = tool->log();
            if (is_syncd) return log.find("in sync with") != std::string::npos;
            size_t startup = log.find("Startup of");
            return startup != std::string::npos && log.find("finished", startup) != std::string::npos;
          },
          std::chrono::seconds(600));
    }
    auto elapsed = Seconds(Clock::now() - start);
    double on_disk = DurableSince(start);
    ok = ok && WaitConverged(source, std::chrono::seconds(60), /*contents=*/false);
    time.by_tool[name] = ok ? std::optional<double>(elapsed) : std::nullopt;
    durable.by_tool[name] = ok ? std::optional<double>(on_disk) : std::nullopt;
    bytes.by_tool[name] = static_cast<double>(LoopbackBytes() - bytes0) / (1 << 20);
    if (tool) {
      tool->Signal(SIGTERM);
      tool->Wait(std::chrono::seconds(40));
    }
  }
  fs::remove_all(source);
  fs::remove_all(Peer(source));
  for (Figure* f : {&time, &durable, &bytes}) out.push_back(*f);
}

namespace {

// VmHWM and VmRSS of a process, in KiB.
std::pair<long, long> Memory(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  long hwm = 0, rss = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("VmHWM:")) hwm = std::stol(line.substr(6));
    if (line.starts_with("VmRSS:")) rss = std::stol(line.substr(6));
  }
  return {hwm, rss};
}

// The inotify watches a process holds, from its descriptors' fdinfo.
long Watches(pid_t pid) {
  long n = 0;
  std::string dir = "/proc/" + std::to_string(pid) + "/fdinfo";
  for (const auto& e : fs::directory_iterator(dir)) {
    std::ifstream in(e.path());
    for (std::string line; std::getline(in, line);)
      if (line.starts_with("inotify wd:")) ++n;
  }
  return n;
}

}  // namespace

// A session store grown large: `scale_files` small files, ten per directory. Cold start (an
// empty standby), syncd's warm start (a restart on the same node), rsync -a of the same tree,
// and lsyncd's startup, side by side; syncd's memory per file and its watches.
void Bench::Scale(std::vector<Figure>& out) {
  const int files = o_.scale_files, dirs = std::max(1, files / 10);
  std::string title = "scale (" + std::to_string(files) + " files in " + std::to_string(dirs) + " dirs)";
  Figure cold{title, "cold start: time to converge", "s", {}};
  Figure durable{"", "cold start, durable on the peer (tool done, then syncfs)", "s", {}};
  Figure warm{"", "warm start (restart on the same node)", "s", {}};
  Figure peak{"", "peak resident memory", "MiB", {}};
  Figure idle{"", "resident memory once in sync", "MiB", {}};
  Figure per_file{"", "resident memory per file once in sync", "B", {}};
  std::string max_watches = itest::ReadFile("/proc/sys/fs/inotify/max_user_watches");
  while (!max_watches.empty() && max_watches.back() == '\n') max_watches.pop_back();
  Figure watches{"", "inotify watches (max_user_watches " + max_watches + ")", "", {}};
  std::string source = Fresh("scale");
  auto made = Clock::now();
  for (int d = 0; d < dirs; ++d) {
    std::string dir = source + "/a" + std::to_string(d / 1000) + "/b" + std::to_string(d % 1000);
    itest::MakeDirs(dir);
    for (int f = 0; f < 10 && d * 10 + f < files; ++f)
      WriteRaw(dir + "/sess_" + std::to_string(d * 10 + f), Bytes(100, static_cast<uint64_t>(d * 10 + f)));
  }
  ::sync();
  std::printf("scale: made the tree in %.0f s\n", Seconds(Clock::now() - made));
  std::fflush(stdout);
  auto wait_syncd = [&](Process& tool, size_t from) {
    return itest::WaitUntil([&] { return tool.log().find("in sync with", from) != std::string::npos; },
                            std::chrono::seconds(3600));
  };
  for (const char* name : {kRsync, kLsyncd1, kSyncd}) {
    fs::remove_all(Peer(source));
    auto start = Clock::now();
    bool ok = false;
    std::unique_ptr<Process> tool;
    if (name == std::string(kRsync)) {
      ok = Rsync(source);
    } else {
      tool = StartTool(name, source, name == std::string(kLsyncd1) ? std::optional<double>(1.0) : std::nullopt);
      bool is_syncd = name == std::string(kSyncd);
      ok = is_syncd ? wait_syncd(*tool, 0) : itest::WaitUntil([&] {
        std::string log = tool->log();
        size_t at = log.find("Startup of");
        return at != std::string::npos && log.find("finished", at) != std::string::npos;
      }, std::chrono::seconds(3600));
    }
    double took = Seconds(Clock::now() - start);
    double on_disk = DurableSince(start);
    long copied = 0;  // Every file is there (a walk, after the clock stopped).
    for (const auto& e : fs::recursive_directory_iterator(Peer(source)))
      if (e.is_regular_file() && e.path().filename().string().starts_with("sess_")) ++copied;
    ok = ok && copied == files;
    cold.by_tool[name] = ok ? std::optional<double>(took) : std::nullopt;
    durable.by_tool[name] = ok ? std::optional<double>(on_disk) : std::nullopt;
    std::printf("scale: %s cold start %s (%ld files on the peer)\n", name, ok ? "done" : "FAILED", copied);
    std::fflush(stdout);
    if (!tool) continue;
    std::this_thread::sleep_for(std::chrono::seconds(3));  // Settled.
    auto [hwm, rss] = Memory(tool->pid());
    peak.by_tool[name] = hwm / 1024.0;
    idle.by_tool[name] = rss / 1024.0;
    per_file.by_tool[name] = rss * 1024.0 / files;
    watches.by_tool[name] = static_cast<double>(Watches(tool->pid()));
    if (name == std::string(kSyncd)) {
      // A restart: a clean stop, then the same config again.
      tool->Signal(SIGTERM);
      tool->Wait(std::chrono::seconds(120));
      auto again = Clock::now();
      tool = StartTool(name, source, std::nullopt);
      bool warmed = wait_syncd(*tool, 0) && tool->log().find("without listing it") != std::string::npos;
      warm.by_tool[name] = warmed ? std::optional<double>(Seconds(Clock::now() - again)) : std::nullopt;
    }
    tool->Signal(SIGTERM);
    tool->Wait(std::chrono::seconds(120));
  }
  fs::remove_all(source);
  fs::remove_all(Peer(source));
  for (Figure* f : {&cold, &durable, &warm, &peak, &idle, &per_file, &watches}) out.push_back(*f);
}

void Bench::Rename(std::vector<Figure>& out) {
  Figure time{"rename of a directory of " + std::to_string(o_.rename_files) + " files",
              "time to converge", "ms", {}};
  Figure bytes{"", "bytes on the wire", "KiB", {}};
  for (auto [name, delay] : {std::pair<const char*, std::optional<double>>{kSyncd, std::nullopt},
                             {kLsyncd1, 1.0}}) {
    std::string source = Fresh("rename");
    itest::MakeDirs(source + "/before");
    for (int i = 0; i < o_.rename_files; ++i)
      WriteRaw(source + "/before/f" + std::to_string(i), Bytes(1024, static_cast<uint64_t>(i)));
    auto tool = StartTool(name, source, delay);
    if (!WaitReady(*tool, source) || !WaitConverged(source, std::chrono::seconds(120))) continue;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    uint64_t bytes0 = LoopbackBytes();
    auto start = Clock::now();
    fs::rename(source + "/before", source + "/after");
    bool ok = WaitConverged(source, std::chrono::seconds(120));
    time.by_tool[name] = ok ? std::optional<double>(Seconds(Clock::now() - start) * 1000) : std::nullopt;
    bytes.by_tool[name] = static_cast<double>(LoopbackBytes() - bytes0) / 1024;
    tool->Signal(SIGTERM);
    tool->Wait(std::chrono::seconds(40));
  }
  for (Figure* f : {&time, &bytes}) out.push_back(*f);
}

// Changes to files the peer already holds, syncd (live) beside one `rsync -a` over OpenSSH run
// after each change. Each step is timed from the end of the change until the peer holds it,
// and counted in bytes on the loopback from its start.
void Bench::Deltas(std::vector<Figure>& out) {
  const std::string big_name = std::to_string(o_.delta_big_mib) + " MiB";
  struct Step {
    std::string workload;
    std::function<void(const std::string& source)> change;
    std::string file;  // The file to wait for; empty: the whole tree.
  };
  const size_t big = static_cast<size_t>(o_.delta_big_mib) << 20;
  const size_t rewrite = static_cast<size_t>(o_.delta_rewrite_mib) << 20;
  std::vector<Step> steps{
      {"1 MiB changed in the middle of a " + big_name + " file",
       [&](const std::string& source) {
         int fd = ::open((source + "/big.img").c_str(), O_WRONLY | O_CLOEXEC);
         std::string data = Bytes(1 << 20, 77);
         (void)!::pwrite(fd, data.data(), data.size(), static_cast<off_t>(big / 2));
         ::close(fd);
       },
       "big.img"},
      {"4 KiB appended to a " + big_name + " file",
       [&](const std::string& source) {
         int fd = ::open((source + "/big.img").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
         std::string data = Bytes(4096, 78);
         (void)!::write(fd, data.data(), data.size());
         ::close(fd);
       },
       "big.img"},
      {"a " + std::to_string(o_.delta_rewrite_mib) + " MiB file rewritten with new data",
       [&](const std::string& source) { WriteRaw(source + "/rewrite.img", Bytes(rewrite, 79)); },
       "rewrite.img"},
      {std::to_string(o_.delta_small_files) + " small files created",
       [&](const std::string& source) {
         itest::MakeDirs(source + "/sessions");
         for (int i = 0; i < o_.delta_small_files; ++i)
           WriteRaw(source + "/sessions/sess_" + std::to_string(i),
                    Bytes(300 + static_cast<size_t>(i % 724), static_cast<uint64_t>(5000 + i)));
       },
       ""},
  };
  std::vector<Figure> time, bytes;
  for (const Step& step : steps) {
    time.push_back(Figure{step.workload, "converged, after the change", "s", {}});
    bytes.push_back(Figure{"", "bytes on the wire", "KiB", {}});
  }
  auto same_file = [&](const std::string& source, const std::string& file) {
    struct stat a, b;
    return ::stat((source + "/" + file).c_str(), &a) == 0 &&
           ::stat((Peer(source) + "/" + file).c_str(), &b) == 0 && a.st_size == b.st_size &&
           a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
  };
  for (const char* name : {kSyncd, kRsync}) {
    std::string source = Fresh("deltas");
    WriteRaw(source + "/big.img", Bytes(big, 70));
    WriteRaw(source + "/rewrite.img", Bytes(rewrite, 71));
    ::sync();
    std::unique_ptr<Process> tool;
    bool is_syncd = name == std::string(kSyncd);
    if (is_syncd) {
      tool = StartTool(name, source, std::nullopt);
      if (!WaitReady(*tool, source)) continue;
    } else if (!Rsync(source)) {
      continue;
    }
    if (!WaitConverged(source, std::chrono::seconds(120))) continue;
    for (size_t i = 0; i < steps.size(); ++i) {
      ::sync();
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      uint64_t bytes0 = LoopbackBytes();
      steps[i].change(source);
      // From the end of the change: what a failover at that moment would lose. syncd may have
      // begun while the small files were being written; rsync starts now.
      auto start = Clock::now();
      bool ok;
      if (!is_syncd) {
        ok = Rsync(source);
      } else if (steps[i].file.empty()) {
        ok = WaitConverged(source, std::chrono::seconds(300), /*contents=*/false);
      } else {  // One stat a millisecond: the file is in place once size and mtime match.
        auto deadline = Clock::now() + std::chrono::seconds(300);
        while (!(ok = same_file(source, steps[i].file)) && Clock::now() < deadline)
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      double elapsed = Seconds(Clock::now() - start);
      bytes[i].by_tool[name] = static_cast<double>(LoopbackBytes() - bytes0) / 1024;
      // Timed first, then checked byte for byte.
      ok = ok && WaitConverged(source, std::chrono::seconds(60));
      time[i].by_tool[name] = ok ? std::optional<double>(elapsed) : std::nullopt;
    }
    if (tool) {
      tool->Signal(SIGTERM);
      tool->Wait(std::chrono::seconds(40));
    }
    fs::remove_all(source);
    fs::remove_all(Peer(source));
  }
  for (size_t i = 0; i < steps.size(); ++i) {
    out.push_back(time[i]);
    out.push_back(bytes[i]);
  }
}

void Bench::Idle(std::vector<Figure>& out) {
  Figure cpu{"idle with " + std::to_string(o_.idle_dirs) + " directories watched",
             "CPU over " + std::to_string(o_.idle_seconds) + " s idle", "s", {}};
  Figure rss{"", "resident memory", "MiB", {}};
  std::string source = Fresh("idle");
  for (int i = 0; i < o_.idle_dirs; ++i) {
    std::string dir = source + "/g" + std::to_string(i / 1000) + "/d" + std::to_string(i);
    itest::MakeDirs(dir);
    if (i % 100 == 0) WriteRaw(dir + "/f", "x");
  }
  for (auto [name, delay] : {std::pair<const char*, std::optional<double>>{kSyncd, std::nullopt},
                             {kLsyncd1, 1.0}}) {
    auto tool = StartTool(name, source, delay);
    if (!WaitReady(*tool, source)) continue;
    std::this_thread::sleep_for(std::chrono::seconds(2));
    double cpu0 = tool->CpuSeconds();
    std::this_thread::sleep_for(std::chrono::seconds(o_.idle_seconds));
    cpu.by_tool[name] = tool->CpuSeconds() - cpu0;
    rss.by_tool[name] = static_cast<double>(tool->RssKiB()) / 1024;
    tool->Signal(SIGTERM);
    tool->Wait(std::chrono::seconds(40));
  }
  fs::remove_all(source);
  fs::remove_all(Peer(source));
  for (Figure* f : {&cpu, &rss}) out.push_back(*f);
}

std::vector<Figure> Bench::RunAll() {
  std::vector<Figure> out;
  auto want = [&](const char* name) { return o_.only.empty() || o_.only == name; };
  if (want("latency")) Latency(out);
  if (want("churn")) Churn(out);
  if (want("startup")) Startup(out);
  if (want("rename")) Rename(out);
  if (want("deltas")) Deltas(out);
  if (want("idle")) Idle(out);
  if (o_.only == "scale") Scale(out);  // Minutes and gigabytes: only when asked for.
  return out;
}

}  // namespace syncd::bench
