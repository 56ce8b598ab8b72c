#include "syncd/meta_mapping.h"

#include <fmt/format.h>
#include <fnmatch.h>

#include <charconv>

namespace syncd {
namespace {

std::optional<uint32_t> Number(std::string_view s) {
  uint32_t v = 0;
  if (s.empty()) return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

Result<IdMap> IdMap::Parse(std::string_view spec) {
  IdMap map;
  size_t start = 0;
  while (true) {
    size_t comma = spec.find(',', start);
    std::string_view item = spec.substr(start, comma == std::string_view::npos
                                                   ? std::string_view::npos : comma - start);
    size_t colon = item.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == item.size())
      return Fail(fmt::format("\"{}\" in \"{}\" is not FROM:TO", item, spec), EINVAL);
    std::string_view from = item.substr(0, colon), to = item.substr(colon + 1);
    Rule r;
    size_t dash = from.find('-');
    if (auto id = Number(from)) {
      r.low = r.high = *id;
    } else if (auto low = Number(from.substr(0, dash)), high = dash == std::string_view::npos
                                                                 ? std::nullopt
                                                                 : Number(from.substr(dash + 1));
               low && high) {
      if (*low > *high) return Fail(fmt::format("\"{}\": an empty id range", item), EINVAL);
      r.low = *low;
      r.high = *high;
    } else {
      r.pattern = std::string(from);
    }
    if (auto id = Number(to)) r.to_id = *id;
    else r.to_name = std::string(to);
    map.rules_.push_back(std::move(r));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return map;
}

bool IdMap::Apply(std::string& name, uint32_t& id) const {
  for (const Rule& r : rules_) {
    bool match = r.pattern.empty() ? (id >= r.low && id <= r.high)
                                   : (r.pattern == "*" ||
                                      (!name.empty() && ::fnmatch(r.pattern.c_str(), name.c_str(), 0) == 0));
    if (!match) continue;
    if (r.to_name.empty()) {
      id = r.to_id;
      name.clear();  // The standby takes the number as it is.
    } else {
      // Resolved on the standby, as rsync's receiver does. The source's id says nothing about
      // it: -1 compares unequal to any id the standby had from a number, and if the standby
      // has no such name, chown(-1) leaves the owner as it is.
      name = r.to_name;
      id = static_cast<uint32_t>(-1);
    }
    return true;
  }
  return false;
}

Result<std::pair<std::string, std::string>> ChownMaps(std::string_view spec) {
  size_t colon = spec.find(':');
  if (colon != std::string_view::npos && spec.find(':', colon + 1) != std::string_view::npos)
    return Fail(fmt::format("\"{}\" is not USER:GROUP", spec), EINVAL);
  std::string_view user = spec.substr(0, colon);
  std::string_view group = colon == std::string_view::npos ? "" : spec.substr(colon + 1);
  if (user.empty() && group.empty())
    return Fail(fmt::format("\"{}\" names neither a user nor a group", spec), EINVAL);
  return std::pair{user.empty() ? "" : "*:" + std::string(user),
                   group.empty() ? "" : "*:" + std::string(group)};
}

Result<MetaMapping> MetaMapping::For(const RsyncOptions& o, uint32_t umask) {
  MetaMapping m;
  auto chmod = ChmodRules::Parse(o.chmod, umask);
  if (!chmod) return std::unexpected(chmod.error());
  m.chmod_ = std::move(*chmod);
  if (o.usermap) {
    auto users = IdMap::Parse(*o.usermap);
    if (!users) return Fail("usermap: " + users.error().message, EINVAL);
    m.users_ = std::move(*users);
  }
  if (o.groupmap) {
    auto groups = IdMap::Parse(*o.groupmap);
    if (!groups) return Fail("groupmap: " + groups.error().message, EINVAL);
    m.groups_ = std::move(*groups);
  }
  m.numeric_ = o.numeric_ids;
  return m;
}

void MetaMapping::Apply(Entry& e) const {
  // rsync leaves a symbolic link's mode alone.
  if (!chmod_.empty() && e.type != FileType::kSymlink)
    e.meta.mode = chmod_.Apply(e.meta.mode, e.type == FileType::kDir);
  if (numeric_) {
    e.meta.user.clear();
    e.meta.group.clear();
  }
  users_.Apply(e.meta.user, e.meta.uid);
  groups_.Apply(e.meta.group, e.meta.gid);
}

}  // namespace syncd
