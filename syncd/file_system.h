// FileSystem is the planner's seam to the local disk (lstat, readdir), so planning logic can be
// tested against a fake. PosixFileSystem is the real one.
#pragma once

#include <sys/stat.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "syncd/config.h"
#include "syncd/error.h"
#include "syncd/filter.h"
#include "syncd/tree.h"

namespace syncd {

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  // lstat of root/rel as an Entry (path = rel). Fails with code ENOENT when it is gone.
  virtual Result<Entry> Stat(const std::string& root, const std::string& rel) = 0;
  // Names in a directory, without "." and "..".
  virtual Result<std::vector<std::string>> ReadDir(const std::string& dir) = 0;
  // xxh3-128 of a regular file's content.
  virtual Result<ContentHash> Hash(const std::string& root, const std::string& rel) = 0;
  // The entries of directory `rel` beneath `root`, each as Stat describes it, in one pass:
  // a child that vanished since the listing is left out, any other failure is that child's
  // result. The directory itself failing (gone, unreadable) is the error.
  virtual Result<std::vector<Result<Entry>>> ListDir(const std::string& root, const std::string& rel);
};

// Maps uid/gid to names and back, caching the answers of getpwuid_r/getgrgid_r.
class NameCache {
 public:
  const std::string& UserName(uint32_t uid);
  const std::string& GroupName(uint32_t gid);

 private:
  std::unordered_map<uint32_t, std::string> users_;
  std::unordered_map<uint32_t, std::string> groups_;
};

// rsync's test for a link that leads out of the tree: an absolute or empty target, or one whose
// ".." components climb above the tree's top from where the link at `path` lies.
bool UnsafeSymlink(std::string_view path, std::string_view target);

class PosixFileSystem : public FileSystem {
 public:
  explicit PosixFileSystem(FollowLinks follow = FollowLinks::kNone, XattrScope xattrs = {})
      : follow_(follow), xattrs_(xattrs) {}
  // A symlink that `follow` names is described as its referent (stat, not lstat); one whose
  // referent is missing fails with ENOENT, so it is skipped as rsync skips it ("symlink has no
  // referent"). The extended attributes in `xattrs` are part of the metadata.
  Result<Entry> Stat(const std::string& root, const std::string& rel) override;
  Result<std::vector<std::string>> ReadDir(const std::string& dir) override;
  Result<ContentHash> Hash(const std::string& root, const std::string& rel) override;
  // Opens the directory once and describes its children relative to it: the cost of an
  // entry does not grow with the depth of its path.
  Result<std::vector<Result<Entry>>> ListDir(const std::string& root, const std::string& rel) override;

 private:
  Result<void> AddXattrs(Entry& e, const std::string& abs, XattrLookup lookup);
  // Stat of `name` in the directory `dirfd`, whose path is `dir` (AT_FDCWD with an absolute
  // name and an empty `dir`), described as `rel`. The whole path is made only when needed:
  // for messages and for the extended attributes.
  Result<Entry> StatAt(int dirfd, const char* name, std::string rel, std::string_view dir);

  FollowLinks follow_;
  XattrScope xattrs_;
  NameCache names_;
};

// Walks root depth-first and lists every entry that the filter does not exclude, the root
// itself first (path ""). Entries that vanish during the walk are skipped. With
// `one_file_system` (rsync -x), a directory on another filesystem is listed, not entered. A
// directory reached a second time (a followed symlink that loops back) is listed, not entered.
// `expect`: about how many entries there are, if known (the listing is made that large at
// once: growing a large one costs a fifth of the scan).
Result<Listing> ScanTree(FileSystem& fs, const std::string& root, const Filter& filter,
                         bool one_file_system = false, size_t expect = 0);

// The same walk on up to `threads` threads, each with a file system of its own from `make_fs`:
// the root is listed first, then its directories are shared out, one whole subtree at a time.
// The root comes first, then its entries; a directory comes before what lies beneath it, but
// the subtrees come in no particular order.
Result<Listing> ScanTreeParallel(const std::function<std::unique_ptr<FileSystem>()>& make_fs,
                                 const std::string& root, const Filter& filter,
                                 bool one_file_system, size_t expect, unsigned threads);

// Converts an lstat result into an Entry, with names resolved through `names`.
Entry EntryFromStat(std::string rel, const struct stat& st, NameCache& names);

}  // namespace syncd
