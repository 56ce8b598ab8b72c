// Helpers for integration tests: temporary trees, snapshots and diffs of real directories,
// child processes (the real syncd binary, sshd), and a throwaway sshd with its own keys.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/temp_dir.h"

namespace syncd::itest {

using testing::TempDir;

void WriteFile(const std::string& path, const std::string& content, mode_t mode = 0644);
void AppendFile(const std::string& path, const std::string& content);
std::string ReadFile(const std::string& path);
void MakeDirs(const std::string& path);
void Chown(const std::string& path, const std::string& user, const std::string& group);
// Runs a shell command; fails the test if it does not exit 0.
void Shell(const std::string& command);

// What a path is, as a user comparing two nodes would look at it.
struct NodeInfo {
  char type = '?';  // f, d, l; p (FIFO), s (socket), c and b (devices)
  unsigned mode = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  int64_t mtime_ns = 0;
  std::string content;  // Files: the bytes. Links: the target. Devices: major,minor.
  // With SnapshotOptions::hard_links: for a file with other names in the tree, the first
  // of them in path order (the same for every name of one file).
  std::string same_file_as;
  // With SnapshotOptions::xattrs: "name=hex-value" lines, sorted.
  std::string xattrs;
  bool operator==(const NodeInfo&) const = default;
};
using Tree = std::map<std::string, NodeInfo>;

struct SnapshotOptions {
  bool skip_dot_files = false;    // exclude = {'.*'}
  bool prune_empty_dirs = false;  // rsync -m: directories with no file beneath them vanish.
  bool dir_times = true;
  bool contents = true;  // false: files are compared by size (and mtime) only, without reading.
  bool hard_links = false;  // Fill NodeInfo::same_file_as.
  bool xattrs = false;      // Fill NodeInfo::xattrs (every namespace but system., and ACLs).
};
Tree Snapshot(const std::string& root, const SnapshotOptions& options = {});
// A readable list of differences; empty when the trees are equal.
std::string Diff(const Tree& expected, const Tree& actual);
// Paths of syncd's temporary files beneath root.
std::vector<std::string> TempFiles(const std::string& root);

// Polls `done` every 20 ms until it holds or `timeout` passes. The timeout only bounds a test
// that would otherwise hang; nothing is asserted about how long it took.
bool WaitUntil(const std::function<bool()>& done,
               std::chrono::milliseconds timeout = std::chrono::seconds(60));

class Process {
 public:
  // Starts argv[0] with extra environment entries; stdout and stderr go to `log`.
  Process(std::vector<std::string> argv, std::vector<std::string> env, std::string log);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  void Signal(int sig);
  // The exit status (128 + signal if killed), or nullopt if still running after `timeout`.
  std::optional<int> Wait(std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // CPU seconds (user + system) used so far by the process and the children it has reaped.
  double CpuSeconds() const;
  // Resident set size in KiB, 0 once it has exited.
  long RssKiB() const;
  bool running();
  std::string log() const;

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::string log_;
};

// Every process descended from `root`, found through /proc.
std::vector<pid_t> Descendants(pid_t root);

// The values of `metric` in a Prometheus text file, one per label set, in file order.
std::vector<double> MetricValues(const std::string& text, const std::string& metric);

// Runs the built syncd in the foreground with `config`; HOME points at `home`.
std::unique_ptr<Process> StartSyncd(const std::string& config, const std::string& home,
                                    const std::string& log,
                                    std::vector<std::string> extra_args = {});

// sshd on 127.0.0.1:`port` with throwaway host keys (ed25519 and ecdsa), run in a mount
// namespace of its own where each bind (from -> over) is mounted, so the agent it starts sees
// `from` at the path `over`: two nodes on one machine. Its authorized_keys pins the agent with
// command="syncd --server", like a production setup would.
class SshServer {
 public:
  SshServer(std::string dir, int port,
            std::vector<std::pair<std::string, std::string>> binds = {});
  // The same, listening on `address` inside the network namespace `netns` (another node).
  SshServer(std::string dir, int port, std::vector<std::pair<std::string, std::string>> binds,
            std::string netns, std::string address);
  ~SshServer();

  // Generates a user key of `type` (ed25519, rsa) at `path`; returns the public key line.
  static std::string MakeUserKey(const std::string& path, const std::string& type = "ed25519");
  // Adds a public key to authorized_keys, with the seed's restrictions, pinned to the agent
  // (which keeps its history in `state_dir`; by default a directory of this server's).
  void Authorize(const std::string& public_key, const std::string& state_dir = "");
  // Adds a public key that may run any command (what lsyncd's rsync and mv need).
  void AuthorizeShell(const std::string& public_key);
  // Serves only a host key of `type` ("rsa": what libssh2 1.10 cannot verify from OpenSSH 9,
  // which offers it as rsa-sha2 only). Before Start().
  void OnlyHostKey(const std::string& type);
  // The known_hosts line for one host key type ("ed25519", "ecdsa", "rsa").
  std::string KnownHostsLine(const std::string& type) const;
  void Start();
  void Stop();
  int port() const { return port_; }
  // The listening sshd; its descendants are the sessions and their agents.
  pid_t pid() const;
  std::string log() const;

 private:
  std::string dir_;
  int port_;
  std::vector<std::pair<std::string, std::string>> binds_;
  std::string netns_;
  std::string address_ = "127.0.0.1";
  std::unique_ptr<Process> sshd_;
};

// A TCP relay on 127.0.0.1:`listen_port` to 127.0.0.1:`target_port` that passes at most
// `bytes_per_second` from its clients to the target (and all the way back): a slow link on
// loopback, so that a transfer is sure to take a while.
class TcpRelay {
 public:
  TcpRelay(int listen_port, int target_port, size_t bytes_per_second);
  ~TcpRelay();
  TcpRelay(const TcpRelay&) = delete;
  TcpRelay& operator=(const TcpRelay&) = delete;

 private:
  void Accept();
  void Pump(int from, int to, size_t rate);
  int listen_fd_ = -1;
  int target_port_;
  size_t rate_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<int> fds_;
  std::vector<std::thread> threads_;
};

std::string SyncdBinary();
std::string SourceDir();

}  // namespace syncd::itest
