// TargetDir, continued: removing an entry and everything beneath it, without recursion on the
// stack and without following a symlink planted anywhere in the subtree, keeping what the
// protect rules and backups ask for.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

#include "transport/backup.h"
#include "transport/target_dir.h"

namespace syncd::transport {

// The names in an open directory, with whether each is a directory (not following links).
Result<std::vector<std::pair<std::string, bool>>> TargetDir::ReadChildren(int fd, const std::string& rel) {
  DIR* d = ::fdopendir(::dup(fd));
  if (!d) return FailErrno("opendir " + rel);
  std::vector<std::pair<std::string, bool>> out;
  for (;;) {
    errno = 0;  // readdir() says an error only through errno.
    dirent* ent = ::readdir(d);
    if (!ent) break;
    std::string_view n = ent->d_name;
    if (n == "." || n == "..") continue;
    bool is_dir = ent->d_type == DT_DIR;
    if (ent->d_type == DT_UNKNOWN) {
      struct stat st;
      is_dir = ::fstatat(fd, ent->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
    }
    out.emplace_back(std::string(n), is_dir);
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) return FailErrno("readdir " + rel, err);
  return out;
}


Result<TargetDir::Kept> TargetDir::Remove(int dir_fd, const std::string& name,
                                          const std::string& rel, const Filter& filter,
                                          const Backups* backups) {
  Kept kept;
  auto keep = [&](const std::string& path) {
    if (kept.entries++ == 0) kept.first = path;
  };
  struct stat st;
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return kept;
    return FailErrno("stat " + rel);
  }
  // `rel` itself was chosen by the client, which tests the names it deletes, as rsync does;
  // a directory that makes way for a file of the same name is not tested at all by rsync,
  // only what lies inside it.
  // A file goes, or becomes its backup: false when it stays beside where it was.
  auto remove_file = [&](int at, const std::string& n, const std::string& r) -> Result<bool> {
    if (backups && backups->KeepsOnDelete(n)) {
      SYNCD_TRY(backups->Keep(at, n, r));
      return !backups->Beside();
    }
    if (::unlinkat(at, n.c_str(), 0) != 0 && errno != ENOENT) return FailErrno("unlink " + r);
    return true;
  };
  if (!S_ISDIR(st.st_mode)) {
    if (auto r = remove_file(dir_fd, name, rel); !r) return std::unexpected(r.error());
    return kept;
  }
  // Depth first with an explicit stack: a tree of any depth is removed without recursion.
  struct Level {
    UniqueFd fd;
    std::string name;  // In the level above (or in dir_fd).
    std::string rel;
    std::vector<std::pair<std::string, bool>> children;
    size_t next = 0;
    bool keeps = false;  // Something beneath stays.
  };
  std::vector<Level> stack;
  auto enter = [&](int parent, const std::string& n, const std::string& r) -> Result<bool> {
    UniqueFd fd(::openat(parent, n.c_str(), O_DIRECTORY | O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) {
      if (errno == ENOENT) return false;
      return FailErrno("open " + r);
    }
    auto children = ReadChildren(fd.get(), r);
    if (!children) return std::unexpected(children.error());
    stack.push_back(Level{std::move(fd), n, r, std::move(*children)});
    return true;
  };
  if (auto r = enter(dir_fd, name, rel); !r) return std::unexpected(r.error());
  while (!stack.empty()) {
    Level& level = stack.back();
    if (level.next < level.children.size()) {
      auto [child, child_is_dir] = level.children[level.next++];
      std::string child_rel = level.rel + "/" + child;
      bool ours = !child_is_dir && IsTempName(child);
      if (!ours && filter.Protected(child_rel, child_is_dir, /*in_deleted_dir=*/true)) {
        keep(child_rel);
        level.keeps = true;
        continue;
      }
      if (!child_is_dir) {
        auto gone = remove_file(level.fd.get(), child, child_rel);
        if (!gone) return std::unexpected(gone.error());
        if (!*gone) {
          keep(child_rel + backups->suffix());
          level.keeps = true;
        }
        continue;
      }
      int parent = level.fd.get();  // `level` may move when the stack grows.
      if (auto r = enter(parent, child, child_rel); !r) return std::unexpected(r.error());
      continue;
    }
    Level done = std::move(stack.back());
    stack.pop_back();
    int parent = stack.empty() ? dir_fd : stack.back().fd.get();
    if (done.keeps) {
      if (!stack.empty()) stack.back().keeps = true;
      continue;
    }
    done.fd.Reset();
    if (::unlinkat(parent, done.name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
      return FailErrno("rmdir " + done.rel);
  }
  return kept;
}

}  // namespace syncd::transport
