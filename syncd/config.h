// The configuration as plain structs. lua/ fills them from the user's file; the core never
// sees Lua. Field comments give the lsyncd key each one comes from.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "syncd/xattrs.h"

namespace syncd {

enum class InotifyMode { kCloseWrite, kModify, kCloseWriteOrModify };

// `delete = true | false | 'startup' | 'running'`.
enum class DeleteMode { kAlways, kNever, kStartup, kRunning };

// Which symlinks in the source are sent as what they point at (rsync's -L and
// --copy-unsafe-links); the others go over as symlinks.
enum class FollowLinks { kNone, kAll, kUnsafe };

// Which lsyncd layer the sync{} inherits from.
enum class SyncKind { kRsyncSsh, kRsync, kDirect, kCustom };

class LayerProgram;  // syncd/sync_engine.h

struct RsyncOptions {
  // -a as a whole. The configuration reader spells it out into the flags below instead (an
  // explicit `perms = false` beside `archive = true` wins, as in lsyncd); code that builds a
  // SyncConfig may set it.
  bool archive = false;
  bool recursive = true;
  bool links = true;  // lsyncd's default rsync table: links, times, protect_args.
  bool times = true;
  bool perms = false;
  bool owner = false;
  bool group = false;
  bool devices = false;
  bool specials = false;
  bool prune_empty_dirs = false;
  bool compress = false;
  bool whole_file = false;
  bool checksum = false;
  bool delete_excluded = false;  // Excluded files on the peer are deleted too.
  bool hard_links = false;       // -H: names of one file stay one file on the peer.
  std::vector<std::string> chmod;  // --chmod values (rsync.chmod, _extra), in order.
  std::optional<std::string> usermap;   // --usermap (and --chown's user).
  std::optional<std::string> groupmap;  // --groupmap (and --chown's group).
  bool numeric_ids = false;             // Owners by number, not by name.
  // Transfer rules: which files are sent at all (rsync's -u, --existing, --ignore-existing,
  // --max-size, --min-size, --safe-links) and how a file is found changed (--size-only;
  // --checksum and --ignore-times compare every file's content at startup).
  bool update = false;
  bool existing = false;
  bool ignore_existing = false;
  std::optional<uint64_t> max_size;
  std::optional<uint64_t> min_size;
  bool safe_links = false;
  bool size_only = false;
  bool ignore_times = false;
  bool one_file_system = false;
  bool copy_links = false;         // -L: every symlink goes over as what it points at.
  bool copy_unsafe_links = false;  // Only symlinks leading out of the tree do.
  bool xattrs = false;             // -X: extended attributes (all namespaces but system.).
  bool acls = false;               // -A: POSIX ACLs (implies perms).
  bool omit_dir_times = false;     // -O: directories' times are neither compared nor set.
  bool omit_link_times = false;    // -J: nor symlinks'.
  // --backup, --backup-dir, --suffix: what a change replaces or deletes on the standby is kept
  // under NAME+suffix ("~" by default) beside it, or under backup_dir (suffix "" by default).
  bool backup = false;
  std::optional<std::string> backup_dir;
  std::optional<std::string> suffix;  // -x: a mount point inside the source goes over empty.
  std::optional<uint64_t> bwlimit;  // Bytes per second the client sends at most (--bwlimit).
  std::optional<std::string> rsh;  // --rsh / rsh = "...".
  bool operator==(const RsyncOptions&) const = default;
};

// How a sync reaches its peer over SSH: syncd's own client (libssh2), or a spawned OpenSSH
// client carrying the same protocol (for ProxyJump, ssh_config, RSA-SHA2 user keys, GSSAPI).
enum class SshCarrier {
  kAuto,     // libssh2; the OpenSSH client when ProxyJump/ProxyCommand is set or the server
             // refuses an RSA key that libssh2 can only sign with SHA-1.
  kLibssh2,  // Never the OpenSSH client.
  kOpenSsh,  // Always the OpenSSH client.
};

struct SshOptions {
  std::optional<std::string> binary;  // Set: the OpenSSH client to run (implies kOpenSsh).
  SshCarrier carrier = SshCarrier::kAuto;
  std::optional<std::string> identity_file;
  std::optional<int> port;
  std::map<std::string, std::string> options;  // -o Key=Value.
  std::vector<std::string> extra;               // _extra, verbatim.
  bool operator==(const SshOptions&) const = default;
};

struct SyncConfig {
  std::string name;  // "Sync1", ... unless set.
  SyncKind kind = SyncKind::kRsyncSsh;
  std::string source;  // Absolute, resolved, no trailing slash.
  // Remote peer. Empty host means a local target reached through a locally spawned agent.
  std::string host;  // [user@]host
  std::string target_dir;
  std::optional<double> delay;  // Seconds; nullopt means "send as soon as possible".
  int max_delays = 1000;
  // Seconds a deletion waits for deleting to pause (syncd's `deleteHold`): `rm -rf` of the
  // source root must not empty the standby before the root's own disappearance is seen.
  double delete_hold = 0.1;
  // rsync filter rules in canonical form (see syncd/filter.h), in the order they apply: filter
  // and filterFrom, then exclude and excludeFrom, then --filter/--exclude/--include in _extra.
  std::vector<std::string> filter_rules;
  DeleteMode delete_mode = DeleteMode::kAlways;
  bool init = true;
  RsyncOptions rsync;
  SshOptions ssh;
  InotifyMode inotify_mode = InotifyMode::kCloseWrite;  // From settings{inotifyMode}.
  std::string defined_at;  // "file:line", for messages.
  // The OpenSSH-style command the standby runs for the agent ("syncd --server", or with
  // rsync_path's prefix: "sudo syncd --server").
  std::string agent_command = "syncd --server";
  // From settings{}: where history is kept, and how much unseen history may be overwritten.
  std::string state_dir;
  double divergence_limit_s = 60;
  // Where the result differs from what lsyncd would give, or an option changes nothing:
  // one line each, for `syncd --check`.
  std::vector<std::string> notes;
  // kCustom: the configuration's custom layers (lsyncd's action, init, collect, on* keys),
  // which run the sync; `target` is then lsyncd's opaque target string. A reloaded
  // configuration has layers of its own, so such a sync always restarts on a reload.
  std::shared_ptr<const LayerProgram> layers;
  std::string layer_target;
  std::vector<std::string> layer_keys;  // The keys set by the configuration, for --check.
  bool operator==(const SyncConfig&) const = default;

