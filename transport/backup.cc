#include "transport/backup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace syncd::transport {
namespace {

// `path` with `.` and `..` components resolved lexically; absolute.
std::string Normalize(const std::string& path) {
  std::vector<std::string> parts;
  for (size_t at = 0; at <= path.size();) {
    size_t slash = path.find('/', at);
    if (slash == std::string::npos) slash = path.size();
    std::string part = path.substr(at, slash - at);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    at = slash + 1;
  }
  std::string out;
  for (const std::string& p : parts) out += "/" + p;
  return out.empty() ? "/" : out;
}

// Copies the entry `name` of `from_dir` to `to_name` in `to_dir` (another filesystem), with
// its metadata; a regular file's content, a symlink's target, a node's device.
Result<void> CopyEntry(int from_dir, const std::string& name, int to_dir, const std::string& to_name,
                       const std::string& rel) {
  struct stat st;
  if (::fstatat(from_dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return FailErrno("stat " + rel);
  ::unlinkat(to_dir, to_name.c_str(), 0);
  if (S_ISREG(st.st_mode)) {
    UniqueFd in(::openat(from_dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    if (!in.valid()) return FailErrno("open " + rel);
    UniqueFd out(::openat(to_dir, to_name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!out.valid()) return FailErrno("create backup of " + rel);
    char buf[64 * 1024];
    for (;;) {
      ssize_t n = ::read(in.get(), buf, sizeof buf);
      if (n < 0) return FailErrno("read " + rel);
      if (n == 0) break;
      for (ssize_t done = 0; done < n;) {
        ssize_t w = ::write(out.get(), buf + done, static_cast<size_t>(n - done));
        if (w < 0) return FailErrno("write backup of " + rel);
        done += w;
      }
    }
    ::fchown(out.get(), st.st_uid, st.st_gid);
    ::fchmod(out.get(), st.st_mode & 07777);
    timespec times[2] = {st.st_atim, st.st_mtim};
    ::futimens(out.get(), times);
    return {};
  }
  if (S_ISLNK(st.st_mode)) {
    std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
    ssize_t n = ::readlinkat(from_dir, name.c_str(), target.data(), target.size());
    if (n < 0) return FailErrno("readlink " + rel);
    target.resize(static_cast<size_t>(n));
    if (::symlinkat(target.c_str(), to_dir, to_name.c_str()) != 0) return FailErrno("backup of " + rel);
  } else if (::mknodat(to_dir, to_name.c_str(), st.st_mode, st.st_rdev) != 0) {
    return FailErrno("backup of " + rel);
  }
  ::fchownat(to_dir, to_name.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW);
  timespec times[2] = {st.st_atim, st.st_mtim};
  ::utimensat(to_dir, to_name.c_str(), times, AT_SYMLINK_NOFOLLOW);
  return {};
}

}  // namespace

Result<Backups> Backups::Open(const BackupSettings& settings, const TargetDir& target,
                              const std::vector<std::string>& roots) {
  if (settings.suffix.find('/') != std::string::npos)
    return Fail("--suffix cannot contain slashes: " + settings.suffix, EINVAL);
  if (settings.suffix.size() > 64) return Fail("--suffix is too long", EINVAL);
  if (settings.dir.find('\0') != std::string::npos) return Fail("invalid --backup-dir", EINVAL);
  Backups b(settings, target);
  if (settings.dir.empty()) {
    if (settings.suffix.empty()) return Fail("--suffix cannot be empty without a --backup-dir", EINVAL);
    return b;
  }
  std::string dir = Normalize(settings.dir.front() == '/' ? settings.dir : target.path() + "/" + settings.dir);
  auto root = TargetDir::OpenWithin(roots, dir);
  if (!root) return std::unexpected(root.error());
  b.root_ = std::move(*root);
  return b;
}

bool Backups::KeepsOnDelete(std::string_view name) const {
  if (!Beside()) return true;
  return !(name.size() > settings_.suffix.size() && name.ends_with(settings_.suffix));
}

Result<UniqueFd> Backups::BackupParent(const std::string& rel) const {
  UniqueFd fd(::dup(root_->root_fd()));
  if (!fd.valid()) return FailErrno("dup");
  size_t end = rel.rfind('/');
  if (end == std::string::npos) return fd;
  for (size_t at = 0; at < end;) {
    size_t slash = rel.find('/', at);
    std::string part = rel.substr(at, slash - at);
    std::string prefix = rel.substr(0, slash);
    struct stat like;
    bool have_like = ::fstatat(target_->root_fd(), prefix.c_str(), &like, AT_SYMLINK_NOFOLLOW) == 0 &&
                     S_ISDIR(like.st_mode);
    if (::mkdirat(fd.get(), part.c_str(), 0700) == 0) {
      if (have_like) {
        ::fchownat(fd.get(), part.c_str(), like.st_uid, like.st_gid, AT_SYMLINK_NOFOLLOW);
        ::fchmodat(fd.get(), part.c_str(), like.st_mode & 07777, 0);
      }
    } else if (errno != EEXIST) {
      return FailErrno("mkdir " + JoinPath(root_->path(), prefix));
    }
    int next = ::openat(fd.get(), part.c_str(), O_DIRECTORY | O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) return FailErrno("open " + JoinPath(root_->path(), prefix));
    fd.Reset(next);
    at = slash + 1;
  }
  return fd;
}

Result<void> Backups::Keep(int dir_fd, const std::string& name, const std::string& rel) const {
  struct stat st;
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return {};
    return FailErrno("stat " + rel);
  }
  std::string backup_name = name + settings_.suffix;
  if (backup_name.size() > 255) return Fail("backup name too long for " + rel, ENAMETOOLONG);
  UniqueFd parent;
  int to_dir = dir_fd;
  if (!Beside()) {
    auto p = BackupParent(rel);
    if (!p) return std::unexpected(p.error());
    parent = std::move(*p);
    to_dir = parent.get();
  }
  for (int attempt = 0;; ++attempt) {
    if (::renameat(dir_fd, name.c_str(), to_dir, backup_name.c_str()) == 0) return {};
    if (errno == EXDEV) {
      SYNCD_TRY(CopyEntry(dir_fd, name, to_dir, backup_name, rel));
      if (::unlinkat(dir_fd, name.c_str(), 0) != 0 && errno != ENOENT) return FailErrno("unlink " + rel);
      return {};
    }
    // A directory where the backup goes: it makes way, as rsync's backup does.
    if ((errno == EISDIR || errno == ENOTEMPTY || errno == EEXIST) && attempt == 0) {
      auto removed = TargetDir::Remove(to_dir, backup_name, rel + settings_.suffix, Filter{});
      if (!removed) return std::unexpected(removed.error());
      continue;
    }
    return FailErrno("could not make way for the backup of " + rel);
  }
}

}  // namespace syncd::transport
