// The model of what a path is: its type, content size and metadata, as seen on either node.
// The planner compares local Entries with the peer's to decide what to send.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace syncd {

// kOther: a special file whose kind the other side did not say (an older peer).
enum class FileType : uint8_t {
  kFile = 1, kDir = 2, kSymlink = 3, kOther = 4,
  kFifo = 5, kSocket = 6, kCharDevice = 7, kBlockDevice = 8,
};

// FIFOs and sockets: rsync's --specials.
inline bool IsSpecial(FileType t) { return t == FileType::kFifo || t == FileType::kSocket; }
// Character and block devices: rsync's --devices.
inline bool IsDevice(FileType t) {
  return t == FileType::kCharDevice || t == FileType::kBlockDevice;
}

// Extended attributes (and POSIX ACLs, which Linux keeps as attributes): name -> value,
// sorted by name. Empty unless the sync carries them (syncd/xattrs.h).
using Xattrs = std::vector<std::pair<std::string, std::string>>;

struct Meta {
  uint32_t mode = 0;  // Permission bits (07777).
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string user;   // Name of uid on the node that produced the Meta; empty if none.
  std::string group;  // Name of gid, likewise.
  int64_t mtime_sec = 0;
  uint32_t mtime_nsec = 0;
  Xattrs xattrs;

  bool operator==(const Meta&) const = default;
};

// xxh3-128 of a file's content.
struct ContentHash {
  uint64_t high = 0;
  uint64_t low = 0;
  bool operator==(const ContentHash&) const = default;
};

struct Entry {
  std::string path;  // Relative to the sync root; "" is the root itself.
  FileType type = FileType::kFile;
  uint64_t size = 0;
  Meta meta;
  std::string link_target;  // Symlinks only.
  uint64_t rdev = 0;        // Devices only: the device number (Linux's dev_t encoding).
  // Local identity, for "unchanged since last shipped" checks. Zero on peer entries.
  uint64_t ino = 0;
  int64_t ctime_ns = 0;
  uint64_t dev = 0;
  uint32_t nlink = 1;  // More than 1: other names of the same file may be in the tree.
  // The content the peer was sent, when syncd sent it itself; unknown for listed entries.
  std::optional<ContentHash> hash;
};

using Listing = std::vector<Entry>;

// Parent of a relative path: "a/b/c" -> "a/b", "a" -> "".
inline std::string ParentOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

// The same, as a view of `path`.
inline std::string_view ParentView(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string_view() : path.substr(0, slash);
}

// Joins a root and a relative path; an empty relative path gives the root.
inline std::string JoinPath(const std::string& root, const std::string& rel) {
  if (rel.empty()) return root;
  if (!root.empty() && root.back() == '/') return root + rel;
  return root + "/" + rel;
}

// True when `path` is `dir` or lies beneath it ("" is the root and contains everything).
inline bool IsWithin(const std::string& path, const std::string& dir) {
  if (dir.empty()) return true;
  return path.size() >= dir.size() && path.compare(0, dir.size(), dir) == 0 &&
         (path.size() == dir.size() || path[dir.size()] == '/');
}

}  // namespace syncd
