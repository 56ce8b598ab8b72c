#include "syncd/watcher.h"

#include <dirent.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <vector>

#include "syncd/log.h"
#include "syncd/tree.h"

namespace syncd {
namespace {

constexpr uint32_t kBaseMask = IN_ATTRIB | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE |
                               IN_DELETE_SELF | IN_MOVE_SELF | IN_MOVED_FROM | IN_MOVED_TO |
                               IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK;

// IN_MODIFY is always watched: a bare mtime change (utimensat with atime omitted) reports
// nothing else. In CloseWrite mode it only marks the path as being written (see Batcher).
uint32_t MaskFor(InotifyMode mode) {
  if (mode == InotifyMode::kModify) return (kBaseMask & ~IN_CLOSE_WRITE) | IN_MODIFY;
  return kBaseMask | IN_MODIFY;
}

std::string Child(const std::string& dir, std::string_view name) {
  return dir.empty() ? std::string(name) : dir + "/" + std::string(name);
}

}  // namespace

InotifyWatcher::InotifyWatcher(uv_loop_t* loop, std::string root, Filter filter, InotifyMode mode,
                               bool one_file_system, EventStyle style)
    : loop_(loop), root_(std::move(root)), filter_(std::move(filter)), mode_(mode),
      one_file_system_(one_file_system), style_(style) {
  struct stat st;
  if (::stat(root_.c_str(), &st) == 0) root_dev_ = st.st_dev;
}

InotifyWatcher::~InotifyWatcher() { Stop(); }

Result<void> InotifyWatcher::Start(Handler handler) {
  handler_ = std::move(handler);
  fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd_ < 0) return FailErrno("inotify_init1");
  SYNCD_TRY(WatchTree("", false));
  auto* poll = new uv_poll_t;
  poll->data = this;
  int rc = uv_poll_init(loop_, poll, fd_);
  if (rc != 0) {
    delete poll;
    return Fail(std::string("uv_poll_init: ") + uv_strerror(rc));
  }
  poll_ = UvHandle<uv_poll_t>(poll);
  uv_poll_start(poll_.get(), UV_READABLE, &InotifyWatcher::OnPoll);
  LogDebug("Inotify", "watching {} directories under {}", paths_.size(), root_);
  return {};
}

void InotifyWatcher::Stop() {
  poll_.Reset();  // Before the descriptor it polls is closed.
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  paths_.clear();
}

void InotifyWatcher::OnPoll(uv_poll_t* handle, int status, int) noexcept {
  auto* self = static_cast<InotifyWatcher*>(handle->data);
  if (status < 0) {
    LogError("inotify poll on {}: {}", self->root_, uv_strerror(status));
    return;
  }
  self->Drain();
}

void InotifyWatcher::Drain() {
  // A large buffer drains a storm in few reads; the kernel queue is what overflows.
  alignas(inotify_event) static thread_local char buf[256 * 1024];
  while (fd_ >= 0) {
    ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) LogError("read inotify: {}", std::strerror(errno));
      break;
    }
    if (n == 0) break;
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      ++events_read_;
      Handle(*ev);
      p += sizeof(inotify_event) + ev->len;
    }
  }
  // The kernel queues both halves of a rename together; one still alone once the queue is
  // drained belongs to a path that left the tree.
  FlushUnpairedMoves();
}

void InotifyWatcher::Emit(FsEvent::Kind kind, std::string path) {
  if (handler_) handler_(FsEvent{kind, std::move(path), {}, false});
}

void InotifyWatcher::FlushUnpairedMoves() {
  auto moves = std::move(moves_);
  moves_.clear();
  for (auto& [cookie, half] : moves) {
    if (half.is_dir) Unwatch(half.path);
    if (style_ == EventStyle::kLsyncd) {
      if (!half.excluded) EmitLsyncd(FsEvent::Etype::kDelete, half.path, half.is_dir);
      continue;
    }
    Emit(FsEvent::Kind::kChanged, half.path);  // Gone from the tree: a delete.
  }
}

