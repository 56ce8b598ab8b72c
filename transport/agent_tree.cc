// Agent, continued: directories, links, special files, deletions, renames and metadata.
#include "transport/agent.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "syncd/change.h"
#include "syncd/log.h"

namespace syncd::transport {

bool Agent::OnMkdir(Decoder& d) {
  parents_.clear();  // A directory may move or go: cached descriptors could mislead.
  uint64_t seq = d.U64();
  std::string path = d.Str(kMaxPath);
  Meta meta = d.MetaField(xattrs_);
  if (!d.done()) return Fatal("malformed MKDIR");
  dirty_ = true;
  std::string name;
  auto dir = target_->OpenParent(path, &name);
  if (!dir) return Failed(seq, dir.error(), path), true;
  if (name.empty()) return Failed(seq, Error{"cannot create the target itself", EEXIST}, path), true;
  // Without kept permissions the kernel applies the umask (or a default ACL) to the source's
  // bits, and a parent's setgid bit, as for rsync --no-perms.
  if (::mkdirat(dir->get(), name.c_str(), policy_.perms ? 0700 : (meta.mode & 0777)) != 0) {
    struct stat st;
    if (errno != EEXIST || ::fstatat(dir->get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISDIR(st.st_mode))
      return Failed(seq, Error::FromErrno("mkdir " + path), path), true;
  }
  if (auto r = target_->ApplyMeta(dir->get(), name, meta, policy_, /*skip_times=*/true); !r)
    return Failed(seq, r.error(), path), true;
  // Its mtime changes as entries are created inside; it is set at COMMIT.
  if (policy_.times && policy_.dir_times) dir_times_.push_back(DirTime{path, meta});
  return true;
}

void Agent::MakeInPlace(uint64_t seq, const std::string& path, const Meta& meta,
                        const char* what, const std::function<int(int, const char*)>& make) {
  std::string name;
  auto dir = target_->OpenParent(path, &name);
  if (!dir) return Failed(seq, dir.error(), path);
  if (name.empty()) return Failed(seq, Error{"cannot replace the target itself", EINVAL}, path);
  std::string temp = TargetDir::NewTempName();
  if (make(dir->get(), temp.c_str()) != 0)
    return Failed(seq, Error::FromErrno(std::string(what) + " " + path), path);
  auto meta_ok = target_->ApplyMeta(dir->get(), temp, meta, policy_);
  if (meta_ok) meta_ok = KeepReplaced(dir->get(), name, path);
  if (!meta_ok || ::renameat(dir->get(), temp.c_str(), dir->get(), name.c_str()) != 0) {
    Error e = meta_ok ? Error::FromErrno("rename " + path) : meta_ok.error();
    ::unlinkat(dir->get(), temp.c_str(), 0);
    Failed(seq, e, path);
  }
}

bool Agent::OnSymlink(Decoder& d) {
  parents_.clear();  // A directory may move or go: cached descriptors could mislead.
  uint64_t seq = d.U64();
  std::string path = d.Str(kMaxPath);
  std::string link = d.Str(kMaxPath);
  Meta meta = d.MetaField(xattrs_);
  if (!d.done() || link.find('\0') != std::string::npos) return Fatal("malformed SYMLINK");
  dirty_ = true;
  MakeInPlace(seq, path, meta, "symlink",
              [&](int dir, const char* temp) { return ::symlinkat(link.c_str(), dir, temp); });
  return true;
}

bool Agent::OnMknod(Decoder& d) {
  parents_.clear();  // A directory may move or go: cached descriptors could mislead.
  uint64_t seq = d.U64();
  std::string path = d.Str(kMaxPath);
  auto type = static_cast<FileType>(d.U8());
  uint64_t rdev = d.U64();
  Meta meta = d.MetaField(xattrs_);
  if (!d.done() || !(IsSpecial(type) || IsDevice(type))) return Fatal("malformed MKNOD");
  dirty_ = true;
  mode_t kind = type == FileType::kFifo         ? S_IFIFO
                : type == FileType::kSocket     ? S_IFSOCK
                : type == FileType::kCharDevice ? S_IFCHR
                                                : S_IFBLK;
  mode_t mode = policy_.perms ? 0600 : (meta.mode & 0777);
  auto dev = static_cast<dev_t>(IsDevice(type) ? rdev : 0);
  MakeInPlace(seq, path, meta, "mknod",
              [&](int dir, const char* temp) { return ::mknodat(dir, temp, kind | mode, dev); });
  return true;
}

bool Agent::OnLink(Decoder& d) {
  uint64_t seq = d.U64();
  std::string path = d.Str(kMaxPath);
  std::string target = d.Str(kMaxPath);
  if (!d.done()) return Fatal("malformed LINK");
  dirty_ = true;
  // At COMMIT, after the batch's files are in place: the target may be one of them.
  links_.push_back(Link{seq, std::move(path), std::move(target)});
  return true;
}

void Agent::MakeLinks() {
  for (const Link& l : links_) {
    std::string target_name, name;
    auto target_dir = target_->OpenParent(l.target, &target_name);
    if (!target_dir) {
      Failed(l.seq, target_dir.error(), l.path);
      continue;
    }
    auto dir = target_->OpenParent(l.path, &name);
    if (!dir) {
      Failed(l.seq, dir.error(), l.path);
      continue;
    }
    struct stat to, at;
    if (name.empty() || target_name.empty() ||
        ::fstatat(target_dir->get(), target_name.c_str(), &to, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISREG(to.st_mode)) {
      Failed(l.seq, Error{"cannot link " + l.path + " to " + l.target + ": not a file here", ENOENT},
             l.path);
      continue;
    }
    if (::fstatat(dir->get(), name.c_str(), &at, AT_SYMLINK_NOFOLLOW) == 0 &&
        at.st_dev == to.st_dev && at.st_ino == to.st_ino)
      continue;  // One file already (rename would do nothing and leave the temporary name).
    std::string temp = TargetDir::NewTempName();
    if (::linkat(target_dir->get(), target_name.c_str(), dir->get(), temp.c_str(), 0) != 0) {
      Failed(l.seq, Error::FromErrno("link " + l.path + " to " + l.target), l.path);
      continue;
    }
    if (auto kept = KeepReplaced(dir->get(), name, l.path); !kept) {
      Failed(l.seq, kept.error(), l.path);
      ::unlinkat(dir->get(), temp.c_str(), 0);
      continue;
    }
    if (::renameat(dir->get(), temp.c_str(), dir->get(), name.c_str()) != 0) {
      Failed(l.seq, Error::FromErrno("rename link into place " + l.path), l.path);
      ::unlinkat(dir->get(), temp.c_str(), 0);
    }
  }
  links_.clear();
}

bool Agent::OnDelete(Decoder& d) {
  parents_.clear();  // A directory may move or go: cached descriptors could mislead.
  uint64_t seq = d.U64();
  std::string path = d.Str(kMaxPath);
  if (!d.done()) return Fatal("malformed DELETE");
  dirty_ = true;
  std::string name;
  auto dir = target_->OpenParent(path, &name);
  if (!dir) {
    if (dir.error().code == ENOENT) return true;  // Parent gone: so is the path.
    return Failed(seq, dir.error(), path), true;
  }
  if (name.empty()) return Failed(seq, Error{"refusing to delete the target itself", EINVAL}, path), true;
  auto kept = TargetDir::Remove(dir->get(), name, path, protect_, backups_ ? &*backups_ : nullptr);
  if (!kept) return Failed(seq, kept.error(), path), true;
  if (kept->entries > 0)
    out_ += Encoder(MsgType::kKept).U64(seq).Str(path).U64(kept->entries).Str(kept->first).Finish();
  return true;
}

bool Agent::OnSetMeta(Decoder& d) {
  uint64_t seq = d.U64();
  std::string path = d.Str(kMaxPath);
  uint8_t type = d.U8();
  Meta meta = d.MetaField(xattrs_);
  if (!d.done()) return Fatal("malformed SET_META");
  dirty_ = true;
  std::string name;
  auto dir = target_->OpenParent(path, &name);
  if (!dir) return Failed(seq, dir.error(), path), true;
  bool is_dir = static_cast<FileType>(type) == FileType::kDir;
  if (auto r = target_->ApplyMeta(dir->get(), name, meta, policy_, /*skip_times=*/is_dir); !r)
    return Failed(seq, r.error(), path), true;
  if (is_dir && policy_.times && policy_.dir_times) dir_times_.push_back(DirTime{path, meta});
  return true;
}

bool Agent::OnRename(Decoder& d) {
  parents_.clear();  // A directory may move or go: cached descriptors could mislead.
  uint64_t seq = d.U64();
  std::string from = d.Str(kMaxPath);
  std::string to = d.Str(kMaxPath);
  if (!d.done()) return Fatal("malformed RENAME");
  dirty_ = true;
  std::string from_name, to_name;
  auto from_dir = target_->OpenParent(from, &from_name);
  if (!from_dir) return Failed(seq, from_dir.error(), from), true;
  auto to_dir = target_->OpenParent(to, &to_name);
  if (!to_dir) return Failed(seq, to_dir.error(), to), true;
  if (from_name.empty() || to_name.empty())
    return Failed(seq, Error{"cannot rename the target itself", EINVAL}, to), true;
  if (!policy_.perms) {
    // Without kept permissions, a file that replaces one keeps that one's mode, as rsync
    // --no-perms leaves it (a file saved through a temporary name and a rename).
    struct stat old, moving;
    if (::fstatat(to_dir->get(), to_name.c_str(), &old, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISREG(old.st_mode) &&
        ::fstatat(from_dir->get(), from_name.c_str(), &moving, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISREG(moving.st_mode))
      ::fchmodat(from_dir->get(), from_name.c_str(), old.st_mode & 07777, 0);
  }
  // A directory moved to a longer name must not make paths beneath it too long to list.
  if (to.size() > from.size()) {
    auto fits = TargetDir::Fits(from_dir->get(), from_name, kMaxPath - to.size() + from_name.size());
    if (!fits) return Failed(seq, fits.error(), from), true;
    if (!*fits)
      return Failed(seq, Error{"renaming " + from + " to " + to + " would make paths beneath it "
                               "longer than " + std::to_string(kMaxPath) + " bytes", ENAMETOOLONG}, to), true;
  }
  if (auto kept = KeepReplaced(to_dir->get(), to_name, to); !kept)
    return Failed(seq, kept.error(), to), true;
  if (::renameat(from_dir->get(), from_name.c_str(), to_dir->get(), to_name.c_str()) != 0)
    return Failed(seq, Error::FromErrno("rename " + from + " to " + to), to), true;
  return true;
}

}  // namespace syncd::transport
