#include "tests/integration/harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace syncd::itest {
namespace fs = std::filesystem;

std::string SyncdBinary() { return SYNCD_BINARY; }

TcpRelay::TcpRelay(int listen_port, int target_port, size_t bytes_per_second)
    : target_port_(target_port), rate_(bytes_per_second) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(listen_port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0)
      << std::strerror(errno);
  EXPECT_EQ(::listen(listen_fd_, 16), 0);
  threads_.emplace_back([this] { Accept(); });
}

TcpRelay::~TcpRelay() {
  stop_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  {
    std::lock_guard lock(mu_);
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
  }
  // Accept() may still add threads until it sees stop_; it is the first one.
  threads_.front().join();
  for (size_t i = 1; i < threads_.size(); ++i) threads_[i].join();
  for (int fd : fds_) ::close(fd);
  ::close(listen_fd_);
}

void TcpRelay::Accept() {
  while (!stop_) {
    int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) {
      if (errno == EINTR) continue;
      return;
    }
    int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(target_port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(client);
      ::close(server);
      continue;
    }
    std::lock_guard lock(mu_);
    if (stop_) {
      ::close(client);
      ::close(server);
      return;
    }
    fds_.push_back(client);
    fds_.push_back(server);
    threads_.emplace_back([this, client, server] { Pump(client, server, rate_); });
    threads_.emplace_back([this, client, server] { Pump(server, client, 0); });
  }
}

void TcpRelay::Pump(int from, int to, size_t rate) {
  char buf[16384];
  size_t chunk = rate ? std::min(sizeof buf, std::max<size_t>(rate / 20, 1)) : sizeof buf;
  while (!stop_) {
    ssize_t n = ::read(from, buf, chunk);
    if (n <= 0) break;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = ::write(to, buf + off, static_cast<size_t>(n - off));
      if (w <= 0) {
        ::shutdown(from, SHUT_RDWR);
        return;
      }
      off += w;
    }
    if (rate)
      std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(n) * 1000000 /
                                                            static_cast<int64_t>(rate)));
  }
  ::shutdown(to, SHUT_WR);
}
std::string SourceDir() { return SYNCD_SOURCE_DIR; }

void WriteFile(const std::string& path, const std::string& content, mode_t mode) {
  // Written to a new name and renamed, so the watcher sees one complete file.
  // (A name of up to 255 bytes keeps a temporary name that fits.)
  std::string tmp =
      fs::path(path).parent_path() / (".wtmp-" + fs::path(path).filename().string().substr(0, 200));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
  }
  ::chmod(tmp.c_str(), mode);
  fs::rename(tmp, path);
}

void AppendFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out << content;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void MakeDirs(const std::string& path) { fs::create_directories(path); }

void Chown(const std::string& path, const std::string& user, const std::string& group) {
  passwd* pw = getpwnam(user.c_str());
  struct group* gr = getgrnam(group.c_str());
  ASSERT_TRUE(pw && gr) << user << ":" << group;
  ASSERT_EQ(::lchown(path.c_str(), pw->pw_uid, gr->gr_gid), 0) << path;
}

void Shell(const std::string& command) {
  int rc = std::system(command.c_str());
  ASSERT_EQ(rc, 0) << command;
}

namespace {

// Extended attributes of `path` (not following a symlink) as "name=hex" lines, sorted:
// everything but the system. namespace, and the POSIX ACLs.
std::string XattrLines(const std::string& path) {
  char names[65536];
  ssize_t n = ::llistxattr(path.c_str(), names, sizeof names);
  std::vector<std::string> lines;
  for (ssize_t i = 0; i < n;) {
    std::string name(names + i);
    i += static_cast<ssize_t>(name.size()) + 1;
    if (name.starts_with("system.") && name != "system.posix_acl_access" &&
        name != "system.posix_acl_default")
      continue;
    char value[65536];
    ssize_t len = ::lgetxattr(path.c_str(), name.c_str(), value, sizeof value);
    std::string line = name + "=";
    static constexpr char kHex[] = "0123456789abcdef";
    for (ssize_t k = 0; k < len; ++k) {
      auto byte = static_cast<unsigned char>(value[k]);
      line += kHex[byte >> 4];
      line += kHex[byte & 15];
    }
    lines.push_back(line);
  }
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const std::string& l : lines) out += l + "\n";
  return out;
}

}  // namespace

