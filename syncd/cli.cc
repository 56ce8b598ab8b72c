#include "syncd/cli.h"
#include "syncd/history.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iterator>

#include "syncd/log.h"

namespace syncd {

const char kUsage[] =
    "Usage: syncd [OPTIONS] CONFIG     replicate as the Lua config file says\n"
    "       syncd [OPTIONS] -rsync SOURCE TARGET\n"
    "       syncd [OPTIONS] -rsyncssh SOURCE HOST TARGETDIR\n"
    "       syncd [OPTIONS] -direct SOURCE TARGETDIR\n"
    "                                  replicate without a config file, as lsyncd's layers\n"
    "                                  default.rsync, default.rsyncssh and default.direct\n"
    "                                  (each may be given more than once)\n"
    "       syncd --check CONFIG       validate CONFIG and print the effective settings\n"
    "       syncd status CONFIG        print the status report of the syncd running CONFIG\n"
    "                                  (needs settings.statusFile)\n"
    "       syncd flush [-timeout S] CONFIG\n"
    "                                  wait until every change made so far is durable on the\n"
    "                                  standby (at most S seconds, 60 by default)\n"
    "       syncd adopt CONFIG         for the syncs that found the standby diverged: bring\n"
    "                                  the standby's newer files here, then go on\n"
    "       syncd overwrite CONFIG     for the syncs that found the standby diverged: make\n"
    "                                  the standby a copy of this node's tree all the same\n"
    "       syncd --server [--root DIR]... [--state-dir DIR]\n"
    "                                  run the receiving agent on stdin/stdout (used over SSH);\n"
    "                                  with --root, it writes only in or beneath those DIRs;\n"
    "                                  its trees' history is kept in the state directory\n"
    "                                  (/var/lib/syncd for root)\n"
    "\n"
    "Options (one or two dashes, as lsyncd):\n"
    "  -nodaemon          stay in the foreground and log to stderr\n"
    "  -log all|scarce|CATEGORY\n"
    "                     more logging: all categories, errors only, or one category\n"
    "                     (Inotify, Delay, Transport); may be repeated\n"
    "  -logfile FILE      log to FILE (settings.logfile)\n"
    "  -pidfile FILE      write the process id to FILE (settings.pidfile)\n"
    "  -insist            keep retrying an unreachable peer at startup (settings.insist)\n"
    "  -delay SECONDS     override the delay of every sync\n"
    "  -sshopts \"OPTS\"    ssh options (-p, -i, -o ...) for the -rsyncssh syncs\n"
    "  -version           print the version\n"
    "  -help              print this help\n"
    "\n"
    "Exit status: 0 after a clean stop (SIGTERM, SIGINT), 1 on a runtime or configuration\n"
    "error, 2 on a command-line error.\n";

Result<CliOptions> ParseCommandLine(int argc, char** argv) {
  CliOptions o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.size() > 2 && a[0] == '-' && a[1] == '-') a.erase(0, 1);  // --x is -x.
    auto value = [&]() -> Result<std::string> {
      if (i + 1 >= argc) return Fail(a + " needs a value");
      return std::string(argv[++i]);
    };
    if (a == "-help" || a == "-h") {
      o.mode = CliMode::kHelp;
    } else if (a == "-version") {
      o.mode = CliMode::kVersion;
    } else if (a == "-server") {
      o.mode = CliMode::kServer;
    } else if (a == "-root") {
      auto v = value();
      if (!v) return std::unexpected(v.error());
      if (v->empty() || (*v)[0] != '/') return Fail("-root: expected an absolute directory, got " + *v);
      // The canonical form, so that a target is compared with what the root really is.
      char* real = ::realpath(v->c_str(), nullptr);
      if (!real) return Fail("-root " + *v + ": " + std::strerror(errno));
      o.server_roots.push_back(real);
      ::free(real);
    } else if (a == "-state-dir") {
      auto v = value();
      if (!v) return std::unexpected(v.error());
      if (v->empty() || (*v)[0] != '/') return Fail("-state-dir: expected an absolute directory, got " + *v);
      o.state_dir = *v;
    } else if (a == "-check") {
      o.mode = CliMode::kCheck;
    } else if ((a == "status" && i == 1) || a == "-status") {
      o.mode = CliMode::kStatus;
    } else if ((a == "flush" && i == 1) || a == "-flush") {
      o.mode = CliMode::kFlush;
    } else if (a == "adopt" && i == 1) {
      o.mode = CliMode::kAdopt;
    } else if (a == "overwrite" && i == 1) {
      o.mode = CliMode::kOverwrite;
    } else if (a == "-timeout") {
      auto v = value();
      if (!v) return std::unexpected(v.error());
      char* end = nullptr;
      long t = std::strtol(v->c_str(), &end, 10);
      if (*end != '\0' || t <= 0) return Fail("-timeout: expected whole seconds > 0, got " + *v);
      o.timeout_s = static_cast<int>(t);
    } else if (a == "-nodaemon") {
      o.nodaemon = true;
    } else if (a == "-insist") {
      o.insist = true;
    } else if (a == "-log") {
      auto v = value();
      if (!v) return std::unexpected(v.error());
      o.log_categories.push_back(*v);
    } else if (a == "-logfile") {
      auto v = value();
      if (!v) return std::unexpected(v.error());
      o.logfile = *v;
    } else if (a == "-pidfile") {
      auto v = value();
      if (!v) return std::unexpected(v.error());
      o.pidfile = *v;
    } else if (a == "-delay") {
      auto v = value();
      if (!v) return std::unexpected(v.error());
      char* end = nullptr;
      double d = std::strtod(v->c_str(), &end);
      if (*end != '\0' || d < 0) return Fail("-delay: expected seconds >= 0, got " + *v);
      o.delay = d;
    } else if (a == "-rsync" || a == "-rsyncssh" || a == "-direct") {
      int n = a == "-rsyncssh" ? 3 : 2;
      if (i + n >= argc) return Fail(fmt::format("{} needs {} arguments", a, n));
      std::vector<std::string> sync{a.substr(1)};
      for (int k = 0; k < n; ++k) {
        std::string arg = argv[++i];
        // Paths relative to here (a reload runs after the daemon moved to /); a host, and an
        // rsync target that names one (host:dir), stay as they are.
        bool is_path = !(a == "-rsyncssh" && k != 0) &&
                       !(a == "-rsync" && k == 1 && arg.find(':') != std::string::npos);
        if (is_path && !arg.empty() && arg[0] != '/') {
          char cwd[PATH_MAX];
          if (::getcwd(cwd, sizeof cwd)) arg = std::string(cwd) + "/" + arg;
        }
        sync.push_back(std::move(arg));
      }
      o.syncs.push_back(std::move(sync));
    } else if (a == "-sshopts") {
      auto v = value();
      if (!v) return std::unexpected(v.error());
      o.sshopts = *v;
    } else if (!a.empty() && a[0] == '-') {
      return Fail("unknown option " + std::string(argv[i]));
    } else if (o.config_path.empty()) {
      o.config_path = argv[i];
    } else {
      return Fail("there can only be one config file");
    }
  }
  if (!o.server_roots.empty() && o.mode != CliMode::kServer) return Fail("-root applies to --server only");
  if (o.state_dir && o.mode != CliMode::kServer)
    return Fail("-state-dir applies to --server only (a sync's is settings.stateDir)");
  if (!o.syncs.empty() && !o.config_path.empty())
    return Fail("there cannot be command-line syncs and a config file together");
  bool asks = o.mode == CliMode::kStatus || o.mode == CliMode::kFlush ||
              o.mode == CliMode::kAdopt || o.mode == CliMode::kOverwrite;
  if (!o.syncs.empty() && asks)
    return Fail("status, flush, adopt and overwrite need the config file of the syncd to ask");
  if ((o.mode == CliMode::kRun || o.mode == CliMode::kCheck || asks) &&
      o.config_path.empty() && o.syncs.empty())
    return Fail("no config file given");
  return o;
}

