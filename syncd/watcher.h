// Watcher turns inotify into change notices for one sync root. It watches directories only,
// recursively (one watch per directory); a new or moved-in directory is watched first and then
// crawled, so files created before the watch existed are still reported.
#pragma once

#include <sys/inotify.h>
#include <uv.h>

#include <functional>
#include <string>
#include <unordered_map>

#include "syncd/config.h"
#include "syncd/error.h"
#include "syncd/filter.h"
#include "syncd/uv_handle.h"

namespace syncd {

struct FsEvent {
  enum class Kind {
    kChanged,   // Something at `path` may differ now; look at it.
    kMoved,     // `from` was renamed to `path`, both inside the tree.
    kWritten,   // `path` was written to; a close (kChanged) may follow, or may not.
    kOverflow,  // The kernel queue overflowed: events were lost, rescan everything.
    kRootGone,  // The sync root was deleted, moved or unmounted.
  };
  // What happened, as lsyncd names it; only a watcher made with EventStyle::kLsyncd says.
  enum class Etype { kNone, kCreate, kModify, kAttrib, kDelete, kMove };
  Kind kind = Kind::kChanged;
  std::string path;  // Relative to the root; "" is the root.
  std::string from;     // kMoved only.
  bool is_dir = false;  // kMoved (a directory moved, with everything beneath it), or kLsyncd style.
  Etype etype = Etype::kNone;
};

// How a watcher reports. kSyncd: what the replication needs (a path to look at; a file once
// written and closed). kLsyncd: every event as lsyncd 2.2.3 reports it to custom layers
// (Create on IN_CREATE, Modify on a close after writing, Attrib, Delete, Move; a rename half
// whose other half is outside the tree or excluded is a Delete or a Create; what a new
// directory holds is reported as Creates).
enum class EventStyle { kSyncd, kLsyncd };

class Watcher {
 public:
  using Handler = std::function<void(const FsEvent&)>;
  virtual ~Watcher() = default;
  // Sets up every watch beneath the root; events flow to the handler afterwards.
  [[nodiscard]] virtual Result<void> Start(Handler handler) = 0;
  virtual void Stop() = 0;
  // Reads and reports whatever the kernel has queued so far.
  virtual void ReadQueued() = 0;
  // Kernel events read so far, for statistics.
  virtual uint64_t events_read() const = 0;
  // Directories watched now.
  virtual size_t watch_count() const = 0;
  // Entries of the tree seen by the walks that set the watches: about the tree's size.
  virtual uint64_t entries_seen() const { return 0; }
};

class InotifyWatcher : public Watcher {
 public:
  // `loop` must outlive the watcher. Runs on the loop thread.
  // With `one_file_system` (rsync -x), directories on another filesystem are not watched.
  InotifyWatcher(uv_loop_t* loop, std::string root, Filter filter, InotifyMode mode,
                 bool one_file_system = false, EventStyle style = EventStyle::kSyncd);
  ~InotifyWatcher() override;

  Result<void> Start(Handler handler) override;
  void Stop() override;
  void ReadQueued() override { Drain(); }
  uint64_t events_read() const override { return events_read_; }
  size_t watch_count() const override { return paths_.size(); }
  // Directories listed so far (at startup, for new directories, after an overflow).
  uint64_t dirs_listed() const { return dirs_listed_; }
  uint64_t entries_seen() const override { return entries_seen_; }

 private:
  static void OnPoll(uv_poll_t* handle, int status, int events) noexcept;
  void Drain();
  void Handle(const ::inotify_event& ev);
  // Why a watch could not be set (ENOSPC): how many the tree needs and how to raise the limit.
  std::string OutOfWatches(const std::string& where) const;
  // Adds watches for `rel` and every directory beneath it. With `report` (a directory that
  // appeared while running) each entry found is reported, and a directory already watched
  // under its name is not listed again: it was listed when its watch was set, and whatever
  // appeared in it since has its own event. Without (startup, a queue overflow) every
  // directory is listed.
  Result<void> WatchTree(const std::string& rel, bool report);
  void Unwatch(const std::string& rel);
  // Watches at and beneath `from` now describe `to` (a directory renamed inside the tree);
  // false if `from` itself had no watch.
  bool Repath(const std::string& from, const std::string& to);
  // The same for the directory a rename just moved to `to`, found by its inode rather than
  // by `from`; false if it has no watch yet.
  bool RepathMoved(const std::string& from, const std::string& to);
  // A rename's first half whose second half did not follow: the path left the tree.
  void FlushUnpairedMoves();
  void Emit(FsEvent::Kind kind, std::string path);
  // kLsyncd style: one event of a directory's entry.
  void HandleAsLsyncd(const ::inotify_event& ev, const std::string& rel, bool is_dir);
  void EmitLsyncd(FsEvent::Etype etype, std::string path, bool is_dir, std::string from = {});

  uv_loop_t* loop_;
  std::string root_;
  Filter filter_;
  InotifyMode mode_;
  bool one_file_system_ = false;
  EventStyle style_ = EventStyle::kSyncd;
  dev_t root_dev_ = 0;
  Handler handler_;
  int fd_ = -1;
  UvHandle<uv_poll_t> poll_;
  std::unordered_map<int, std::string> paths_;  // wd -> directory, relative to the root.
  int root_wd_ = -1;
  uint64_t events_read_ = 0;
  uint64_t dirs_listed_ = 0;
  uint64_t entries_seen_ = 0;
  struct MoveHalf {
    std::string path;
    bool is_dir;
    bool excluded = false;  // kLsyncd style: the origin is excluded.
  };
  std::unordered_map<uint32_t, MoveHalf> moves_;  // IN_MOVED_FROM by cookie, awaiting its pair.
};

}  // namespace syncd