bool InotifyWatcher::RepathMoved(const std::string& from, const std::string& to) {
  // Which watch is the moved directory's is asked of the kernel (adding a watch to a watched
  // inode gives its descriptor back): by name alone, a directory made at the old name while
  // the events waited in the queue would take the new name in its place.
  int wd = inotify_add_watch(fd_, JoinPath(root_, to).c_str(), MaskFor(mode_));
  if (wd < 0) return Repath(from, to);  // Moved on or gone since: its next event says where.
  auto known = paths_.find(wd);
  if (known == paths_.end()) return false;  // Never watched: the caller watches the tree.
  std::string old = known->second;
  Repath(old, to);
  return true;
}

bool InotifyWatcher::Repath(const std::string& from, const std::string& to) {
  std::string prefix = from + "/";
  bool found = false;
  for (auto& [wd, path] : paths_) {
    if (path == from) {
      path = to;
      found = true;
    } else if (path.starts_with(prefix)) {
      path = to + path.substr(from.size());
    }
  }
  return found;
}

void InotifyWatcher::Handle(const inotify_event& ev) {
  if (ev.mask & IN_Q_OVERFLOW) {
    LogWarn("inotify queue overflowed under {}; rescanning", root_);
    // Lost events may include new directories: watch whatever is not watched yet (a watch
    // that exists is simply found again), then let the sync compare everything.
    moves_.clear();
    if (auto r = WatchTree("", false); !r) LogError("{}", r.error().message);
    Emit(FsEvent::Kind::kOverflow, "");
    return;
  }
  auto it = paths_.find(ev.wd);
  if (it == paths_.end()) return;  // A watch we already dropped.
  const std::string dir = it->second;
  if (ev.mask & IN_IGNORED) {
    paths_.erase(it);
    if (ev.wd == root_wd_) {
      root_wd_ = -1;
      Emit(FsEvent::Kind::kRootGone, "");
    }
    return;
  }
  if (ev.len == 0) {  // The watched directory itself.
    if (ev.wd == root_wd_ && (ev.mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT))) {
      Emit(FsEvent::Kind::kRootGone, "");
      return;
    }
    // Its parent reports it as an entry (lsyncd reports the entry too).
    if ((ev.mask & IN_ATTRIB) && style_ == EventStyle::kSyncd) Emit(FsEvent::Kind::kChanged, dir);
    return;
  }
  std::string rel = Child(dir, ev.name);
  bool is_dir = ev.mask & IN_ISDIR;
  if (style_ == EventStyle::kLsyncd) return HandleAsLsyncd(ev, rel, is_dir);
  if (filter_.Excluded(rel, is_dir)) {
    // Not sent, but its coming or going changed the directory's mtime, which is sent.
    if (ev.mask & (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO))
      Emit(FsEvent::Kind::kChanged, dir);
    return;
  }
  LogDebug("Inotify", "{:#x} {}", ev.mask, rel);
  if (ev.mask & IN_MOVED_FROM) {
    moves_[ev.cookie] = MoveHalf{rel, is_dir};
    return;
  }
  if (ev.mask & IN_MOVED_TO) {
    auto half = moves_.find(ev.cookie);
    if (half != moves_.end()) {
      std::string from = std::move(half->second.path);
      moves_.erase(half);
      // Same inodes, same watches: only the names changed. A directory renamed before its
      // IN_CREATE was handled has no watch yet (adding it found nothing at the old name):
      // it is watched now, under its new name, and what is inside it reported.
      bool watched = is_dir && RepathMoved(from, rel);
      if (handler_) handler_(FsEvent{FsEvent::Kind::kMoved, rel, from, is_dir});
      if (is_dir && !watched) {
        if (auto r = WatchTree(rel, true); !r) LogError("{}", r.error().message);
      }
      return;
    }
  }
  if (is_dir && (ev.mask & (IN_CREATE | IN_MOVED_TO))) {
    Emit(FsEvent::Kind::kChanged, rel);
    if (auto r = WatchTree(rel, true); !r) LogError("{}", r.error().message);
    return;
  }
  // In CloseWrite mode a write alone only marks the path; its close sends it.
  if (mode_ == InotifyMode::kCloseWrite && (ev.mask & IN_MODIFY) &&
      !(ev.mask & ~(IN_MODIFY | IN_ISDIR))) {
    Emit(FsEvent::Kind::kWritten, std::move(rel));
    return;
  }
  if ((ev.mask & IN_CREATE) && !is_dir) {
    // A regular file announces itself again with IN_CLOSE_WRITE once written; sending it on
    // IN_CREATE would ship a partial file. Links, hard links and specials only get IN_CREATE,
    // and a hard link whose other name is already gone (Maildir's link() then unlink())
    // looks like a new file: it is marked written, so it goes once quiet if no close comes.
    struct stat st;
    std::string abs = JoinPath(root_, rel);
    if (::lstat(abs.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1) {
      Emit(FsEvent::Kind::kWritten, std::move(rel));
      return;
    }
  }
  Emit(FsEvent::Kind::kChanged, std::move(rel));
}