namespace {

// `s` as a Lua long string, whatever it holds.
std::string LuaString(const std::string& s) {
  std::string level;
  while (s.find("]" + level + "]") != std::string::npos) level += "=";
  return "[" + level + "[" + s + "]" + level + "]";
}

}  // namespace

std::string CommandLineConfig(const CliOptions& o) {
  std::string out;
  for (const std::vector<std::string>& s : o.syncs) {
    if (s[0] == "rsyncssh") {
      out += fmt::format("sync {{ default.rsyncssh, source = {}, host = {}, targetdir = {}",
                         LuaString(s[1]), LuaString(s[2]), LuaString(s[3]));
      if (o.sshopts) out += fmt::format(", rsync = {{ rsh = {} }}", LuaString("ssh " + *o.sshopts));
      out += " }\n";
    } else {
      out += fmt::format("sync {{ default.{}, source = {}, target = {} }}\n", s[0],
                         LuaString(s[1]), LuaString(s[2]));
    }
  }
  return out;
}

std::string ConfigIdentity(const CliOptions& o) {
  if (o.syncs.empty()) return o.config_path;
  std::string id = "command line:";
  for (const auto& s : o.syncs)
    for (const std::string& a : s) id += " " + a;
  return id;
}

void ApplyCommandLine(const CliOptions& o, Config& config) {
  if (o.nodaemon) config.settings.nodaemon = true;
  if (o.insist) config.settings.insist = true;
  if (o.logfile) config.settings.logfile = o.logfile;
  if (o.pidfile) config.settings.pidfile = o.pidfile;
  if (o.delay)
    for (SyncConfig& s : config.syncs) s.delay = *o.delay;
}

