#include "syncd/file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <xxhash.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <memory>
#include <utility>

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

}  // namespace syncd
