#include "syncd/active_mark.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace syncd {
namespace {

// FNV-1a: a stable file name for a path.
uint64_t NameHash(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// "dev:ino" of `path` and of each directory above it, up to and without "/". Identities, not
// names: the same name can be another directory in another mount namespace, and another name
// the same directory through a bind mount.
std::vector<std::string> Chain(const std::string& path) {
  std::vector<std::string> out;
  for (std::string p = path; !p.empty() && p != "/";) {
    struct stat st;
    if (::stat(p.c_str(), &st) != 0) break;
    out.push_back(fmt::format("{}:{}", st.st_dev, st.st_ino));
    size_t slash = p.rfind('/');
    p = slash == std::string::npos || slash == 0 ? "" : p.substr(0, slash);
  }
  return out;
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
  // The process, the source, and the identities of the source and of what holds it.
  std::string content =
      fmt::format("{}\n{}\n{}\n", ::getpid(), source, fmt::join(Chain(source), " "));
  if (::ftruncate(fd.get(), 0) != 0 ||
      ::pwrite(fd.get(), content.data(), content.size(), 0) != static_cast<ssize_t>(content.size()))
    return FailErrno("write " + path);
  return ActiveMark(std::move(fd), path);
}

ActiveMark::~ActiveMark() {
  if (fd_.valid()) ::unlink(path_.c_str());  // Still locked: no other syncd has this name.
}

std::optional<std::string> ActiveSyncdOver(const std::string& path, int except_pid) {
  std::vector<std::string> target = Chain(path);
  if (target.empty()) return std::nullopt;  // Not there (yet): nothing to overwrite.
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
    size_t first = content.find('\n');
    size_t second = first == std::string::npos ? first : content.find('\n', first + 1);
    if (second == std::string::npos || !content.ends_with('\n')) continue;
    int pid = std::atoi(content.substr(0, first).c_str());
    std::string source = content.substr(first + 1, second - first - 1);
    std::vector<std::string> chain;
    std::string ids = content.substr(second + 1, content.size() - second - 2);
    for (size_t at = 0; at < ids.size();) {
      size_t end = ids.find(' ', at);
      if (end == std::string::npos) end = ids.size();
      chain.push_back(ids.substr(at, end - at));
      at = end + 1;
    }
    if (pid == except_pid || chain.empty()) continue;
    // The target is the source or lies inside it, or the source lies inside the target.
    bool related = std::find(target.begin(), target.end(), chain.front()) != target.end() ||
                   std::find(chain.begin(), chain.end(), target.front()) != chain.end();
    if (!related) continue;
    if (::flock(fd.get(), LOCK_SH | LOCK_NB) == 0) continue;  // Stale: its syncd is gone.
    found = fmt::format("syncd (pid {}) replicating {}", pid, source);
    break;
  }
  ::closedir(d);
  return found;
}

}  // namespace syncd
