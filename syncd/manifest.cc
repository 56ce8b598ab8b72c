#include "syncd/manifest.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include <fmt/format.h>

namespace syncd {
namespace {

constexpr char kMagic[] = "syncd-manifest 1\n";
constexpr size_t kMagicLen = sizeof kMagic - 1;
// Record kinds.
constexpr uint8_t kEntry = 'E', kRemoved = 'R', kStamp = 'S', kTree = 'T';
constexpr size_t kFlushBytes = 1 << 20;

class Writer {
 public:
  template <typename T>
  void Put(T v) {
    char b[sizeof v];
    std::memcpy(b, &v, sizeof v);
    out.append(b, sizeof v);
  }
  void Str(const std::string& s) {
    Put(static_cast<uint32_t>(s.size()));
    out += s;
  }
  void EntryFields(const Entry& e) {
    Str(e.path);
    Put(static_cast<uint8_t>(e.type));
    Put(e.size);
    Put(e.meta.mode);
    Put(e.meta.uid);
    Put(e.meta.gid);
    Str(e.meta.user);
    Str(e.meta.group);
    Put(e.meta.mtime_sec);
    Put(e.meta.mtime_nsec);
    Put(static_cast<uint32_t>(e.meta.xattrs.size()));
    for (const auto& [name, value] : e.meta.xattrs) {
      Str(name);
      Str(value);
    }
    Str(e.link_target);
    Put(e.rdev);
    Put(static_cast<uint8_t>(e.hash ? 1 : 0));
    if (e.hash) {
      Put(e.hash->high);
      Put(e.hash->low);
    }
  }
  void LineageFields(const Lineage& lineage) {
    Put(static_cast<uint32_t>(lineage.size()));
    for (const EpochRecord& e : lineage) {
      Str(e.node);
      Str(e.host);
      Put(e.counter);
      Put(e.started);
      Put(e.first);
      Put(e.through);
      Put(e.changes);
    }
  }
  // A record: its length, its kind, then what `fill` wrote.
  template <typename F>
  void Record(uint8_t kind, F&& fill) {
    size_t at = out.size();
    Put(uint32_t{0});
    Put(kind);
    fill();
    uint32_t len = static_cast<uint32_t>(out.size() - at - 4);
    std::memcpy(out.data() + at, &len, 4);
  }
  std::string out;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  template <typename T>
  T Get() {
    T v{};
    if (in_.size() < sizeof v) {
      ok_ = false;
      return v;
    }
    std::memcpy(&v, in_.data(), sizeof v);
    in_.remove_prefix(sizeof v);
    return v;
  }
  std::string Str() {
    std::string s;
    Str(s);
    return s;
  }
  void Str(std::string& s) {
    uint32_t n = Get<uint32_t>();
    if (!ok_ || in_.size() < n) {
      ok_ = false;
      s.clear();
      return;
    }
    s.assign(in_.substr(0, n));
    in_.remove_prefix(n);
  }
  // Into `e`, whose strings keep their buffers from one record to the next.
  void EntryFields(Entry& e) {
    Str(e.path);
    e.type = static_cast<FileType>(Get<uint8_t>());
    e.size = Get<uint64_t>();
    e.meta.mode = Get<uint32_t>();
    e.meta.uid = Get<uint32_t>();
    e.meta.gid = Get<uint32_t>();
    Str(e.meta.user);
    Str(e.meta.group);
    e.meta.mtime_sec = Get<int64_t>();
    e.meta.mtime_nsec = Get<uint32_t>();
    uint32_t xattrs = Get<uint32_t>();
    e.meta.xattrs.clear();
    for (uint32_t i = 0; ok_ && i < xattrs; ++i) {
      std::string name = Str();
      e.meta.xattrs.emplace_back(std::move(name), Str());
    }
    Str(e.link_target);
    e.rdev = Get<uint64_t>();
    e.hash.reset();
    if (Get<uint8_t>() == 1) {
      ContentHash h;
      h.high = Get<uint64_t>();
      h.low = Get<uint64_t>();
      e.hash = h;
    }
  }
  Lineage LineageFields() {
    Lineage out;
    uint32_t n = Get<uint32_t>();
    for (uint32_t i = 0; ok_ && i < n && i < 1024; ++i) {
      EpochRecord e;
      e.node = Str();
      e.host = Str();
      e.counter = Get<uint64_t>();
      e.started = Get<int64_t>();
      e.first = Get<int64_t>();
      e.through = Get<int64_t>();
      e.changes = Get<uint64_t>();
      out.push_back(std::move(e));
    }
    return out;
  }
  bool ok() const { return ok_; }
  bool empty() const { return in_.empty(); }
  std::string_view Take(size_t n) {
    if (in_.size() < n) {
      ok_ = false;
      return {};
    }
    std::string_view r = in_.substr(0, n);
    in_.remove_prefix(n);
    return r;
  }

