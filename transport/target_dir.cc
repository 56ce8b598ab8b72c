#include "transport/target_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/openat2.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <random>
#include <vector>

#include "syncd/file_system.h"
#include "transport/backup.h"
#include "transport/codec.h"

namespace syncd::transport {
namespace {

constexpr std::string_view kTempPrefix = ".syncd-";
constexpr std::string_view kTempSuffix = ".tmp";

int OpenBeneath(int root, const std::string& rel, int flags) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags) | O_CLOEXEC | O_NOFOLLOW;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  long fd = syscall(SYS_openat2, root, rel.c_str(), &how, sizeof how);
  if (fd >= 0 || errno != ENOSYS) return static_cast<int>(fd);
  // Kernels before 5.6: walk one component at a time, refusing symlinks at every step.
  UniqueFd cur(::dup(root));
  size_t start = 0;
  while (cur.valid()) {
    size_t slash = rel.find('/', start);
    std::string part = rel.substr(start, slash == std::string::npos ? std::string::npos
                                                                    : slash - start);
    bool last = slash == std::string::npos;
    int next = ::openat(cur.get(), part.c_str(),
                        (last ? flags : O_DIRECTORY | O_RDONLY) | O_CLOEXEC | O_NOFOLLOW);
    if (next < 0) return -1;
    cur.Reset(next);
    if (last) return cur.Release();
    start = slash + 1;
  }
  return -1;
}

std::string ProcPath(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

timespec TimeOf(const Meta& m) {
  return timespec{static_cast<time_t>(m.mtime_sec), static_cast<long>(m.mtime_nsec)};
}

}  // namespace

