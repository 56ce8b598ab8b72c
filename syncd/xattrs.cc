#include "syncd/xattrs.h"

#include <sys/xattr.h>

#include <algorithm>
#include <cerrno>

namespace syncd {
namespace {

constexpr std::string_view kAclAccess = "system.posix_acl_access";
constexpr std::string_view kAclDefault = "system.posix_acl_default";

// The four calls of one kind: on a descriptor, on a path, or on a symlink itself.
struct Calls {
  int fd = -1;
  const char* path = nullptr;
  bool follow = true;

  ssize_t List(char* buf, size_t size) const {
    if (fd >= 0) return ::flistxattr(fd, buf, size);
    return follow ? ::listxattr(path, buf, size) : ::llistxattr(path, buf, size);
  }
  ssize_t Get(const char* name, void* buf, size_t size) const {
    if (fd >= 0) return ::fgetxattr(fd, name, buf, size);
    return follow ? ::getxattr(path, name, buf, size) : ::lgetxattr(path, name, buf, size);
  }
  int Set(const char* name, const std::string& value) const {
    if (fd >= 0) return ::fsetxattr(fd, name, value.data(), value.size(), 0);
    return follow ? ::setxattr(path, name, value.data(), value.size(), 0)
                  : ::lsetxattr(path, name, value.data(), value.size(), 0);
  }
  int Remove(const char* name) const {
    if (fd >= 0) return ::fremovexattr(fd, name);
    return follow ? ::removexattr(path, name) : ::lremovexattr(path, name);
  }
  std::string Where() const { return path ? std::string(path) : "fd " + std::to_string(fd); }
};

bool Unsupported(int err) { return err == ENOTSUP || err == ENOSYS; }

Result<Xattrs> Read(const Calls& c, const XattrScope& scope) {
  Xattrs out;
  std::string names;
  for (;;) {  // The list may grow between asking its size and reading it.
    ssize_t n = c.List(nullptr, 0);
    if (n < 0) {
      if (Unsupported(errno)) return out;
      return FailErrno("listxattr " + c.Where());
    }
    names.resize(static_cast<size_t>(n));
    n = c.List(names.data(), names.size());
    if (n >= 0) {
      names.resize(static_cast<size_t>(n));
      break;
    }
    if (errno != ERANGE) return FailErrno("listxattr " + c.Where());
  }
  for (size_t start = 0; start < names.size();) {
    size_t end = names.find('\0', start);
    if (end == std::string::npos) end = names.size();
    std::string name = names.substr(start, end - start);
    start = end + 1;
    if (name.empty() || !scope.Carries(name)) continue;
    std::string value;
    for (;;) {
      ssize_t n = c.Get(name.c_str(), nullptr, 0);
      if (n < 0) break;  // Removed meanwhile.
      value.resize(static_cast<size_t>(n));
      n = c.Get(name.c_str(), value.data(), value.size());
      if (n >= 0) {
        value.resize(static_cast<size_t>(n));
        out.emplace_back(std::move(name), std::move(value));
        break;
      }
      if (errno != ERANGE) break;
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<void> Write(const Calls& c, const Xattrs& want, const XattrScope& scope) {
  auto have = Read(c, scope);
  if (!have) return std::unexpected(have.error());
  for (const auto& [name, value] : *have) {
    bool kept = std::any_of(want.begin(), want.end(), [&](const auto& w) { return w.first == name; });
    if (!kept && c.Remove(name.c_str()) != 0 && errno != ENODATA)
      return FailErrno("removexattr " + name + " on " + c.Where());
  }
  for (const auto& [name, value] : want) {
    if (!scope.Carries(name)) continue;
    auto it = std::find_if(have->begin(), have->end(), [&](const auto& h) { return h.first == name; });
    if (it != have->end() && it->second == value) continue;
    if (c.Set(name.c_str(), value) != 0) return FailErrno("setxattr " + name + " on " + c.Where());
  }
  return {};
}

}  // namespace

bool XattrScope::Carries(std::string_view name) const {
  if (name == kAclAccess || name == kAclDefault) return acls;
  if (!xattrs || name.starts_with("system.")) return false;
  return !user_only || name.starts_with("user.");
}

Result<Xattrs> ReadXattrs(const std::string& path, const XattrScope& scope, XattrLookup lookup) {
  if (!scope.any()) return Xattrs{};
  return Read(Calls{-1, path.c_str(), lookup == XattrLookup::kFollow}, scope);
}

Result<Xattrs> ReadXattrsFd(int fd, const XattrScope& scope) {
  if (!scope.any()) return Xattrs{};
  return Read(Calls{fd, nullptr, true}, scope);
}

Result<void> WriteXattrs(const std::string& path, const Xattrs& want, const XattrScope& scope,
                         XattrLookup lookup) {
  if (!scope.any()) return {};
  return Write(Calls{-1, path.c_str(), lookup == XattrLookup::kFollow}, want, scope);
}

Result<void> WriteXattrsFd(int fd, const Xattrs& want, const XattrScope& scope) {
  if (!scope.any()) return {};
  return Write(Calls{fd, nullptr, true}, want, scope);
}

}  // namespace syncd
