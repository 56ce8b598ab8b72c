// PeerMap is what the planner knows the peer holds: one compact record per path, in path
// order (a directory's subtree is one range). A record keeps what comparisons need in 56
// bytes; owner and group names are interned, and what few entries have (a symlink's target,
// a device number, extended attributes, a hard-link token) is kept beside the records. An
// Entry is made on demand. This is most of what a sync holds per file once in sync.
//
// The records live in one sorted array whose paths are packed into one buffer (about 80
// bytes per file, no allocation per file), with the paths added since it was built in a
// small ordered map beside it; the two are merged into a new array when the map grows to
// half the array, or when asked (Compact, once a comparison's copy is done). Erased records
// of the array are marked, and dropped at the next merge. Held in a few large blocks rather
// than a million small ones, the map does not pin the heap that a comparison's transient
// lists used, so that memory goes back to the system.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string_view>
#include <string>
#include <unordered_map>
#include <vector>

#include "syncd/tree.h"

namespace syncd {

class PeerMap {
 public:
  PeerMap() = default;
  // From a listing of the peer; the listing is consumed.
  explicit PeerMap(Listing&& listing);

  std::optional<Entry> Find(const std::string& path) const;
  bool Contains(const std::string& path) const;
  std::optional<FileType> TypeOf(const std::string& path) const;
  size_t size() const { return base_.size() - dead_ + added_.size(); }
  // Merges what was added into the sorted array, and drops what was erased.
  void Compact();

  // Records `entry` at entry.path, replacing what was there (not what is beneath it).
  void Set(const Entry& entry);
  // Changes the metadata of the entry at `path`; false if there is none.
  bool SetMeta(const std::string& path, const Meta& meta);
  // The content the peer was sent at `path`, if an entry is there.
  void SetHash(const std::string& path, const ContentHash& hash);
  // Directory metadata that must be compared afresh.
  void ForgetDirTime(const std::string& dir);
  void Erase(const std::string& path);
  // `path` and everything beneath it; or only what is beneath it.
  void EraseSubtree(const std::string& path);
  void EraseBeneath(const std::string& path);
  // Takes `path` and everything beneath it out of the map, in path order.
  std::vector<Entry> TakeSubtree(const std::string& path);

  // Every path with its type, in path order; or only those strictly beneath `dir`. `visit`
  // must not change the map.
  void ForEachPath(const std::function<void(const std::string&, FileType)>& visit) const;
  void ForEachBeneath(const std::string& dir,
                      const std::function<void(const std::string&, FileType)>& visit) const;
  // Every entry, made one at a time, in path order.
  void ForEach(const std::function<void(const Entry&)>& visit) const;

 private:
  struct Record {
    uint64_t size = 0;
    int64_t mtime_sec = 0;
    uint64_t hash_high = 0, hash_low = 0;
    uint32_t mtime_nsec = 0;
    uint32_t uid = 0, gid = 0;
    uint32_t user = 0, group = 0;  // Interned names.
    uint16_t mode = 0;
    FileType type = FileType::kFile;
    uint8_t flags = 0;
  };
  static constexpr uint8_t kHasHash = 1, kHasExtra = 2, kErased = 4;
  // A record of the sorted array, its path in paths_.
  struct Slot {
    uint32_t offset = 0, length = 0;
    Record r;
  };
  // What few entries carry.
  struct Extra {
    std::string link_target;
    uint64_t rdev = 0;
    Xattrs xattrs;
  };
  uint32_t Intern(const std::string& name);
  void Store(Record& r, const std::string& path, const Entry& e);
  Entry Make(const std::string& path, const Record& r) const;
  std::string_view PathOf(const Slot& s) const { return {paths_.data() + s.offset, s.length}; }
  // The live record at `path`, or null.
  Record* Lookup(std::string_view path);
  const Record* Lookup(std::string_view path) const;
  // The array's slot at `path`, erased or not; base_.size() if none.
  size_t BaseIndex(std::string_view path) const;
  void Append(std::vector<Slot>& slots, std::string& paths, std::string_view path, const Record& r) const;
  void MaybeCompact();
  // Calls visit(path, record) for every live record at `path` and beneath it (with
  // `self`) or strictly beneath it, in path order.
  void Walk(const std::string& path, bool self,
            const std::function<void(const std::string&, const Record&)>& visit) const;

  std::vector<Slot> base_;
  std::string paths_;  // The array's paths, end to end.
  size_t dead_ = 0;    // Erased slots of the array.
  std::map<std::string, Record, std::less<>> added_;
  std::unordered_map<std::string, Extra> extras_;
  std::vector<std::string> names_{""};
  std::unordered_map<std::string, uint32_t> name_index_{{"", 0}};
  uint32_t last_name_ = 0;  // The name interned last.
};

}  // namespace syncd