Tree Snapshot(const std::string& root, const SnapshotOptions& options) {
  Tree tree;
  std::error_code ec;
  if (!fs::exists(root, ec)) return tree;
  // The root itself is part of the picture (as "."): its mode and mtime replicate too.
  struct stat top;
  if (::stat(root.c_str(), &top) == 0) {
    NodeInfo n;
    n.type = 'd';
    n.mode = top.st_mode & 07777;
    n.uid = top.st_uid;
    n.gid = top.st_gid;
    if (options.dir_times)
      n.mtime_ns = static_cast<int64_t>(top.st_mtim.tv_sec) * 1000000000 + top.st_mtim.tv_nsec;
    if (options.xattrs) n.xattrs = XattrLines(root);
    tree["."] = n;
  }
  for (auto it = fs::recursive_directory_iterator(root, ec); it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (ec) break;
    // Not fs::relative: it canonicalizes, and throws when a file vanishes meanwhile.
    std::string rel = it->path().string().substr(root.size() + 1);
    std::string name = it->path().filename().string();
    struct stat st;
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    if (options.skip_dot_files && name[0] == '.') {
      if (S_ISDIR(st.st_mode)) it.disable_recursion_pending();
      continue;
    }
    NodeInfo n;
    n.mode = st.st_mode & 07777;
    n.uid = st.st_uid;
    n.gid = st.st_gid;
    n.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    if (S_ISDIR(st.st_mode)) {
      n.type = 'd';
      if (!options.dir_times) n.mtime_ns = 0;
    } else if (S_ISLNK(st.st_mode)) {
      n.type = 'l';
      n.mode = 0;
      n.content = fs::read_symlink(it->path(), ec).string();
    } else if (S_ISREG(st.st_mode)) {
      n.type = 'f';
      if (options.hard_links && st.st_nlink > 1) {
        // Iteration order is not path order: the smallest name is settled below.
        n.same_file_as = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
      }
      n.content = options.contents ? ReadFile(it->path()) : std::to_string(st.st_size);
    } else {
      // Never opened: a FIFO would block. Devices compare by their numbers.
      n.type = S_ISFIFO(st.st_mode) ? 'p' : S_ISSOCK(st.st_mode) ? 's' : S_ISCHR(st.st_mode) ? 'c' : 'b';
      if (n.type == 'c' || n.type == 'b')
        n.content = std::to_string(major(st.st_rdev)) + "," + std::to_string(minor(st.st_rdev));
    }
    if (options.xattrs) n.xattrs = XattrLines(it->path());
    tree[rel] = n;
  }
  if (options.hard_links) {
    std::map<std::string, std::string> first;  // dev:ino -> smallest path (the tree is sorted).
    for (auto& [path, n] : tree) {
      if (n.same_file_as.empty()) continue;
      n.same_file_as = first.try_emplace(n.same_file_as, path).first->second;
    }
  }
  if (options.prune_empty_dirs) {
    std::set<std::string> keep;
    for (const auto& [path, n] : tree) {
      if (n.type == 'd') continue;
      for (fs::path p = fs::path(path).parent_path(); !p.empty(); p = p.parent_path())
        keep.insert(p.string());
    }
    for (auto it = tree.begin(); it != tree.end();)
      it = (it->second.type == 'd' && it->first != "." && !keep.contains(it->first))
               ? tree.erase(it)
               : std::next(it);
  }
  return tree;
}

std::string Describe(const NodeInfo& n) {
  std::ostringstream out;
  out << n.type << " mode=" << std::oct << n.mode << std::dec << " uid=" << n.uid
      << " gid=" << n.gid << " mtime=" << n.mtime_ns << " content=";
  if (n.content.size() > 40)
    out << n.content.size() << " bytes";
  else
    out << '"' << n.content << '"';
  if (!n.same_file_as.empty()) out << " same file as " << n.same_file_as;
  if (!n.xattrs.empty()) out << " xattrs:\n" << n.xattrs;
  return out.str();
}

std::string Diff(const Tree& expected, const Tree& actual) {
  std::ostringstream out;
  for (const auto& [path, n] : expected) {
    auto it = actual.find(path);
    if (it == actual.end())
      out << "missing: " << path << "\n";
    else if (!(it->second == n))
      out << "differs: " << path << "\n  want " << Describe(n) << "\n  have "
          << Describe(it->second) << "\n";
  }
  for (const auto& [path, n] : actual)
    if (!expected.contains(path)) out << "extra: " << path << "\n";
  return out.str();
}

