// TargetDir is the agent's view of its target directory: every operation resolves its path
// beneath the root without following symlinks (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS),
// so `..`, absolute paths and symlinked parents can never reach outside it.
#pragma once

#include <sys/stat.h>

#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "syncd/error.h"
#include "syncd/filter.h"
#include "syncd/tree.h"
#include "syncd/xattrs.h"
#include "syncd/unique_fd.h"

namespace syncd::transport {

class Backups;

// Which parts of Meta the agent applies.
struct MetaPolicy {
  bool perms = false;
  bool owner = false;
  bool group = false;
  bool times = false;
  XattrScope xattrs;  // Extended attributes and ACLs applied (and listed).
  bool dir_times = true;   // With `times`: directories' too (rsync -O clears it).
  bool link_times = true;  // With `times`: symlinks' too (rsync -J clears it).
};

class TargetDir {
 public:
  // Opens `dir`, creating it and missing parents (mode 0755) if needed.
  static Result<TargetDir> Open(const std::string& dir);
  // Opens `dir` (absolute) only if it is one of `roots` (absolute, canonical) or beneath one,
  // creating missing levels beneath that root without following symlinks; anything else is
  // refused with EACCES. With no roots, Open(dir).
  static Result<TargetDir> OpenWithin(const std::vector<std::string>& roots, const std::string& dir);

  int root_fd() const { return root_.get(); }
  const std::string& path() const { return path_; }

  // The directory holding `rel` (validated), opened beneath the root; `name` gets the last
  // component. For "" (the root itself) the root is returned and `name` is empty.
  Result<UniqueFd> OpenParent(const std::string& rel, std::string* name) const;

  // Sets owner, group, mode and (unless `skip_times`) mtime of `name` in `dir_fd`, never
  // following a symlink at `name`. Owner and group are matched by name, numbers as fallback.
  Result<void> ApplyMeta(int dir_fd, const std::string& name, const Meta& meta,
                         const MetaPolicy& policy, bool skip_times = false);
  // Same on an open regular file. `now`, if known, is the file's state: what it already has
  // is not set again.
  Result<void> ApplyMetaFd(int fd, const Meta& meta, const MetaPolicy& policy,
                           const struct stat* now = nullptr);

  // What a removal left in place because the filter protects it.
  struct Kept {
    uint64_t entries = 0;  // Protected entries beneath (or at) the path; 0: all removed.
    std::string first;     // The first of them, relative to the target.
  };
  // Removes `name` in `dir_fd` (`rel` is its path beneath the target), recursively for
  // directories, without recursing on the stack. Entries beneath it that `filter` protects
  // stay, and so do the directories that hold them (rsync: "cannot delete non-empty
  // directory"); the agent's own temporary files never count as protected. `name` itself is
  // not tested: the caller chose it. A missing name is not an error.
  // With `backups`, what is removed that is not a directory is kept as a backup instead
  // (backups beside their files count as kept entries: their directories stay).
  static Result<Kept> Remove(int dir_fd, const std::string& name, const std::string& rel,
                             const Filter& filter, const Backups* backups = nullptr);

  // Walks the tree depth-first (the root first, as ""), calling `emit` for each entry.
  // Temporary files left by an interrupted transfer are deleted instead of listed.
  // Entries whose paths are longer than the protocol can carry (made on this node, not by
  // syncd) are not listed: how many, and the directory holding the first.
  struct Unlisted {
    uint64_t entries = 0;
    std::string first_dir;
  };
  // A directory that cannot be read fully fails the listing: it is never cut short silently.
  Result<Unlisted> List(const std::function<void(Entry)>& emit, const XattrScope& xattrs = {});

  // Whether every path beneath `name` in `dir_fd`, counted from `dir_fd` (name included), is
  // at most `budget` bytes long: a rename must not make paths the protocol cannot list.
  static Result<bool> Fits(int dir_fd, const std::string& name, size_t budget);

  // True for names the agent uses for files in transfer.
  static bool IsTempName(std::string_view name);
  static std::string NewTempName();

 private:
  // The names in an open directory, with whether each is a directory (not following links).
  static Result<std::vector<std::pair<std::string, bool>>> ReadChildren(int fd, const std::string& rel);
  uid_t ResolveUser(const Meta& meta);
  gid_t ResolveGroup(const Meta& meta);

  UniqueFd root_;
  std::string path_;
  std::unordered_map<std::string, uid_t> uids_;
  std::unordered_map<std::string, gid_t> gids_;
};

}  // namespace syncd::transport