 private:
  std::string_view in_;
  bool ok_ = true;
};

Result<void> WriteAll(int fd, const std::string& data, const std::string& path) {
  for (size_t done = 0; done < data.size();) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return FailErrno("write " + path);
    done += static_cast<size_t>(n);
  }
  return {};
}

// Records `e` on the standby: it replaces what was at its path, and, unless it is a directory,
// what was beneath it.
void Apply(PeerMap& entries, const Entry& e) {
  if (e.type != FileType::kDir) entries.EraseBeneath(e.path);
  entries.Set(e);
}

}  // namespace

std::string Manifest::FileFor(const StateDir& dir, const std::string& tree) {
  return dir.TreeFile(tree, "manifest");
}

void Manifest::Remove(const StateDir& dir, const std::string& tree) {
  ::unlink(FileFor(dir, tree).c_str());
}

Result<Manifest> Manifest::Create(const StateDir& dir, const std::string& tree,
                                  const PeerMap& entries, const Lineage& lineage) {
  std::string path = FileFor(dir, tree);
  std::string temp = path + ".tmp";
  UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) return FailErrno("open " + temp);
  Writer w;
  w.out.append(kMagic, kMagicLen);
  w.Record(kTree, [&] { w.Str(tree); });
  uint64_t total = 0;
  Result<void> written;
  entries.ForEach([&](const Entry& e) {
    w.Record(kEntry, [&] { w.EntryFields(e); });
    if (written && w.out.size() >= kFlushBytes) {
      written = WriteAll(fd.get(), w.out, temp);
      total += w.out.size();
      w.out.clear();
    }
  });
  SYNCD_TRY(written);
  w.Record(kStamp, [&] { w.LineageFields(lineage); });
  SYNCD_TRY(WriteAll(fd.get(), w.out, temp));
  total += w.out.size();
  // Not synced: a manifest lost in a crash makes the next start list the standby, no more.
  if (::rename(temp.c_str(), path.c_str()) != 0) return FailErrno("rename " + path);
  Manifest m(std::move(fd));
  m.snapshot_bytes_ = total;
  return m;
}

Result<void> Manifest::Append(const std::vector<Entry>& present,
                              const std::vector<std::string>& removed, const Lineage& lineage) {
  Writer w;
  for (const std::string& p : removed) w.Record(kRemoved, [&] { w.Str(p); });
  for (const Entry& e : present) w.Record(kEntry, [&] { w.EntryFields(e); });
  w.Record(kStamp, [&] { w.LineageFields(lineage); });
  SYNCD_TRY(WriteAll(fd_.get(), w.out, "manifest"));
  journal_bytes_ += w.out.size();
  return {};
}

Result<std::optional<Manifest::Contents>> Manifest::Load(const StateDir& dir, const std::string& tree) {
  std::string path = FileFor(dir, tree);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) {
    if (errno == ENOENT) return std::nullopt;
    return FailErrno("open " + path);
  }
  std::string data;
  struct stat st;
  if (::fstat(fd.get(), &st) == 0) data.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return FailErrno("read " + path);
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  if (data.compare(0, kMagicLen, kMagic) != 0) return Fail(path + ": not a syncd manifest");
  Reader r(std::string_view(data).substr(kMagicLen));
  Contents out;
  bool stamped = false, named = false;
  // What the records since the last stamp did; applied when the next stamp completes them.
  // The snapshot's records (before the first stamp) go straight into the map, in path order:
  // without its stamp the whole file is refused anyway.
  std::vector<Entry> pending;
  std::vector<std::string> pending_removed;
  Entry e;
  while (!r.empty()) {
    uint32_t len = r.Get<uint32_t>();
    std::string_view body = r.Take(len);
    if (!r.ok() || len == 0) break;  // Cut short by a crash: stop at the last stamp.
    Reader rec(body);
    uint8_t kind = rec.Get<uint8_t>();
    if (kind == kTree) {
      if (rec.Str() != tree) return Fail(path + ": the manifest of another tree");
      named = true;
    } else if (kind == kEntry) {
      rec.EntryFields(e);  // A damaged one is refused below; what it changed goes with it.
      if (stamped) pending.push_back(e);
      else Apply(out.entries, e);
    } else if (kind == kRemoved) {
      std::string removed = rec.Str();
      if (stamped) pending_removed.push_back(std::move(removed));
      else out.entries.EraseSubtree(removed);
    } else if (kind == kStamp) {
      Lineage lineage = rec.LineageFields();
      if (!rec.ok()) break;
      for (const std::string& p : pending_removed) out.entries.EraseSubtree(p);
      for (const Entry& p : pending) Apply(out.entries, p);
      pending.clear();
      pending_removed.clear();
      out.lineage = std::move(lineage);
      stamped = true;
      continue;
    } else {
      return Fail(fmt::format("{}: unknown record {:#04x}", path, kind));
    }
    if (!rec.ok()) return Fail(path + ": damaged record");
  }
  if (!named || !stamped) return Fail(path + ": damaged (no complete snapshot)");
  return out;
}

}  // namespace syncd
