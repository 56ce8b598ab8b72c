#include "transport/replica_factory.h"

#include <fmt/format.h>

#include "transport/codec.h"
#include "transport/pipe_channel.h"
#include "transport/replica_client.h"

namespace syncd::transport {
namespace {

uint32_t OpenFlags(const SyncConfig& s) {
  uint32_t flags = 0;
  if (s.KeepPerms()) flags |= kKeepPerms;
  if (s.KeepOwner()) flags |= kKeepOwner;
  if (s.KeepGroup()) flags |= kKeepGroup;
  if (s.KeepTimes()) flags |= kKeepTimes;
  return flags;
}

// rsync's --whole-file turns deltas off; --compress turns compression on.
ClientOptions OptionsFor(const SyncConfig& s) {
  ClientOptions o;
  o.delta = !s.rsync.whole_file;
  o.compress = s.rsync.compress;
  return o;
}

std::vector<std::string> SplitBlanks(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while ((start = s.find_first_not_of(" \t", start)) != std::string::npos) {
    size_t end = s.find_first_of(" \t", start);
    out.push_back(s.substr(start, end - start));
    start = end;
  }
  return out;
}

}  // namespace

SshTarget SshTargetFor(const SyncConfig& sync) {
  SshTarget t;
  std::string host = sync.host;
  if (size_t at = host.rfind('@'); at != std::string::npos) {
    t.user = host.substr(0, at);
    host = host.substr(at + 1);
  }
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);  // [IPv6 address]
  t.host = host;
  if (sync.ssh.port) t.port = *sync.ssh.port;
  if (sync.ssh.identity_file) {
    t.identity_files = {*sync.ssh.identity_file};
    t.identity_configured = true;
  }
  const auto& o = sync.ssh.options;
  if (auto it = o.find("UserKnownHostsFile"); it != o.end()) t.known_hosts_files = SplitBlanks(it->second);
  if (auto it = o.find("GlobalKnownHostsFile"); it != o.end()) {
    if (t.known_hosts_files.empty()) t.known_hosts_files = SshTarget().known_hosts_files;
    for (const std::string& f : SplitBlanks(it->second)) t.known_hosts_files.push_back(f);
  }
  if (auto it = o.find("ConnectTimeout"); it != o.end()) t.connect_timeout_s = std::max(1, std::atoi(it->second.c_str()));
  if (auto it = o.find("ServerAliveInterval"); it != o.end()) t.keepalive_s = std::atoi(it->second.c_str());
  if (auto it = o.find("ServerAliveCountMax"); it != o.end())
    t.keepalive_count_max = std::max(1, std::atoi(it->second.c_str()));
  return t;
}

std::unique_ptr<Replica> MakeReplica(uv_loop_t* loop, const SyncConfig& sync,
                                     const std::string& self_exe) {
  if (sync.host.empty()) {
    std::vector<std::string> argv{self_exe, "--server"};
    return std::make_unique<ReplicaClient>(
        loop, "local agent:" + sync.target_dir, sync.target_dir, OpenFlags(sync),
        [loop, argv] { return std::make_unique<PipeChannel>(loop, argv); }, OptionsFor(sync));
  }
  SshTarget target = SshTargetFor(sync);
  return std::make_unique<ReplicaClient>(
      loop, fmt::format("{}:{}", target.Describe(), sync.target_dir), sync.target_dir,
      OpenFlags(sync), [loop, target] { return std::make_unique<SshChannel>(loop, target); },
      OptionsFor(sync));
}

}  // namespace syncd::transport
