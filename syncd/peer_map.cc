#include "syncd/peer_map.h"

#include <algorithm>
#include <utility>

namespace syncd {

PeerMap::PeerMap(Listing&& listing) {
  // Sorted by path through an index (an Entry is large to move); a listing in path order
  // already (a manifest's, or a sorted walk) is taken as it comes.
  auto by_path = [&](uint32_t a, uint32_t b) { return listing[a].path < listing[b].path; };
  std::vector<uint32_t> order(listing.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  if (!std::is_sorted(order.begin(), order.end(), by_path))
    std::stable_sort(order.begin(), order.end(), by_path);
  base_.reserve(listing.size());
  size_t bytes = 0;
  for (const Entry& e : listing) bytes += e.path.size();
  paths_.reserve(bytes);
  for (uint32_t i : order) {
    Entry& e = listing[i];
    Record r;
    Store(r, e.path, e);
    if (!base_.empty() && PathOf(base_.back()) == e.path)
      base_.back().r = r;  // A path listed twice: the later one holds.
    else
      Append(base_, paths_, e.path, r);
    e = Entry();  // Freed as it goes: the listing and the map are not held twice.
  }
  listing.clear();
  listing.shrink_to_fit();
}

void PeerMap::Append(std::vector<Slot>& slots, std::string& paths, std::string_view path,
                     const Record& r) const {
  slots.push_back(Slot{static_cast<uint32_t>(paths.size()), static_cast<uint32_t>(path.size()), r});
  paths.append(path);
}

size_t PeerMap::BaseIndex(std::string_view path) const {
  auto it = std::lower_bound(base_.begin(), base_.end(), path,
                             [&](const Slot& s, std::string_view p) { return PathOf(s) < p; });
  if (it == base_.end() || PathOf(*it) != path) return base_.size();
  return static_cast<size_t>(it - base_.begin());
}

PeerMap::Record* PeerMap::Lookup(std::string_view path) {
  return const_cast<Record*>(std::as_const(*this).Lookup(path));
}

const PeerMap::Record* PeerMap::Lookup(std::string_view path) const {
  if (auto it = added_.find(path); it != added_.end()) return &it->second;
  size_t i = BaseIndex(path);
  if (i == base_.size() || (base_[i].r.flags & kErased)) return nullptr;
  return &base_[i].r;
}

void PeerMap::Compact() {
  if (added_.empty() && dead_ == 0) return;
  std::vector<Slot> slots;
  std::string paths;
  slots.reserve(size());
  size_t bytes = 0;
  for (const Slot& s : base_)
    if (!(s.r.flags & kErased)) bytes += s.length;
  for (const auto& [path, r] : added_) bytes += path.size();
  paths.reserve(bytes);
  auto added = added_.begin();
  for (const Slot& s : base_) {
    if (s.r.flags & kErased) continue;
    for (; added != added_.end() && added->first < PathOf(s); ++added)
      Append(slots, paths, added->first, added->second);
    Append(slots, paths, PathOf(s), s.r);
  }
  for (; added != added_.end(); ++added) Append(slots, paths, added->first, added->second);
  base_ = std::move(slots);
  paths_ = std::move(paths);
  added_.clear();
  dead_ = 0;
}

void PeerMap::MaybeCompact() {
  constexpr size_t kMinimum = 65536;
  if (added_.size() + dead_ > std::max(kMinimum, base_.size() / 2)) Compact();
}

uint32_t PeerMap::Intern(const std::string& name) {
  if (names_[last_name_] == name) return last_name_;  // Most entries share their owner.
  auto [it, added] = name_index_.emplace(name, static_cast<uint32_t>(names_.size()));
  if (added) names_.push_back(name);
  last_name_ = it->second;
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
  const Record* r = Lookup(path);
  if (!r) return std::nullopt;
  return Make(path, *r);
}

bool PeerMap::Contains(const std::string& path) const { return Lookup(path) != nullptr; }

std::optional<FileType> PeerMap::TypeOf(const std::string& path) const {
  const Record* r = Lookup(path);
  if (!r) return std::nullopt;
  return r->type;
}

void PeerMap::Set(const Entry& entry) {
  // Past the end of the array, with nothing added beside it: it grows in order (a manifest's
  // snapshot is read this way).
  if (added_.empty() && (base_.empty() || PathOf(base_.back()) < entry.path)) {
    Record r;
    Store(r, entry.path, entry);
    Append(base_, paths_, entry.path, r);
    return;
  }
  if (size_t i = BaseIndex(entry.path); i != base_.size()) {
    if (base_[i].r.flags & kErased) --dead_;
    Store(base_[i].r, entry.path, entry);  // Clears kErased with the other flags.
    return;
  }
  Store(added_[entry.path], entry.path, entry);
  MaybeCompact();
}

bool PeerMap::SetMeta(const std::string& path, const Meta& meta) {
  Record* r = Lookup(path);
  if (!r) return false;
  Entry e = Make(path, *r);
  e.meta = meta;
  Store(*r, path, e);
  return true;
}

void PeerMap::SetHash(const std::string& path, const ContentHash& hash) {
  Record* r = Lookup(path);
  if (!r) return;
  r->flags |= kHasHash;
  r->hash_high = hash.high;
  r->hash_low = hash.low;
}

void PeerMap::ForgetDirTime(const std::string& dir) {
  if (Record* r = Lookup(dir)) r->mtime_sec = INT64_MIN;
}

void PeerMap::Erase(const std::string& path) {
  if (auto it = added_.find(path); it != added_.end()) {
    if (it->second.flags & kHasExtra) extras_.erase(path);
    added_.erase(it);
    return;
  }
  size_t i = BaseIndex(path);
  if (i == base_.size() || (base_[i].r.flags & kErased)) return;
  if (base_[i].r.flags & kHasExtra) extras_.erase(path);
  base_[i].r.flags = kErased;
  ++dead_;
  MaybeCompact();
}

void PeerMap::EraseBeneath(const std::string& path) {
  if (added_.empty() && (base_.empty() || PathOf(base_.back()) < path)) return;  // Nothing is.
  std::vector<std::string> doomed;
  Walk(path, false, [&](const std::string& p, const Record&) { doomed.push_back(p); });
  for (const std::string& p : doomed) Erase(p);
}

void PeerMap::EraseSubtree(const std::string& path) {
  std::vector<std::string> doomed;
  Walk(path, true, [&](const std::string& p, const Record&) { doomed.push_back(p); });
  for (const std::string& p : doomed) Erase(p);
}

void PeerMap::Walk(const std::string& path, bool self,
                   const std::function<void(const std::string&, const Record&)>& visit) const {
  std::string prefix = path.empty() ? "" : path + "/";
  std::string current;
  auto added = added_.lower_bound(prefix);
  auto base = std::lower_bound(base_.begin(), base_.end(), std::string_view(prefix),
                               [&](const Slot& s, std::string_view p) { return PathOf(s) < p; });
  // Strictly beneath `path`; the root is never beneath anything.
  auto beneath = [&](std::string_view p) { return !p.empty() && p.starts_with(prefix); };
  if (const Record* r = self ? Lookup(path) : nullptr) visit(path, *r);
  if (added != added_.end() && added->first.empty()) ++added;
  if (base != base_.end() && PathOf(*base).empty()) ++base;
  while (true) {
    bool more_added = added != added_.end() && beneath(added->first);
    while (base != base_.end() && beneath(PathOf(*base)) && (base->r.flags & kErased)) ++base;
    bool more_base = base != base_.end() && beneath(PathOf(*base));
    if (!more_added && !more_base) break;
    if (more_added && (!more_base || added->first < PathOf(*base))) {
      visit(added->first, added->second);
      ++added;
    } else {
      current.assign(PathOf(*base));
      visit(current, base->r);
      ++base;
    }
  }
}

std::vector<Entry> PeerMap::TakeSubtree(const std::string& path) {
  std::vector<Entry> out;
  Walk(path, true, [&](const std::string& p, const Record& r) { out.push_back(Make(p, r)); });
  EraseSubtree(path);
  return out;
}

void PeerMap::ForEachPath(const std::function<void(const std::string&, FileType)>& visit) const {
  Walk("", true, [&](const std::string& p, const Record& r) { visit(p, r.type); });
}

void PeerMap::ForEachBeneath(const std::string& dir,
                             const std::function<void(const std::string&, FileType)>& visit) const {
  Walk(dir, false, [&](const std::string& p, const Record& r) { visit(p, r.type); });
}

void PeerMap::ForEach(const std::function<void(const Entry&)>& visit) const {
  Walk("", true, [&](const std::string& p, const Record& r) { visit(Make(p, r)); });
}

}  // namespace syncd