void InotifyWatcher::EmitLsyncd(FsEvent::Etype etype, std::string path, bool is_dir, std::string from) {
  if (!handler_) return;
  FsEvent e{etype == FsEvent::Etype::kMove ? FsEvent::Kind::kMoved : FsEvent::Kind::kChanged,
            std::move(path), std::move(from), is_dir, etype};
  handler_(e);
}

void InotifyWatcher::HandleAsLsyncd(const inotify_event& ev, const std::string& rel, bool is_dir) {
  using E = FsEvent::Etype;
  bool excluded = filter_.Excluded(rel, is_dir);
  LogDebug("Inotify", "{:#x} {}{}", ev.mask, rel, excluded ? " (excluded)" : "");
  if (ev.mask & IN_MOVED_FROM) {
    moves_[ev.cookie] = MoveHalf{rel, is_dir, excluded};
    return;
  }
  if (ev.mask & IN_MOVED_TO) {
    auto half = moves_.find(ev.cookie);
    if (half != moves_.end()) {
      MoveHalf from = std::move(half->second);
      moves_.erase(half);
      bool watched = is_dir && !excluded && RepathMoved(from.path, rel);
      if (is_dir && excluded) Unwatch(from.path);
      // An excluded half turns the move into what the other half is (as lsyncd).
      if (!from.excluded && !excluded) EmitLsyncd(E::kMove, rel, is_dir, from.path);
      else if (!from.excluded) EmitLsyncd(E::kDelete, from.path, is_dir);
      else if (!excluded) EmitLsyncd(E::kCreate, rel, is_dir);
      if (is_dir && !excluded && !watched) {
        if (auto r = WatchTree(rel, true); !r) LogError("{}", r.error().message);
      }
      return;
    }
    if (excluded) return;
    EmitLsyncd(E::kCreate, rel, is_dir);
    if (is_dir) {
      if (auto r = WatchTree(rel, true); !r) LogError("{}", r.error().message);
    }
    return;
  }
  if (excluded) return;
  // One event per inotify record, in lsyncd's order of precedence.
  if (ev.mask & IN_ATTRIB) {
    EmitLsyncd(E::kAttrib, rel, is_dir);
  } else if ((ev.mask & IN_CLOSE_WRITE) ||
             ((ev.mask & IN_MODIFY) && mode_ != InotifyMode::kCloseWrite)) {
    EmitLsyncd(E::kModify, rel, is_dir);
  } else if (ev.mask & IN_CREATE) {
    EmitLsyncd(E::kCreate, rel, is_dir);
    if (is_dir) {
      if (auto r = WatchTree(rel, true); !r) LogError("{}", r.error().message);
    }
  } else if (ev.mask & IN_DELETE) {
    EmitLsyncd(E::kDelete, rel, is_dir);
  }
}

