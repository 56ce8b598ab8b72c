#include "syncd/file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <xxhash.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <memory>
#include <thread>
#include <utility>

#include "syncd/large_array.h"
#include "syncd/log.h"
#include "syncd/unique_fd.h"

namespace syncd {

const std::string& NameCache::UserName(uint32_t uid) {
  auto it = users_.find(uid);
  if (it != users_.end()) return it->second;
  passwd pw;
  passwd* result = nullptr;
  char buf[4096];
  std::string name;
  if (getpwuid_r(uid, &pw, buf, sizeof buf, &result) == 0 && result) name = pw.pw_name;
  return users_.emplace(uid, std::move(name)).first->second;
}

const std::string& NameCache::GroupName(uint32_t gid) {
  auto it = groups_.find(gid);
  if (it != groups_.end()) return it->second;
  group gr;
  group* result = nullptr;
  char buf[4096];
  std::string name;
  if (getgrgid_r(gid, &gr, buf, sizeof buf, &result) == 0 && result) name = gr.gr_name;
  return groups_.emplace(gid, std::move(name)).first->second;
}

Entry EntryFromStat(std::string rel, const struct stat& st, NameCache& names) {
  Entry e;
  e.path = std::move(rel);
  if (S_ISREG(st.st_mode))
    e.type = FileType::kFile;
  else if (S_ISDIR(st.st_mode))
    e.type = FileType::kDir;
  else if (S_ISLNK(st.st_mode))
    e.type = FileType::kSymlink;
  else if (S_ISFIFO(st.st_mode))
    e.type = FileType::kFifo;
  else if (S_ISSOCK(st.st_mode))
    e.type = FileType::kSocket;
  else if (S_ISCHR(st.st_mode))
    e.type = FileType::kCharDevice;
  else if (S_ISBLK(st.st_mode))
    e.type = FileType::kBlockDevice;
  else
    e.type = FileType::kOther;
  if (IsDevice(e.type)) e.rdev = st.st_rdev;
  e.size = e.type == FileType::kFile ? static_cast<uint64_t>(st.st_size) : 0;
  e.meta.mode = st.st_mode & 07777;
  e.meta.uid = st.st_uid;
  e.meta.gid = st.st_gid;
  e.meta.user = names.UserName(st.st_uid);
  e.meta.group = names.GroupName(st.st_gid);
  e.meta.mtime_sec = st.st_mtim.tv_sec;
  e.meta.mtime_nsec = static_cast<uint32_t>(st.st_mtim.tv_nsec);
  e.ino = st.st_ino;
  e.dev = st.st_dev;
  e.nlink = static_cast<uint32_t>(st.st_nlink);
  e.ctime_ns = static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
  return e;
}

bool UnsafeSymlink(std::string_view path, std::string_view target) {
  if (target.empty() || target.front() == '/') return true;
  int depth = 0;
  for (char c : path)
    if (c == '/') ++depth;
  size_t start = 0;
  while (start <= target.size()) {
    size_t slash = target.find('/', start);
    std::string_view part = target.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (part == "..") {
      if (--depth < 0) return true;
    } else if (!part.empty() && part != ".") {
      ++depth;
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return false;
}

namespace {

using DirPtr = std::unique_ptr<DIR, int (*)(DIR*)>;

// The names in an open directory, without "." and "..". `what` names it in errors.
Result<std::vector<std::string>> NamesIn(DIR* d, const std::string& what) {
  std::vector<std::string> names;
  errno = 0;
  while (dirent* ent = ::readdir(d)) {
    std::string_view name = ent->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  if (errno != 0) return FailErrno("readdir " + what);
  return names;
}

}  // namespace

Result<void> PosixFileSystem::AddXattrs(Entry& e, const std::string& abs, XattrLookup lookup) {
  if (!xattrs_.any()) return {};
  auto x = ReadXattrs(abs, xattrs_, lookup);
  if (!x) return std::unexpected(x.error());
  e.meta.xattrs = std::move(*x);
  return {};
}

Result<Entry> PosixFileSystem::Stat(const std::string& root, const std::string& rel) {
  std::string abs = JoinPath(root, rel);
  return StatAt(AT_FDCWD, abs.c_str(), rel, "");
}

Result<Entry> PosixFileSystem::StatAt(int dirfd, const char* name, std::string rel,
                                      std::string_view dir) {
  auto abs = [&] { return dir.empty() ? std::string(name) : JoinPath(std::string(dir), name); };
  struct stat st;
  if (::fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return FailErrno("lstat " + abs());
  XattrLookup lookup = XattrLookup::kNoFollow;
  std::string target;
  if (S_ISLNK(st.st_mode)) {
    target.assign(static_cast<size_t>(st.st_size > 0 ? st.st_size : 255) + 1, '\0');
    ssize_t n = ::readlinkat(dirfd, name, target.data(), target.size());
    if (n < 0) return FailErrno("readlink " + abs());
    target.resize(static_cast<size_t>(n));
    if (follow_ == FollowLinks::kAll || (follow_ == FollowLinks::kUnsafe && UnsafeSymlink(rel, target))) {
      if (::fstatat(dirfd, name, &st, 0) != 0) return Fail("symlink has no referent: " + abs(), ENOENT);
      target.clear();
      lookup = XattrLookup::kFollow;
    }
  }
  Result<Entry> e = EntryFromStat(std::move(rel), st, names_);
  e->link_target = std::move(target);
  if (xattrs_.any()) {
    if (auto x = AddXattrs(*e, abs(), lookup); !x) return std::unexpected(x.error());
  }
  return e;
}

Result<std::vector<Result<Entry>>> FileSystem::ListDir(const std::string& root, const std::string& rel) {
  auto names = ReadDir(JoinPath(root, rel));
  if (!names) return std::unexpected(names.error());
  std::vector<Result<Entry>> out;
  for (const std::string& name : *names) {
    auto e = Stat(root, rel.empty() ? name : rel + "/" + name);
    if (!e && e.error().code == ENOENT) continue;
    out.push_back(std::move(e));
  }
  return out;
}

Result<std::vector<Result<Entry>>> PosixFileSystem::ListDir(const std::string& root,
                                                            const std::string& rel) {
  std::string abs = JoinPath(root, rel);
  // As opendir: a directory reached through a followed symlink is listed too.
  int fd = ::open(abs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return FailErrno("opendir " + abs);
  DirPtr d(::fdopendir(fd), ::closedir);
  if (!d) {
    ::close(fd);
    return FailErrno("fdopendir " + abs);
  }
  auto names = NamesIn(d.get(), abs);
  if (!names) return std::unexpected(names.error());
  std::vector<Result<Entry>> out;
  out.reserve(names->size());
  for (const std::string& name : *names) {
    // Nothing longer than the system takes by name is described: it could not be sent.
    if (abs.size() + 1 + name.size() >= PATH_MAX) {
      out.push_back(Fail("lstat " + abs + "/" + name + ": File name too long", ENAMETOOLONG));
      continue;
    }
    auto e = StatAt(::dirfd(d.get()), name.c_str(), rel.empty() ? name : rel + "/" + name, abs);
    if (!e && e.error().code == ENOENT) continue;
    out.push_back(std::move(e));
  }
  return out;
}

Result<std::vector<std::string>> PosixFileSystem::ReadDir(const std::string& dir) {
  DirPtr d(::opendir(dir.c_str()), ::closedir);
  if (!d) return FailErrno("opendir " + dir);
  return NamesIn(d.get(), dir);
}

Result<ContentHash> PosixFileSystem::Hash(const std::string& root, const std::string& rel) {
  std::string abs = JoinPath(root, rel);
  int fd = ::open(abs.c_str(), O_RDONLY | O_CLOEXEC | (follow_ == FollowLinks::kNone ? O_NOFOLLOW : 0));
  if (fd < 0) return FailErrno("open " + abs);
  XXH3_state_t* state = XXH3_createState();
  XXH3_128bits_reset(state);
  char buf[64 * 1024];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) XXH3_128bits_update(state, buf, static_cast<size_t>(n));
  int err = errno;
  ::close(fd);
  XXH128_hash_t h = XXH3_128bits_digest(state);
  XXH3_freeState(state);
  if (n < 0) return FailErrno("read " + abs, err);
  return ContentHash{h.high64, h.low64};
}

namespace {

// One depth-first walk of ScanTree's: from the directories on `stack`, into `out`.
class TreeWalk {
 public:
  TreeWalk(FileSystem& fs, const std::string& root, const Filter& filter, bool one_file_system,
           uint64_t root_dev)
      : fs_(fs), root_(root), filter_(filter), one_file_system_(one_file_system), root_dev_(root_dev) {}

  // Enters `dir` (reached through `chain`, the directories above it, root first) and lists
  // everything beneath it into `out`.
  Result<void> Walk(const std::string& dir, const std::vector<std::pair<uint64_t, uint64_t>>& chain,
                    Listing& out, const std::atomic<bool>* stop = nullptr) {
    entered_.clear();
    for (const auto& [dev, ino] : chain)
      entered_.push_back({dev, ino, entered_.empty() ? kNoParent : entered_.size() - 1});
    std::vector<std::pair<std::string, size_t>> stack{{dir, entered_.size() - 1}};
    while (!stack.empty()) {
      if (stop && stop->load(std::memory_order_relaxed)) return {};
      auto [at, node] = std::move(stack.back());
      stack.pop_back();
      auto entries = fs_.ListDir(root_, at);
      if (!entries) {
        if (entries.error().code == ENOENT || entries.error().code == ENOTDIR) continue;
        if (entries.error().code == ENAMETOOLONG) {
          TooLong(at);
          continue;
        }
        return std::unexpected(entries.error());
      }
      for (auto& entry : *entries) {
        if (!entry) {
          if (entry.error().code == ENAMETOOLONG) {
            TooLong(at);
            continue;
          }
          return std::unexpected(entry.error());
        }
        const std::string& rel = entry->path;
        if (filter_.Excluded(rel, entry->type == FileType::kDir)) continue;
        if (entry->type == FileType::kDir && !(one_file_system_ && entry->dev != root_dev_) &&
            !Loops(*entry, node)) {
          entered_.push_back({entry->dev, entry->ino, node});
          stack.emplace_back(rel, entered_.size() - 1);
        }
        if (out.size() == out.capacity())
          ReserveLarge(out, out.size() + std::max<size_t>(out.size() / 4, 4096));
        out.push_back(std::move(*entry));
      }
    }
    return {};
  }

  uint64_t skipped() const { return skipped_; }
  const std::string& first_skipped() const { return first_skipped_; }

 private:
  static constexpr size_t kNoParent = static_cast<size_t>(-1);
  // Every directory entered, with the one it was entered from: a followed symlink that leads
  // back to a directory above it is listed, not entered again.
  struct Entered {
    uint64_t dev, ino;
    size_t parent;
  };
  bool Loops(const Entry& dir, size_t from) const {
    for (size_t i = from; i != kNoParent && dir.ino != 0; i = entered_[i].parent)
      if (entered_[i].dev == dir.dev && entered_[i].ino == dir.ino) return true;
    return false;
  }
  // Paths longer than the system takes (PATH_MAX) cannot be read or sent: said once per
  // scan, and the rest of the tree goes on.
  void TooLong(const std::string& dir) {
    if (skipped_++ == 0) first_skipped_ = dir;
  }

  FileSystem& fs_;
  const std::string& root_;
  const Filter& filter_;
  bool one_file_system_;
  uint64_t root_dev_;
  std::vector<Entered> entered_;
  uint64_t skipped_ = 0;
  std::string first_skipped_;
};

void SayTooLong(const std::string& root, uint64_t skipped, const std::string& first) {
  if (skipped > 0)
    LogError("{}: {} entries beneath {} have paths longer than the system allows ({} bytes); "
             "they are not replicated", root, skipped, JoinPath(root, first), PATH_MAX);
}

}  // namespace

Result<Listing> ScanTree(FileSystem& fs, const std::string& root, const Filter& filter,
                         bool one_file_system, size_t expect) {
  Listing out;
  ReserveLarge(out, expect);
  auto top = fs.Stat(root, "");
  if (!top) return std::unexpected(top.error());
  if (top->type != FileType::kDir) return Fail(root + ": not a directory", ENOTDIR);
  TreeWalk walk(fs, root, filter, one_file_system, top->dev);
  std::vector<std::pair<uint64_t, uint64_t>> chain{{top->dev, top->ino}};
  out.push_back(std::move(*top));
  SYNCD_TRY(walk.Walk("", chain, out));
  SayTooLong(root, walk.skipped(), walk.first_skipped());
  return out;
}

Result<Listing> ScanTreeParallel(const std::function<std::unique_ptr<FileSystem>()>& make_fs,
                                 const std::string& root, const Filter& filter,
                                 bool one_file_system, size_t expect, unsigned threads) {
  std::unique_ptr<FileSystem> fs = make_fs();
  auto top = fs->Stat(root, "");
  if (!top) return std::unexpected(top.error());
  if (top->type != FileType::kDir) return Fail(root + ": not a directory", ENOTDIR);
  // The root's own entries first, as ScanTree lists them, without entering its directories.
  uint64_t skipped = 0;  // Paths too long, the first of them beneath `first_skipped`.
  std::string first_skipped;
  auto entries = fs->ListDir(root, "");
  if (!entries) {
    int code = entries.error().code;
    if (code != ENOENT && code != ENOTDIR && code != ENAMETOOLONG) return std::unexpected(entries.error());
    if (code == ENAMETOOLONG) ++skipped;
    entries = std::vector<Result<Entry>>{};  // Gone meanwhile: the root alone, as ScanTree.
  }
  const uint64_t root_dev = top->dev;
  const std::vector<std::pair<uint64_t, uint64_t>> base_chain{{top->dev, top->ino}};
  Listing out;
  ReserveLarge(out, expect);
  out.push_back(std::move(*top));
  std::vector<size_t> subtrees;  // Indices in `out` of the directories to enter.
  for (auto& entry : *entries) {
    if (!entry) {
      if (entry.error().code != ENAMETOOLONG) return std::unexpected(entry.error());
      ++skipped;
      continue;
    }
    if (filter.Excluded(entry->path, entry->type == FileType::kDir)) continue;
    // A directory that is the root again (a followed symlink to it) is listed, not entered.
    bool loops = entry->ino != 0 && entry->dev == base_chain[0].first && entry->ino == base_chain[0].second;
    if (entry->type == FileType::kDir && !(one_file_system && entry->dev != root_dev) && !loops)
      subtrees.push_back(out.size());
    out.push_back(std::move(*entry));
  }
  // Each thread takes the next whole subtree, until none is left, into a listing of its own.
  struct Part {
    Listing out;
    Error error;
    bool failed = false;
    uint64_t skipped = 0;
    std::string first_skipped;
  };
  threads = std::max(1u, std::min<unsigned>(threads, static_cast<unsigned>(subtrees.size())));
  std::vector<Part> parts(threads);
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false};
  auto work = [&](unsigned t, FileSystem& own) {
    Part& part = parts[t];
    ReserveLarge(part.out, expect / threads + expect / 16);
    TreeWalk walk(own, root, filter, one_file_system, root_dev);
    for (size_t i; !stop.load() && (i = next.fetch_add(1)) < subtrees.size();) {
      const Entry& dir = out[subtrees[i]];
      auto chain = base_chain;
      chain.emplace_back(dir.dev, dir.ino);
      if (auto r = walk.Walk(dir.path, chain, part.out, &stop); !r) {
        part.error = r.error();
        part.failed = true;
        stop = true;
      }
    }
    part.skipped = walk.skipped();
    part.first_skipped = walk.first_skipped();
  };
  std::vector<std::thread> helpers;
  std::vector<std::unique_ptr<FileSystem>> helper_fs;
  for (unsigned t = 1; t < threads; ++t) {
    helper_fs.push_back(make_fs());
    helpers.emplace_back(work, t, std::ref(*helper_fs.back()));
  }
  work(0, *fs);
  for (std::thread& h : helpers) h.join();
  size_t total = out.size();
  for (Part& part : parts) {
    if (part.failed) return std::unexpected(part.error);
    total += part.out.size();
    if (part.skipped > 0 && skipped == 0) first_skipped = part.first_skipped;
    skipped += part.skipped;
  }
  ReserveLarge(out, total);
  for (Part& part : parts) {
    for (Entry& e : part.out) out.push_back(std::move(e));
    Listing().swap(part.out);
  }
  SayTooLong(root, skipped, first_skipped);
  return out;
}

}  // namespace syncd
