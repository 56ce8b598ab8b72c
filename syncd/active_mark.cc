#include "syncd/active_mark.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include <fmt/format.h>

#include "syncd/tree.h"

namespace syncd {
namespace {

// FNV-1a: a stable file name for a path.
uint64_t NameHash(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

bool Related(const std::string& a, const std::string& b) {
  return a == b || IsWithin(a, b) || IsWithin(b, a);
}

}  // namespace

std::string ActiveMarkDir() {
  const char* dir = std::getenv("SYNCD_RUN_DIR");
  return dir && *dir ? dir : "/run/syncd";
}

Result<ActiveMark> ActiveMark::Take(const std::string& source) {
  std::string dir = ActiveMarkDir();
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return FailErrno("mkdir " + dir);
  std::string path = fmt::format("{}/active-{:016x}.lock", dir, NameHash(source));
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!fd.valid()) return FailErrno("open " + path);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK)
      return Fail(fmt::format("{} is already replicated by another syncd on this host", source),
                  EBUSY);
    return FailErrno("lock " + path);
  }
  std::string content = fmt::format("{} {}\n", ::getpid(), source);
  if (::ftruncate(fd.get(), 0) != 0 ||
      ::pwrite(fd.get(), content.data(), content.size(), 0) != static_cast<ssize_t>(content.size()))
    return FailErrno("write " + path);
  return ActiveMark(std::move(fd), path);
}

ActiveMark::~ActiveMark() {
  if (fd_.valid()) ::unlink(path_.c_str());  // Still locked: no other syncd has this name.
}

std::optional<std::string> ActiveSyncdOver(const std::string& path, int except_pid) {
  std::string dir = ActiveMarkDir();
  DIR* d = ::opendir(dir.c_str());
  if (!d) return std::nullopt;
  std::optional<std::string> found;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (!name.starts_with("active-") || !name.ends_with(".lock")) continue;
    UniqueFd fd(::openat(::dirfd(d), name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd.valid()) continue;
    char buf[4200];
    ssize_t n = ::pread(fd.get(), buf, sizeof buf - 1, 0);
    if (n <= 0) continue;
    std::string content(buf, static_cast<size_t>(n));
    size_t space = content.find(' ');
    if (space == std::string::npos || !content.ends_with('\n')) continue;
    int pid = std::atoi(content.substr(0, space).c_str());
    std::string source = content.substr(space + 1, content.size() - space - 2);
    if (pid == except_pid || !Related(path, source)) continue;
    if (::flock(fd.get(), LOCK_SH | LOCK_NB) == 0) continue;  // Stale: its syncd is gone.
    found = fmt::format("syncd (pid {}) replicating {}", pid, source);
    break;
  }
  ::closedir(d);
  return found;
}

}  // namespace syncd
