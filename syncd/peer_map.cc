#include "syncd/peer_map.h"

namespace syncd {

PeerMap::PeerMap(Listing&& listing) {
  for (Entry& e : listing) {
    Set(e);
    e = Entry();  // Freed as it goes: the listing and the map are not held twice.
  }
  listing.clear();
  listing.shrink_to_fit();
}

uint32_t PeerMap::Intern(const std::string& name) {
  auto [it, added] = name_index_.emplace(name, static_cast<uint32_t>(names_.size()));
  if (added) names_.push_back(name);
  return it->second;
}

void PeerMap::Store(Record& r, const std::string& path, const Entry& e) {
  r.size = e.size;
  r.mtime_sec = e.meta.mtime_sec;
  r.mtime_nsec = e.meta.mtime_nsec;
  r.uid = e.meta.uid;
  r.gid = e.meta.gid;
  r.user = Intern(e.meta.user);
  r.group = Intern(e.meta.group);
  r.mode = static_cast<uint16_t>(e.meta.mode & 07777);
  r.type = e.type;
  r.flags = 0;
  if (e.hash) {
    r.flags |= kHasHash;
    r.hash_high = e.hash->high;
    r.hash_low = e.hash->low;
  }
  if (!e.link_target.empty() || e.rdev != 0 || !e.meta.xattrs.empty()) {
    r.flags |= kHasExtra;
    extras_[path] = Extra{e.link_target, e.rdev, e.meta.xattrs};
  } else {
    extras_.erase(path);
  }
}

Entry PeerMap::Make(const std::string& path, const Record& r) const {
  Entry e;
  e.path = path;
  e.type = r.type;
  e.size = r.size;
  e.meta.mode = r.mode;
  e.meta.uid = r.uid;
  e.meta.gid = r.gid;
  e.meta.user = names_[r.user];
  e.meta.group = names_[r.group];
  e.meta.mtime_sec = r.mtime_sec;
  e.meta.mtime_nsec = r.mtime_nsec;
  if (r.flags & kHasHash) e.hash = ContentHash{r.hash_high, r.hash_low};
  if (r.flags & kHasExtra) {
    if (auto it = extras_.find(path); it != extras_.end()) {
      e.link_target = it->second.link_target;
      e.rdev = it->second.rdev;
      e.meta.xattrs = it->second.xattrs;
    }
  }
  return e;
}

std::optional<Entry> PeerMap::Find(const std::string& path) const {
  auto it = records_.find(path);
  if (it == records_.end()) return std::nullopt;
  return Make(it->first, it->second);
}

std::optional<FileType> PeerMap::TypeOf(const std::string& path) const {
  auto it = records_.find(path);
  if (it == records_.end()) return std::nullopt;
  return it->second.type;
}

void PeerMap::Set(const Entry& entry) { Store(records_[entry.path], entry.path, entry); }

bool PeerMap::SetMeta(const std::string& path, const Meta& meta) {
  auto it = records_.find(path);
  if (it == records_.end()) return false;
  Entry e = Make(path, it->second);
  e.meta = meta;
  Store(it->second, path, e);
  return true;
}

void PeerMap::SetHash(const std::string& path, const ContentHash& hash) {
  auto it = records_.find(path);
  if (it == records_.end()) return;
  it->second.flags |= kHasHash;
  it->second.hash_high = hash.high;
  it->second.hash_low = hash.low;
}

void PeerMap::ForgetDirTime(const std::string& dir) {
  if (auto it = records_.find(dir); it != records_.end()) it->second.mtime_sec = INT64_MIN;
}

void PeerMap::Erase(const std::string& path) {
  auto it = records_.find(path);
  if (it == records_.end()) return;
  if (it->second.flags & kHasExtra) extras_.erase(path);
  records_.erase(it);
}

void PeerMap::EraseSubtree(const std::string& path) {
  Erase(path);
  std::string prefix = path.empty() ? "" : path + "/";
  auto it = records_.lower_bound(prefix);
  if (path.empty() && it != records_.end() && it->first.empty()) ++it;
  while (it != records_.end() && it->first.starts_with(prefix)) {
    if (it->second.flags & kHasExtra) extras_.erase(it->first);
    it = records_.erase(it);
  }
}

std::vector<Entry> PeerMap::TakeSubtree(const std::string& path) {
  std::vector<Entry> out;
  if (auto it = records_.find(path); it != records_.end()) out.push_back(Make(it->first, it->second));
  std::string prefix = path.empty() ? "" : path + "/";
  auto it = records_.lower_bound(prefix);
  if (path.empty() && it != records_.end() && it->first.empty()) ++it;
  for (; it != records_.end() && it->first.starts_with(prefix); ++it) out.push_back(Make(it->first, it->second));
  EraseSubtree(path);
  return out;
}

void PeerMap::ForEachPath(const std::function<void(const std::string&, FileType)>& visit) const {
  for (const auto& [path, r] : records_) visit(path, r.type);
}

void PeerMap::ForEachBeneath(const std::string& dir,
                             const std::function<void(const std::string&, FileType)>& visit) const {
  std::string prefix = dir.empty() ? "" : dir + "/";
  auto it = records_.lower_bound(prefix);
  if (dir.empty() && it != records_.end() && it->first.empty()) ++it;
  for (; it != records_.end() && it->first.starts_with(prefix); ++it) visit(it->first, it->second.type);
}

void PeerMap::ForEach(const std::function<void(const Entry&)>& visit) const {
  for (const auto& [path, r] : records_) visit(Make(path, r));
}

}  // namespace syncd