Result<TargetDir> TargetDir::Open(const std::string& dir) {
  if (dir.empty()) return Fail("empty target directory");
  // mkdir -p: rsync would create only the last level; creating parents spares a surprise.
  for (size_t slash = dir.find('/', 1);; slash = dir.find('/', slash + 1)) {
    std::string prefix = dir.substr(0, slash);
    if (!prefix.empty() && ::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST)
      return FailErrno("mkdir " + prefix);
    if (slash == std::string::npos) break;
  }
  int fd = ::open(dir.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (fd < 0) return FailErrno("open target " + dir);
  TargetDir t;
  t.root_.Reset(fd);
  t.path_ = dir;
  return t;
}

Result<TargetDir> TargetDir::OpenWithin(const std::vector<std::string>& roots,
                                        const std::string& dir) {
  if (roots.empty()) return Open(dir);
  auto refuse = [&](const std::string& why) {
    std::string list;
    for (const std::string& r : roots) list += (list.empty() ? "" : ", ") + r;
    return Fail("target " + dir + " refused: " + why + " (the agent may write only beneath " + list + ")", EACCES);
  };
  // Lexical form first: no `..`, no empty or `.` components.
  std::vector<std::string> parts;
  for (size_t at = 0; at <= dir.size();) {
    size_t slash = dir.find('/', at);
    if (slash == std::string::npos) slash = dir.size();
    std::string part = dir.substr(at, slash - at);
    if (part == "..") return refuse("it contains ..");
    if (!part.empty() && part != ".") parts.push_back(part);
    at = slash + 1;
  }
  std::string normal;
  for (const std::string& p : parts) normal += "/" + p;
  if (normal.empty()) normal = "/";
  for (const std::string& root : roots) {
    std::string rel;
    if (normal == root) {
      rel = "";
    } else if (root == "/" ) {
      rel = normal.substr(1);
    } else if (normal.size() > root.size() && normal.compare(0, root.size(), root) == 0 &&
               normal[root.size()] == '/') {
      rel = normal.substr(root.size() + 1);
    } else {
      continue;
    }
    UniqueFd fd(::open(root.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return FailErrno("open root " + root);
    // Level by level, never through a symlink: a link planted beneath the root cannot lead out.
    for (size_t at = 0; at < rel.size();) {
      size_t slash = rel.find('/', at);
      if (slash == std::string::npos) slash = rel.size();
      std::string part = rel.substr(at, slash - at);
      if (::mkdirat(fd.get(), part.c_str(), 0755) != 0 && errno != EEXIST)
        return FailErrno("mkdir " + root + "/" + rel.substr(0, slash));
      int next = ::openat(fd.get(), part.c_str(), O_DIRECTORY | O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (next < 0) {
        if (errno == ELOOP || errno == ENOTDIR) return refuse(root + "/" + rel.substr(0, slash) + " is not a directory");
        return FailErrno("open " + root + "/" + rel.substr(0, slash));
      }
      fd.Reset(next);
      at = slash + 1;
    }
    TargetDir t;
    t.root_ = std::move(fd);
    t.path_ = normal;
    return t;
  }
  return refuse("it is outside the agent's roots");
}

Result<UniqueFd> TargetDir::OpenParent(const std::string& rel, std::string* name) const {
  SYNCD_TRY(ValidateRelativePath(rel, /*allow_root=*/true));
  if (rel.empty()) {
    name->clear();
    return UniqueFd(::dup(root_.get()));
  }
  size_t slash = rel.rfind('/');
  *name = slash == std::string::npos ? rel : rel.substr(slash + 1);
  if (slash == std::string::npos) return UniqueFd(::dup(root_.get()));
  std::string parent = rel.substr(0, slash);
  int fd = OpenBeneath(root_.get(), parent, O_DIRECTORY | O_RDONLY);
  if (fd < 0) {
    if (errno == ELOOP || errno == EXDEV)
      return Fail("refusing " + rel + ": a parent directory is a symlink", errno);
    return FailErrno("open " + JoinPath(path_, parent));
  }
  return UniqueFd(fd);
}

uid_t TargetDir::ResolveUser(const Meta& meta) {
  if (meta.user.empty()) return meta.uid;
  auto it = uids_.find(meta.user);
  if (it != uids_.end()) return it->second;
  passwd pw;
  passwd* result = nullptr;
  char buf[4096];
  uid_t uid = meta.uid;
  if (getpwnam_r(meta.user.c_str(), &pw, buf, sizeof buf, &result) == 0 && result)
    uid = pw.pw_uid;
  uids_.emplace(meta.user, uid);
  return uid;
}

gid_t TargetDir::ResolveGroup(const Meta& meta) {
  if (meta.group.empty()) return meta.gid;
  auto it = gids_.find(meta.group);
  if (it != gids_.end()) return it->second;
  group gr;
  group* result = nullptr;
  char buf[4096];
  gid_t gid = meta.gid;
  if (getgrnam_r(meta.group.c_str(), &gr, buf, sizeof buf, &result) == 0 && result)
    gid = gr.gr_gid;
  gids_.emplace(meta.group, gid);
  return gid;
}

Result<void> TargetDir::ApplyMetaFd(int fd, const Meta& meta, const MetaPolicy& policy,
                                    const struct stat* now) {
  if (policy.owner || policy.group) {
    uid_t uid = policy.owner ? ResolveUser(meta) : static_cast<uid_t>(-1);
    gid_t gid = policy.group ? ResolveGroup(meta) : static_cast<gid_t>(-1);
    bool same = now && (!policy.owner || now->st_uid == uid) && (!policy.group || now->st_gid == gid);
    if (!same && ::fchown(fd, uid, gid) != 0 && errno != EPERM) return FailErrno("fchown");
  }
  // Before the mode: an ACL sets the group bits, which the mode then states again.
  if (auto r = WriteXattrsFd(fd, meta.xattrs, policy.xattrs); !r) return r;
  // After chown, which clears set-id bits. A file as made (`now`) has none: a mode with them
  // always differs from it, so it is always stated here, after the chown.
  bool same_mode = now && !policy.xattrs.any() && (now->st_mode & 07777) == (meta.mode & 07777);
  if (policy.perms && !same_mode && ::fchmod(fd, meta.mode & 07777) != 0) return FailErrno("fchmod");
  if (policy.times) {
    timespec times[2] = {{0, UTIME_OMIT}, TimeOf(meta)};
    if (::futimens(fd, times) != 0) return FailErrno("futimens");
  }
  return {};
}

Result<void> TargetDir::ApplyMeta(int dir_fd, const std::string& name, const Meta& meta,
                                  const MetaPolicy& policy, bool skip_times) {
  const char* n = name.empty() ? "." : name.c_str();
  struct stat st;
  if (::fstatat(dir_fd, n, &st, AT_SYMLINK_NOFOLLOW) != 0) return FailErrno("stat " + name);
  if (S_ISLNK(st.st_mode)) {
    if ((policy.owner || policy.group) &&
        ::fchownat(dir_fd, n, policy.owner ? ResolveUser(meta) : static_cast<uid_t>(-1),
                   policy.group ? ResolveGroup(meta) : static_cast<gid_t>(-1),
                   AT_SYMLINK_NOFOLLOW) != 0 &&
        errno != EPERM)
      return FailErrno("lchown " + name);
    if (auto r = WriteXattrs(ProcPath(dir_fd) + "/" + name, meta.xattrs, policy.xattrs,
                             XattrLookup::kNoFollow);
        !r)
      return r;
    if (policy.times && policy.link_times && !skip_times) {
      timespec times[2] = {{0, UTIME_OMIT}, TimeOf(meta)};
      if (::utimensat(dir_fd, n, times, AT_SYMLINK_NOFOLLOW) != 0)
        return FailErrno("utimensat " + name);
    }
    return {};
  }
  // An O_PATH descriptor pins the inode: a swap for a symlink after this point changes nothing.
  UniqueFd fd(::openat(dir_fd, n, O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return FailErrno("open " + name);
  std::string proc = ProcPath(fd.get());
  if (policy.owner || policy.group) {
    if (::fchownat(fd.get(), "", policy.owner ? ResolveUser(meta) : static_cast<uid_t>(-1),
                   policy.group ? ResolveGroup(meta) : static_cast<gid_t>(-1),
                   AT_EMPTY_PATH) != 0 &&
        errno != EPERM)
      return FailErrno("chown " + name);
  }
  if (auto r = WriteXattrs(proc, meta.xattrs, policy.xattrs, XattrLookup::kFollow); !r) return r;
  if (policy.perms && ::chmod(proc.c_str(), meta.mode & 07777) != 0)
    return FailErrno("chmod " + name);
  if (policy.times && !skip_times && (policy.dir_times || !S_ISDIR(st.st_mode))) {
    timespec times[2] = {{0, UTIME_OMIT}, TimeOf(meta)};
    if (::utimensat(AT_FDCWD, proc.c_str(), times, 0) != 0) return FailErrno("utimensat " + name);
  }
  return {};
}

bool TargetDir::IsTempName(std::string_view name) {
  return name.size() == kTempPrefix.size() + 16 + kTempSuffix.size() &&
         name.starts_with(kTempPrefix) && name.ends_with(kTempSuffix);
}

std::string TargetDir::NewTempName() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(rng()));
  return std::string(kTempPrefix) + hex + std::string(kTempSuffix);
}

Result<TargetDir::Unlisted> TargetDir::List(const std::function<void(Entry)>& emit,
                                            const XattrScope& xattrs) {
  NameCache names;
  Unlisted unlisted;
  struct stat st;
  if (::fstat(root_.get(), &st) != 0) return FailErrno("stat " + path_);
  Entry top = EntryFromStat("", st, names);
  if (auto x = ReadXattrsFd(root_.get(), xattrs)) top.meta.xattrs = std::move(*x);
  emit(std::move(top));
  // Directories to read, by path: one descriptor open at a time, however wide the tree.
  std::vector<std::string> stack{""};
  while (!stack.empty()) {
    std::string rel = std::move(stack.back());
    stack.pop_back();
    UniqueFd dir(rel.empty() ? ::dup(root_.get()) : OpenBeneath(root_.get(), rel, O_DIRECTORY | O_RDONLY));
    if (!dir.valid()) {
      if (errno == ENOENT || errno == ENOTDIR) continue;  // Gone meanwhile.
      if (errno == ENAMETOOLONG) {  // Listed itself; what it holds cannot be named.
        if (unlisted.entries++ == 0) unlisted.first_dir = rel;
        continue;
      }
      return FailErrno("open " + JoinPath(path_, rel));
    }
    auto children = ReadChildren(dir.get(), rel);
    if (!children) return std::unexpected(children.error());
    for (const auto& [n, unused] : *children) {
      if (::fstatat(dir.get(), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;
        return FailErrno("stat " + JoinPath(path_, JoinPath(rel, n)));
      }
      if (!S_ISDIR(st.st_mode) && IsTempName(n)) {
        ::unlinkat(dir.get(), n.c_str(), 0);  // Left by an interrupted transfer.
        continue;
      }
      std::string child = rel.empty() ? n : rel + "/" + n;
      if (child.size() > kMaxPath) {  // Made here, not by syncd: the protocol cannot name it.
        if (unlisted.entries++ == 0) unlisted.first_dir = rel;
        continue;
      }
      Entry e = EntryFromStat(child, st, names);
      if (e.type == FileType::kSymlink) {
        char target[4097];
        ssize_t len = ::readlinkat(dir.get(), n.c_str(), target, sizeof target - 1);
        if (len >= 0) e.link_target.assign(target, static_cast<size_t>(len));
      } else if (e.type == FileType::kDir) {
        stack.push_back(child);
      }
      // Through the directory's descriptor, not following a symlink at the name.
      if (xattrs.any())
        if (auto x = ReadXattrs(ProcPath(dir.get()) + "/" + n, xattrs, XattrLookup::kNoFollow))
          e.meta.xattrs = std::move(*x);
      emit(std::move(e));
    }
  }
  return unlisted;
}

Result<bool> TargetDir::Fits(int dir_fd, const std::string& name, size_t budget) {
  struct stat st;
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return FailErrno("stat " + name);
  if (!S_ISDIR(st.st_mode)) return true;
  struct Level {
    UniqueFd fd;
    size_t length;  // Of the path from `name`'s parent to this directory.
    std::vector<std::pair<std::string, bool>> children;
    size_t next = 0;
  };
  std::vector<Level> stack;
  auto enter = [&](int parent, const std::string& n, size_t length) -> Result<void> {
    UniqueFd fd(::openat(parent, n.c_str(), O_DIRECTORY | O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) return errno == ENOENT ? Result<void>{} : FailErrno("open " + n);
    auto children = ReadChildren(fd.get(), n);
    if (!children) return std::unexpected(children.error());
    stack.push_back(Level{std::move(fd), length, std::move(*children)});
    return {};
  };
  SYNCD_TRY(enter(dir_fd, name, name.size()));
  while (!stack.empty()) {
    Level& level = stack.back();
    if (level.next == level.children.size()) {
      stack.pop_back();
      continue;
    }
    const auto& [child, is_dir] = level.children[level.next++];
    size_t length = level.length + 1 + child.size();
    if (length > budget) return false;
    if (is_dir) {
      int parent = level.fd.get();
      SYNCD_TRY(enter(parent, child, length));
    }
  }
  return true;
}

}  // namespace syncd::transport