void InotifyWatcher::Unwatch(const std::string& rel) {
  std::string prefix = rel + "/";
  for (auto it = paths_.begin(); it != paths_.end();) {
    if (it->second == rel || it->second.starts_with(prefix)) {
      inotify_rm_watch(fd_, it->first);
      it = paths_.erase(it);
    } else {
      ++it;
    }
  }
}

std::string InotifyWatcher::OutOfWatches(const std::string& where) const {
  // One watch per directory: count them all, as the figure to ask for.
  uint64_t dirs = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(
           root_, std::filesystem::directory_options::skip_permission_denied, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) ++dirs;
  }
  ++dirs;  // The root.
  uint64_t limit = 0;
  // The limit of this user namespace; in the initial one it is fs.inotify.max_user_watches.
  if (FILE* f = std::fopen("/proc/sys/user/max_inotify_watches", "re")) {
    if (std::fscanf(f, "%" SCNu64, &limit) != 1) limit = 0;
    std::fclose(f);
  }
  uint64_t missing = dirs > paths_.size() ? dirs - paths_.size() : 1;
  uint64_t suggest = limit + 2 * missing;
  return fmt::format(
      "out of inotify watches at {}: this sync needs one per directory, {} in all, and got {} "
      "before the limit of {} watches per user (shared by every program of the user that "
      "watches files) ran out; raise it: sysctl -w fs.inotify.max_user_watches={} (and put "
      "fs.inotify.max_user_watches={} in /etc/sysctl.d/90-syncd.conf to keep it)",
      where, dirs, paths_.size(), limit, suggest, suggest);
}

Result<void> InotifyWatcher::WatchTree(const std::string& top, bool report) {
  uint32_t mask = MaskFor(mode_);
  std::vector<std::string> stack{top};
  while (!stack.empty()) {
    std::string rel = std::move(stack.back());
    stack.pop_back();
    std::string abs = JoinPath(root_, rel);
    if (one_file_system_ && !rel.empty()) {
      struct stat st;
      if (::lstat(abs.c_str(), &st) != 0 || st.st_dev != root_dev_) continue;  // A mount point.
    }
    // Watch first, then list: whatever appears after this call produces its own event.
    int wd = inotify_add_watch(fd_, abs.c_str(), mask);
    if (wd < 0) {
      if (errno == ENOSPC) return Fail(OutOfWatches(abs), ENOSPC);
      if (errno == ENOENT || errno == ENOTDIR) continue;  // Gone or replaced meanwhile.
      if (rel.empty()) return FailErrno("inotify_add_watch " + abs);
      LogWarn("inotify_add_watch {}: {}", abs, std::strerror(errno));
      continue;
    }
    auto [known, added] = paths_.try_emplace(wd, rel);
    if (!added) {
      // A tree made faster than its events are read is found whole by the first walk; each
      // level's own event would otherwise walk what is beneath it again.
      if (report && known->second == rel) continue;
      known->second = rel;
    }
    if (rel.empty()) root_wd_ = wd;
    std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(abs.c_str()), ::closedir);
    if (!d) continue;
    ++dirs_listed_;
    while (dirent* ent = ::readdir(d.get())) {
      std::string_view name = ent->d_name;
      if (name == "." || name == "..") continue;
      ++entries_seen_;
      // Only directories matter to a silent walk: a file of known type is not looked at.
      if (!report && ent->d_type != DT_DIR && ent->d_type != DT_UNKNOWN) continue;
      std::string child = Child(rel, name);
      bool is_dir = ent->d_type == DT_DIR;
      if (ent->d_type == DT_UNKNOWN) {
        struct stat st;
        is_dir = ::lstat(JoinPath(root_, child).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
      }
      if (filter_.Excluded(child, is_dir)) continue;
      if (is_dir) stack.push_back(child);
      if (report && style_ == EventStyle::kLsyncd)
        EmitLsyncd(FsEvent::Etype::kCreate, child, is_dir);
      else if (report)
        Emit(FsEvent::Kind::kChanged, child);
    }
  }
  return {};
}

}  // namespace syncd
