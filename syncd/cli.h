// Command line: lsyncd's flags (`-nodaemon`, `-log CAT`, `-logfile`, `-pidfile`, `-insist`,
// `-delay`; one or two dashes), plus `--server`, `--check`, `--version` and `--help`; and the
// process set-up around the daemon (detaching, pidfile, log destination).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "syncd/config.h"
#include "syncd/error.h"

namespace syncd {

enum class CliMode { kRun, kCheck, kStatus, kFlush, kAdopt, kOverwrite, kServer, kHelp, kVersion };

struct CliOptions {
  CliMode mode = CliMode::kRun;
  std::string config_path;
  bool nodaemon = false;
  bool insist = false;
  std::vector<std::string> log_categories;
  std::optional<std::string> logfile;
  std::optional<std::string> pidfile;
  std::optional<double> delay;
  int timeout_s = 60;  // syncd flush -timeout SECONDS.
  std::vector<std::string> server_roots;  // --server --root DIR: canonical paths.
  std::optional<std::string> state_dir;   // --server --state-dir DIR.
  // Syncs given on the command line instead of a config file, as lsyncd's `-rsync SOURCE
  // TARGET`, `-rsyncssh SOURCE HOST TARGETDIR` and `-direct SOURCE TARGETDIR`: the layer's
  // name, then its arguments.
  std::vector<std::vector<std::string>> syncs;
  std::optional<std::string> sshopts;  // -sshopts "...": ssh options of the rsyncssh syncs.
};

extern const char kUsage[];

Result<CliOptions> ParseCommandLine(int argc, char** argv);
// The configuration the command-line syncs stand for, as Lua (lsyncd's own sync{} calls).
std::string CommandLineConfig(const CliOptions& options);
// What the running daemon is known by (its control socket): the config file, or the
// command-line syncs.
std::string ConfigIdentity(const CliOptions& options);
// Command-line values override the file's, as in lsyncd.
void ApplyCommandLine(const CliOptions& options, Config& config);
// Where a sync's result differs from lsyncd's by design (how syncd works, not options), one
// line each, for `syncd --check`.
std::vector<std::string> DesignDifferences(const SyncConfig& sync);
// The effective configuration, for `syncd --check`.
std::string DescribeConfig(const Config& config);
// `syncd status CONFIG`: prints the status file of the syncd running CONFIG and how old it is.
// Exit status 0 if every sync is in sync and the report is fresh, 3 otherwise, 1 if there is
// no report to read.
int PrintStatus(const Config& config);

}  // namespace syncd