std::vector<std::string> DesignDifferences(const SyncConfig& y) {
  std::vector<std::string> out;
  if (!y.delay)
    out.push_back("no delay: a change goes out once the file is closed (lsyncd waits `delay`, "
                  "15 s by default)");
  if (y.kind != SyncKind::kDirect)
    out.push_back("renames are done as renames on the standby (lsyncd's rsync layers copy the "
                  "new name and delete the old)");
  if (y.kind != SyncKind::kDirect && !y.filter_rules.empty())
    out.push_back("excluded entries the standby holds inside a renamed directory move with it");
  if (!y.KeepPerms())
    out.push_back("without perms, a file renamed to a new name keeps its standby mode, and a "
                  "file's mode is the one it had when first closed");
  if (!y.filter_rules.empty())
    out.push_back("one matcher, rsync's, for the filter rules at startup and while running; "
                  "filter rules apply before excludes");
  if (y.Follow() != FollowLinks::kNone)
    out.push_back("a change beneath a directory that a followed symlink also shows goes over "
                  "at its own path only (as with lsyncd); a link that loops back is entered once");
  if (y.Backups())
    out.push_back("backup: a rename keeps what it replaces, but the old name gets no backup "
                  "(rsync keeps a copy under the old name too)");
  if (y.rsync.acls)
    out.push_back("acls: named ACL entries travel by id, not by name (rsync maps them by name)");
  if (y.rsync.ignore_existing)
    out.push_back("ignore_existing: a file is sent when first closed; later changes to it do "
                  "not follow");
  return out;
}