std::vector<std::string> TempFiles(const std::string& root) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.starts_with(".syncd-") && name.ends_with(".tmp")) out.push_back(it->path().string());
  }
  return out;
}

bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

Process::Process(std::vector<std::string> argv, std::vector<std::string> env, std::string log)
    : log_(std::move(log)) {
  pid_ = ::fork();
  if (pid_ == 0) {
    int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    int null = ::open("/dev/null", O_RDONLY);
    ::dup2(null, 0);
    ::setpgid(0, 0);
    for (const std::string& e : env) ::putenv(strdup(e.c_str()));
    std::vector<char*> args;
    for (std::string& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    std::perror(args[0]);
    ::_exit(127);
  }
}

Process::~Process() {
  if (running()) {
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    Wait(std::chrono::seconds(10));
  }
}

void Process::Signal(int sig) { ::kill(pid_, sig); }

bool Process::running() {
  if (status_) return false;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return false;
  }
  return r == 0;
}

std::optional<int> Process::Wait(std::chrono::milliseconds timeout) {
  WaitUntil([this] { return !running(); }, timeout);
  return status_;
}

std::string Process::log() const { return ReadFile(log_); }

double Process::CpuSeconds() const {
  std::string stat = ReadFile("/proc/" + std::to_string(pid_) + "/stat");
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream in(stat.substr(close + 2));
  std::string field;
  double ticks = 0;
  // Fields 14-17 of stat(5): utime, stime, cutime, cstime; `in` starts at field 3.
  for (int i = 3; i <= 17 && (in >> field); ++i)
    if (i >= 14) ticks += std::stod(field);
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

long Process::RssKiB() const {
  std::istringstream in(ReadFile("/proc/" + std::to_string(pid_) + "/status"));
  for (std::string line; std::getline(in, line);)
    if (line.starts_with("VmRSS:")) return std::stol(line.substr(6));
  return 0;
}

std::unique_ptr<Process> StartSyncd(const std::string& config, const std::string& home,
                                    const std::string& log, std::vector<std::string> extra_args) {
  std::vector<std::string> argv{SyncdBinary(), "-nodaemon"};
  for (std::string& a : extra_args) argv.push_back(std::move(a));
  argv.push_back(config);
  return std::make_unique<Process>(argv, std::vector<std::string>{"HOME=" + home, "SSH_AUTH_SOCK="},
                                   log);
}

SshServer::SshServer(std::string dir, int port,
                     std::vector<std::pair<std::string, std::string>> binds)
    : SshServer(std::move(dir), port, std::move(binds), "", "127.0.0.1") {}

SshServer::SshServer(std::string dir, int port,
                     std::vector<std::pair<std::string, std::string>> binds, std::string netns,
                     std::string address)
    : dir_(std::move(dir)), port_(port), binds_(std::move(binds)), netns_(std::move(netns)),
      address_(std::move(address)) {
  MakeDirs(dir_);
  MakeDirs("/run/sshd");  // sshd's privilege separation directory.
  for (const char* type : {"ed25519", "ecdsa"})
    Shell("ssh-keygen -q -t " + std::string(type) + " -N '' -f " + dir_ + "/host_" + type +
          " </dev/null >/dev/null");
  std::ofstream cfg(dir_ + "/sshd_config");
  cfg << "ListenAddress " << address_ << "\nPort " << port_ << "\n"
      << "HostKey " << dir_ << "/host_ed25519\nHostKey " << dir_ << "/host_ecdsa\n"
      << "PidFile " << dir_ << "/sshd.pid\nAuthorizedKeysFile " << dir_ << "/authorized_keys\n"
      << "StrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
      << "KbdInteractiveAuthentication no\nUsePAM no\nLogLevel VERBOSE\n"
      // bash reads ~/.bashrc before an SSH command only as a top-level shell: this machine's
      // interactive setup stays out of every session (and a session killed while that setup
      // holds a lock cannot stall the next ones).
      << "SetEnv SHLVL=1\n";
  cfg.close();
  WriteFile(dir_ + "/authorized_keys", "", 0600);
}

SshServer::~SshServer() { Stop(); }

std::string SshServer::MakeUserKey(const std::string& path, const std::string& type) {
  std::string cmd = "ssh-keygen -q -t " + type + " -N '' -f " + path + " </dev/null >/dev/null";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  std::string pub = ReadFile(path + ".pub");
  while (!pub.empty() && pub.back() == '\n') pub.pop_back();
  return pub;
}

void SshServer::AuthorizeShell(const std::string& public_key) {
  AppendFile(dir_ + "/authorized_keys", "no-pty " + public_key + "\n");
}

void SshServer::Authorize(const std::string& public_key, const std::string& state_dir) {
  AppendFile(dir_ + "/authorized_keys",
             "command=\"" + SyncdBinary() + " --server --state-dir " +
                 (state_dir.empty() ? dir_ + "/state" : state_dir) + "\",no-pty,no-user-rc,no-agent-forwarding,no-port-forwarding,"
                 "no-X11-forwarding " + public_key + "\n");
}

void SshServer::OnlyHostKey(const std::string& type) {
  if (!std::filesystem::exists(dir_ + "/host_" + type))
    Shell("ssh-keygen -q -t " + type + " -N '' -f " + dir_ + "/host_" + type + " </dev/null >/dev/null");
  std::string cfg = ReadFile(dir_ + "/sshd_config");
  std::string out;
  std::istringstream in(cfg);
  for (std::string line; std::getline(in, line);)
    if (!line.starts_with("HostKey ")) out += line + "\n";
  out += "HostKey " + dir_ + "/host_" + type + "\n";
  WriteFile(dir_ + "/sshd_config", out);
}

std::string SshServer::KnownHostsLine(const std::string& type) const {
  std::string pub = ReadFile(dir_ + "/host_" + type + ".pub");
  std::istringstream in(pub);
  std::string algo, key;
  in >> algo >> key;
  std::string host = port_ == 22 ? address_ : "[" + address_ + "]:" + std::to_string(port_);
  return host + " " + algo + " " + key + "\n";
}

void SshServer::Start() {
  std::string script;
  for (const auto& [from, over] : binds_) script += "mount --rbind '" + from + "' '" + over + "' && ";
  script += "exec /usr/sbin/sshd -D -e -f '" + dir_ + "/sshd_config'";
  std::vector<std::string> argv{"/usr/bin/unshare", "--mount", "--propagation", "private",
                                "/bin/sh", "-c", script};
  if (!netns_.empty()) argv.insert(argv.begin(), {"/usr/sbin/ip", "netns", "exec", netns_});
  const std::string listening = "Server listening on " + address_;
  auto times_listening = [&] {
    std::string text = log();
    size_t n = 0;
    for (size_t at = 0; (at = text.find(listening, at)) != std::string::npos; ++at) ++n;
    return n;
  };
  size_t listened_before = times_listening();
  sshd_ = std::make_unique<Process>(argv, std::vector<std::string>{}, dir_ + "/sshd.log");
  bool up = WaitUntil(
      [&] {
        if (!netns_.empty())  // Out of reach from here: sshd says when it listens.
          return times_listening() > listened_before || !sshd_->running();
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<uint16_t>(port_));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
        ::close(fd);
        return ok || !sshd_->running();
      },
      std::chrono::seconds(20));
  ASSERT_TRUE(up && sshd_->running()) << "sshd did not start:\n" << log();
}

