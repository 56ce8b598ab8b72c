#include "syncd/history.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <random>
#include <sstream>

#include <fmt/format.h>

#include "syncd/unique_fd.h"

namespace syncd {
namespace {

constexpr const char* kHeader = "syncd-history 1";

uint64_t NameHash(const std::string& s) {  // FNV-1a
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// A value on one line: backslashes and newlines escaped.
std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string Unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      out += s[i + 1] == 'n' ? '\n' : s[i + 1];
      ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

Result<void> WriteDurably(const std::string& path, const std::string& content, bool durable) {
  std::string temp = path + ".tmp";
  UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) return FailErrno("open " + temp);
  for (size_t done = 0; done < content.size();) {
    ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return FailErrno("write " + temp);
    done += static_cast<size_t>(n);
  }
  if (durable && ::fdatasync(fd.get()) != 0) return FailErrno("fdatasync " + temp);
  if (::rename(temp.c_str(), path.c_str()) != 0) return FailErrno("rename " + path);
  if (durable) {
    std::string dir = path.substr(0, path.rfind('/'));
    UniqueFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (d.valid()) ::fsync(d.get());
  }
  return {};
}

Result<void> MakeDirs(const std::string& dir, mode_t mode) {
  for (size_t at = 1; at <= dir.size(); ++at) {
    if (at != dir.size() && dir[at] != '/') continue;
    std::string part = dir.substr(0, at);
    if (::mkdir(part.c_str(), mode) != 0 && errno != EEXIST) return FailErrno("mkdir " + part);
  }
  return {};
}

}  // namespace

std::string EpochRecord::Describe() const {
  return fmt::format("{} epoch {} (from {})", host.empty() ? node : host, counter,
                     FormatWall(started));
}

int64_t WallNow() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string FormatWall(int64_t ns) {
  if (ns <= 0) return "never";
  time_t secs = static_cast<time_t>(ns / 1000000000);
  struct tm tm;
  ::gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return fmt::format("{}.{:03d} UTC", buf, static_cast<int>((ns / 1000000) % 1000));
}

std::string DefaultStateDir() {
  if (const char* e = std::getenv("SYNCD_STATE_DIR"); e && *e == '/') return e;
  if (::geteuid() == 0) return "/var/lib/syncd";
  if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x == '/') return std::string(x) + "/syncd";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/tmp") + "/.local/state/syncd";
}

std::vector<Unseen> FindUnseen(const Lineage& mine, const Lineage& theirs,
                               const std::string& my_node) {
  // Epochs older than everything this node still records may have been pruned from its
  // history: only those it can judge are judged.
  int64_t oldest_mine = 0;
  if (mine.size() >= kMaxEpochs)
    for (const EpochRecord& m : mine)
      oldest_mine = oldest_mine == 0 ? m.started : std::min(oldest_mine, m.started);
  std::vector<Unseen> out;
  for (const EpochRecord& t : theirs) {
    if (t.changes == 0 || t.first == 0) continue;  // Nothing happened in it.
    if (t.started < oldest_mine) continue;
    auto m = std::find_if(mine.begin(), mine.end(), [&](const EpochRecord& r) { return r.SameEpoch(t); });
    if (m != mine.end()) {
      if (t.node == my_node) continue;  // This node ran it: its tree has every change of it.
      if (t.through <= m->through) continue;
    }
    Unseen u;
    u.epoch = t;
    // The first change after what this node holds; the standby's own record of what its
    // peer had not confirmed narrows it down when it ran the epoch.
    u.from = m != mine.end() ? std::max(m->through, t.first) : t.first;
    u.from = std::max(u.from, t.unconfirmed_since);
    u.to = std::max(t.through, u.from);
    uint64_t seen = m != mine.end() ? m->changes : 0;
    u.changes = t.changes > seen ? t.changes - seen : 1;
    out.push_back(std::move(u));
  }
  return out;
}

Result<StateDir> StateDir::Open(const std::string& dir) {
  if (dir.empty() || dir.front() != '/') return Fail("state directory must be an absolute path: " + dir);
  SYNCD_TRY(MakeDirs(dir, 0700));
  SYNCD_TRY(MakeDirs(dir + "/trees", 0700));
  StateDir s;
  s.path_ = dir;
  std::string id_file = dir + "/node-id";
  for (int attempt = 0; attempt < 2 && s.node_.empty(); ++attempt) {
    std::ifstream in(id_file);
    if (in) {
      std::string id;
      in >> id;
      if (id.size() != 16 || id.find_first_not_of("0123456789abcdef") != std::string::npos)
        return Fail(id_file + ": not a node id (16 hex digits); remove it to make a new one");
      s.node_ = id;
      break;
    }
    // None yet: make one. link() fails if another process made one first; then it is read.
    std::random_device rd;
    uint64_t v = (static_cast<uint64_t>(rd()) << 32) ^ rd();
    std::string fresh = fmt::format("{:016x}", v);
    std::string temp = fmt::format("{}.{}", id_file, ::getpid());
    SYNCD_TRY(WriteDurably(temp, fresh + "\n", true));
    int linked = ::link(temp.c_str(), id_file.c_str());
    int err = errno;
    ::unlink(temp.c_str());
    if (linked == 0) {
      s.node_ = fresh;
      s.new_node_ = true;
    } else if (err != EEXIST) {
      return FailErrno("link " + id_file, err);
    }
  }
  if (s.node_.empty()) return Fail(id_file + ": could not be read");
  return s;
}

