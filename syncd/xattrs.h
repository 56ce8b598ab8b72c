// Extended attributes and POSIX ACLs as metadata of an entry: which of them travel (rsync's
// -X and -A) and how they are read from and written to a file.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "syncd/error.h"
#include "syncd/tree.h"

namespace syncd {

// What travels. rsync's sender reads every namespace but `system.` with -X, and -A carries the
// POSIX ACLs, which Linux keeps as system.posix_acl_access and system.posix_acl_default. A
// receiver that is not root can only hold `user.` names (user_only).
struct XattrScope {
  bool xattrs = false;
  bool acls = false;
  bool user_only = false;
  bool any() const { return xattrs || acls; }
  bool Carries(std::string_view name) const;
  bool operator==(const XattrScope&) const = default;
};

// How a path is looked up: kNoFollow acts on a symlink itself (the l* calls), kFollow on what
// the path resolves to (also a /proc/self/fd/N path of an O_PATH descriptor).
enum class XattrLookup { kNoFollow, kFollow };

// The attributes in `scope` of `path` (or an open descriptor), sorted. A filesystem without
// extended attributes gives none.
Result<Xattrs> ReadXattrs(const std::string& path, const XattrScope& scope, XattrLookup lookup);
Result<Xattrs> ReadXattrsFd(int fd, const XattrScope& scope);

// Makes the attributes in `scope` of `path` (or `fd`) be `want`: names it lacks are set,
// other values replaced, names in scope that `want` does not hold removed.
Result<void> WriteXattrs(const std::string& path, const Xattrs& want, const XattrScope& scope,
                         XattrLookup lookup);
Result<void> WriteXattrsFd(int fd, const Xattrs& want, const XattrScope& scope);

}  // namespace syncd