  bool DeletesAtStartup() const {
    return delete_mode == DeleteMode::kAlways || delete_mode == DeleteMode::kStartup;
  }
  bool DeletesWhileRunning() const {
    return delete_mode == DeleteMode::kAlways || delete_mode == DeleteMode::kRunning;
  }
  // rsync -a implies these; the explicit keys turn them on one by one.
  bool KeepPerms() const { return rsync.archive || rsync.perms || rsync.acls; }
  bool KeepOwner() const { return rsync.archive || rsync.owner; }
  bool KeepGroup() const { return rsync.archive || rsync.group; }
  bool KeepTimes() const { return rsync.archive || rsync.times; }
  bool Backups() const { return rsync.backup || rsync.backup_dir.has_value(); }
  std::string BackupSuffix() const { return rsync.suffix.value_or(rsync.backup_dir ? "" : "~"); }
  // rsync: backups beside their files imply --omit-dir-times.
  bool KeepDirTimes() const {
    return KeepTimes() && !rsync.omit_dir_times && !(Backups() && !rsync.backup_dir);
  }
  bool KeepLinkTimes() const { return KeepTimes() && !rsync.omit_link_times; }
  bool KeepLinks() const { return rsync.archive || rsync.links; }
  bool KeepDevices() const { return rsync.archive || rsync.devices; }
  bool KeepSpecials() const { return rsync.archive || rsync.specials; }
  XattrScope Xattrs() const { return XattrScope{rsync.xattrs, rsync.acls, false}; }
  FollowLinks Follow() const {
    if (rsync.copy_links) return FollowLinks::kAll;
    return rsync.copy_unsafe_links ? FollowLinks::kUnsafe : FollowLinks::kNone;
  }
};

struct Settings {
  std::optional<std::string> logfile;
  std::optional<std::string> status_file;   // lsyncd's text report; JSON beside it (".json").
  std::optional<std::string> metrics_file;  // Prometheus text format (syncd's own setting).
  int status_interval = 10;  // Seconds.
  bool nodaemon = false;
  bool insist = false;
  std::optional<int> max_processes;
  std::optional<int> max_delays;
  std::optional<std::string> pidfile;
  std::string log_facility = "user";
  std::string log_ident = "syncd";
  InotifyMode inotify_mode = InotifyMode::kCloseWrite;
  // How long a clean stop (SIGTERM, SIGINT) waits for the peer to confirm what is pending.
  int stop_timeout_s = 30;
  // READY=1 once the watches are set, instead of once every startup comparison is durable on
  // the peer (for trees whose first copy takes longer than the unit's start timeout).
  bool ready_when_watching = false;
  // Where this node keeps the history of its trees (empty: DefaultStateDir()).
  std::string state_dir;
  // Unseen changes on the standby spanning more than this many seconds stop a sync from
  // overwriting them (see syncd/history.h).
  double divergence_limit_s = 60;
};

struct Config {
  std::string path;  // The file it was read from.
  Settings settings;
  std::vector<SyncConfig> syncs;
  std::vector<std::string> warnings;  // Things accepted but not used, e.g. unknown _extra flags.
};

}  // namespace syncd
