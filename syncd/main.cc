// syncd: live one-way replication for active/passive pairs. This file only wires the parts:
// the Lua config (lua/), the daemon (syncd/) and the carriers and agent (transport/).
#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "lua/config_loader.h"
#include "syncd/cli.h"
#include "syncd/process.h"
#include "syncd/control.h"
#include "syncd/daemon.h"
#include "syncd/history.h"
#include "syncd/log.h"
#include "transport/agent.h"
#include "transport/replica_factory.h"

int main(int argc, char** argv) {
  using namespace syncd;
  // Blocks of 1 MiB and more (a large tree's sorted arrays) get their own mappings, given back
  // when freed, rather than a place in the heap that pins whatever was allocated above them.
  // The heap's free top is kept up to 64 MiB: by default it went back to the system at each
  // free of a transfer's buffers, which were then faulted in again page by page, on both
  // nodes; that cost four times the copying itself on a first copy of large files. A sync
  // gives its heap back once its comparison is done (malloc_trim).
  ::mallopt(M_MMAP_THRESHOLD, 1 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 64 << 20);
  auto options = ParseCommandLine(argc, argv);
  if (!options) {
    std::fprintf(stderr, "syncd: %s\nTry 'syncd --help'.\n", options.error().message.c_str());
    return 2;
  }
  switch (options->mode) {
    case CliMode::kHelp:
      std::fputs(kUsage, stdout);
      return 0;
    case CliMode::kVersion:
      std::printf("syncd %s\n", SYNCD_VERSION);
      return 0;
    case CliMode::kServer:
      return transport::RunAgent(STDIN_FILENO, STDOUT_FILENO, options->server_roots,
                                 options->state_dir.value_or(DefaultStateDir()));
    case CliMode::kFlush:
      return RequestFlush(options->config_path, std::chrono::seconds(options->timeout_s));
    case CliMode::kAdopt:
    case CliMode::kOverwrite:
      return RequestResolution(options->config_path,
                               options->mode == CliMode::kAdopt ? "adopt" : "overwrite",
                               std::chrono::seconds(options->timeout_s));
    case CliMode::kRun:
    case CliMode::kCheck:
    case CliMode::kStatus:
      break;
  }
  for (const std::string& c : options->log_categories) Log::EnableCategory(c);
  // The config file, or lsyncd's command-line syncs.
  auto load = [](const CliOptions& o) {
    return o.syncs.empty() ? lua::LoadConfig(o.config_path)
                           : lua::LoadConfigString(CommandLineConfig(o), "command line");
  };
  auto config = load(*options);
  if (!config) {
    std::fprintf(stderr, "syncd: %s\n", config.error().message.c_str());
    return 1;
  }
  ApplyCommandLine(*options, *config);
  for (const std::string& w : config->warnings) LogWarn("{}", w);
  if (options->mode == CliMode::kCheck) {
    std::fputs(DescribeConfig(*config).c_str(), stdout);
    return 0;
  }
  if (options->mode == CliMode::kStatus) return PrintStatus(*config);
  for (const SyncConfig& sync : config->syncs)
    for (const std::string& n : sync.notes) LogInfo("{}: {}", sync.name, n);
  // Paths that must survive detaching (which changes to "/").
  std::string control = ControlSocketPath(ConfigIdentity(*options));
  char real[PATH_MAX];
  if (options->syncs.empty() && ::realpath(options->config_path.c_str(), real))
    options->config_path = real;
  auto prepared = PrepareProcess(*config);  // Daemonize, log file, pidfile.
  if (!prepared) {
    std::fprintf(stderr, "syncd: %s\n", prepared.error().message.c_str());
    return 1;
  }
  std::string self = SelfExecutable(argv[0]);
  // SIGHUP reads the file again, with the same command line on top.
  auto reload = [options = *options, load]() -> Result<Config> {
    auto fresh = load(options);
    if (fresh) ApplyCommandLine(options, *fresh);
    return fresh;
  };
  Daemon daemon(
      *config,
      [self](uv_loop_t* loop, const SyncConfig& sync) {
        return transport::MakeReplica(loop, sync, self);
      },
      reload);
  daemon.SetControlSocket(control);
  int status = daemon.Run();
  FinishProcess(*config);
  return status;
}