// Every process descended from `root`, found through /proc. sshd puts each connection in a
// session of its own, so a process group does not reach them.
std::vector<pid_t> Descendants(pid_t root) {
  std::map<pid_t, std::vector<pid_t>> children;
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string stat = ReadFile(e.path() / "stat");
    size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    char state;
    pid_t ppid;
    if (rest >> state >> ppid) children[ppid].push_back(std::stoi(name));
  }
  std::vector<pid_t> out, todo{root};
  while (!todo.empty()) {
    pid_t p = todo.back();
    todo.pop_back();
    for (pid_t c : children[p]) {
      out.push_back(c);
      todo.push_back(c);
    }
  }
  return out;
}

void SshServer::Stop() {
  if (!sshd_) return;
  for (pid_t p : Descendants(sshd_->pid())) ::kill(p, SIGKILL);  // Sessions and agents.
  sshd_->Signal(SIGKILL);
  sshd_->Wait(std::chrono::seconds(10));
  sshd_.reset();
}

std::string SshServer::log() const { return ReadFile(dir_ + "/sshd.log"); }

pid_t SshServer::pid() const { return sshd_ ? sshd_->pid() : -1; }

std::vector<double> MetricValues(const std::string& text, const std::string& metric) {
  std::vector<double> out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(metric + "{", 0) != 0) continue;
    size_t space = line.rfind(' ');
    if (space != std::string::npos) out.push_back(std::stod(line.substr(space + 1)));
  }
  return out;
}

}  // namespace syncd::itest