std::string StateDir::TreeFile(const std::string& tree, const char* ext) const {
  return fmt::format("{}/trees/{:016x}.{}", path_, NameHash(tree), ext);
}

std::string TreeHistory::Serialize(const std::string& tree, const Lineage& lineage) {
  std::string out = fmt::format("{}\ntree {}\n", kHeader, Escape(tree));
  for (const EpochRecord& e : lineage)
    out += fmt::format("epoch {} {} {} {} {} {} {} {}\n", e.node, e.counter, e.started, e.first,
                       e.through, e.changes, e.unconfirmed_since, Escape(e.host));
  out += "end\n";
  return out;
}

Result<Lineage> TreeHistory::Parse(const std::string& text, std::string* tree) {
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line) || line != kHeader) return Fail("not a syncd history file");
  if (!std::getline(in, line) || !line.starts_with("tree ")) return Fail("no tree line");
  *tree = Unescape(std::string_view(line).substr(5));
  Lineage lineage;
  bool ended = false;
  while (std::getline(in, line)) {
    if (line == "end") {
      ended = true;
      break;
    }
    std::istringstream fields(line);
    std::string word;
    EpochRecord e;
    if (!(fields >> word) || word != "epoch" ||
        !(fields >> e.node >> e.counter >> e.started >> e.first >> e.through >> e.changes >>
          e.unconfirmed_since))
      return Fail("damaged epoch line: " + line);
    std::string host;
    std::getline(fields, host);
    if (!host.empty() && host.front() == ' ') host.erase(0, 1);
    e.host = Unescape(host);
    lineage.push_back(std::move(e));
  }
  if (!ended) return Fail("cut short (no end line)");
  return lineage;
}

Result<TreeHistory> TreeHistory::Load(const StateDir& dir, const std::string& tree) {
  TreeHistory h;
  h.file_ = dir.HistoryFile(tree);
  h.tree_ = tree;
  std::ifstream in(h.file_);
  if (!in) {
    if (errno == ENOENT) return h;
    return FailErrno("open " + h.file_);
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string recorded;
  auto lineage = Parse(text, &recorded);
  if (!lineage) return Fail(h.file_ + ": " + lineage.error().message);
  if (recorded != tree)
    return Fail(fmt::format("{}: records {}, not {}", h.file_, recorded, tree));
  h.lineage_ = std::move(*lineage);
  h.found_ = true;
  return h;
}

EpochRecord& TreeHistory::BeginEpoch(const std::string& node, const std::string& host, int64_t now) {
  uint64_t counter = 0;
  for (const EpochRecord& e : lineage_)
    if (e.node == node) counter = std::max(counter, e.counter);
  EpochRecord e;
  e.node = node;
  e.host = host;
  e.counter = counter + 1;
  e.started = now;
  lineage_.push_back(std::move(e));
  Prune();
  return lineage_.back();
}

EpochRecord* TreeHistory::Find(const EpochRecord& epoch) {
  for (EpochRecord& e : lineage_)
    if (e.SameEpoch(epoch)) return &e;
  return nullptr;
}

void TreeHistory::Apply(const HistoryStamp& stamp) { ApplyStamp(lineage_, stamp); }

void ApplyStamp(Lineage& lineage, const HistoryStamp& stamp) {
  if (stamp.replace) lineage.clear();
  for (EpochRecord s : stamp.epochs) {
    s.unconfirmed_since = 0;
    auto e = std::find_if(lineage.begin(), lineage.end(), [&](const EpochRecord& r) { return r.SameEpoch(s); });
    if (e == lineage.end()) {
      lineage.push_back(std::move(s));
    } else if (s.through >= e->through) {
      *e = std::move(s);
    }
  }
  std::stable_sort(lineage.begin(), lineage.end(),
                   [](const EpochRecord& a, const EpochRecord& b) { return a.started < b.started; });
  if (lineage.size() > kMaxEpochs)
    lineage.erase(lineage.begin(), lineage.end() - static_cast<std::ptrdiff_t>(kMaxEpochs));
}

bool ValidLineage(const Lineage& lineage) {
  for (const EpochRecord& e : lineage) {
    if (e.node.size() != 16 || e.node.find_first_not_of("0123456789abcdef") != std::string::npos)
      return false;
    if (e.counter == 0 || e.started < 0 || e.first < 0 || e.through < 0 || e.unconfirmed_since < 0)
      return false;
  }
  return true;
}

bool SameLineage(const Lineage& a, const Lineage& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!a[i].SameEpoch(b[i]) || a[i].first != b[i].first || a[i].through != b[i].through ||
        a[i].changes != b[i].changes)
      return false;
  return true;
}

void TreeHistory::Prune() {
  HistoryStamp none;
  ApplyStamp(lineage_, none);
}

Result<void> TreeHistory::Save(bool durable) const {
  return WriteDurably(file_, Serialize(tree_, lineage_), durable);
}

}  // namespace syncd