std::string DescribeConfig(const Config& c) {
  std::string out = fmt::format("config {}: {} sync(s)\n", c.path, c.syncs.size());
  const Settings& s = c.settings;
  out += fmt::format("settings: nodaemon={} insist={} logfile={} pidfile={} statusFile={} "
                     "metricsFile={} statusInterval={} stopTimeout={} readyWhen={} stateDir={} "
                     "divergenceLimit={}s\n",
                     s.nodaemon, s.insist, s.logfile.value_or("-"), s.pidfile.value_or("-"),
                     s.status_file.value_or("-"), s.metrics_file.value_or("-"), s.status_interval,
                     s.stop_timeout_s, s.ready_when_watching ? "watching" : "in sync",
                     s.state_dir.empty() ? DefaultStateDir() : s.state_dir, s.divergence_limit_s);
  for (const SyncConfig& y : c.syncs) {
    if (y.kind == SyncKind::kCustom) {
      // Custom layers alone: the layers run the sync; syncd watches and runs their processes.
      out += fmt::format("{} (custom layers, {}): {} -> target '{}'\n", y.name, y.defined_at,
                         y.source, y.layer_target);
      out += fmt::format("  layers: {}\n", fmt::join(y.layer_keys, ", "));
      out += fmt::format("  delay={} maxDelays={}\n",
                         y.delay ? fmt::format("{}s", *y.delay) : "none (act at once)", y.max_delays);
      if (!y.filter_rules.empty())
        out += fmt::format("  filter: {}\n", fmt::join(y.filter_rules, ", "));
      continue;
    }
    const char* kind = y.kind == SyncKind::kRsyncSsh ? "rsyncssh"
                       : y.kind == SyncKind::kRsync  ? "rsync"
                                                     : "direct";
    out += fmt::format("{} ({}, {}): {} -> {}{}{}\n", y.name, kind, y.defined_at, y.source,
                       y.host.empty() ? "" : y.host, y.host.empty() ? "" : ":", y.target_dir);
    out += fmt::format("  delay={} maxDelays={} delete={} init={}\n",
                       y.delay ? fmt::format("{}s", *y.delay) : "none (send at once)",
                       y.max_delays,
                       y.delete_mode == DeleteMode::kAlways    ? "true"
                       : y.delete_mode == DeleteMode::kNever   ? "false"
                       : y.delete_mode == DeleteMode::kStartup ? "startup"
                                                               : "running",
                       y.init);
    if (y.layers)
      out += fmt::format("  layers over default.{}: {} (what they hand to default.{}'s action "
                         "and init is replicated by syncd)\n",
                         kind, fmt::join(y.layer_keys, ", "), kind);
    out += fmt::format("  keeps: perms={} owner={} group={} times={} links={} prune_empty_dirs={}\n",
                       y.KeepPerms(), y.KeepOwner(), y.KeepGroup(), y.KeepTimes(), y.KeepLinks(),
                       y.rsync.prune_empty_dirs);
    if (!y.filter_rules.empty())
      out += fmt::format("  filter: {}\n", fmt::join(y.filter_rules, ", "));
    if (!y.rsync.chmod.empty()) out += fmt::format("  chmod: {}\n", fmt::join(y.rsync.chmod, ","));
    for (const std::string& n : DesignDifferences(y)) out += fmt::format("  differs from lsyncd: {}\n", n);
    for (const std::string& n : y.notes) out += fmt::format("  differs from lsyncd: {}\n", n);
    if (!y.host.empty())
      out += fmt::format("  ssh: identityFile={} port={} carrier={}\n",
                         y.ssh.identity_file.value_or("(default keys)"), y.ssh.port.value_or(22),
                         y.ssh.binary || y.ssh.carrier == SshCarrier::kOpenSsh
                             ? "openssh (" + y.ssh.binary.value_or("/usr/bin/ssh") + ")"
                         : y.ssh.carrier == SshCarrier::kLibssh2 ? std::string("libssh2")
                                                                 : std::string("auto"));
  }
  for (const std::string& w : c.warnings) out += "warning: " + w + "\n";
  return out;
}

int PrintStatus(const Config& config) {
  const Settings& s = config.settings;
  if (!s.status_file) {
    std::fprintf(stderr, "syncd: %s sets no statusFile in settings{}; nothing to read\n",
                 config.path.c_str());
    return 1;
  }
  std::ifstream in(*s.status_file);
  struct stat st;
  if (!in || ::stat(s.status_file->c_str(), &st) != 0) {
    std::fprintf(stderr, "syncd: cannot read %s: is syncd running with %s?\n",
                 s.status_file->c_str(), config.path.c_str());
    return 1;
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::fputs(text.c_str(), stdout);
  double age = static_cast<double>(std::time(nullptr) - st.st_mtime);
  // Rewritten every statusInterval: much older means syncd is stopped or stuck.
  bool stale = age > 3.0 * std::max(s.status_interval, 1) + 1;
  std::printf("\n(report written %.0f s ago%s)\n", age,
              stale ? "; that is stale: syncd is stopped or stuck" : "");
  size_t syncs = 0, in_sync = 0;
  for (size_t at = 0; (at = text.find("\nState: ", at)) != std::string::npos; ++at) {
    ++syncs;
    if (text.compare(at + 8, 8, "in sync\n") == 0) ++in_sync;
  }
  return !stale && syncs > 0 && in_sync == syncs ? 0 : 3;
}

}  // namespace syncd
