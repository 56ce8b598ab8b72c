#include "transport/replica_factory.h"

#include <unistd.h>

#include <map>

#include <fmt/format.h>

#include "syncd/filter.h"
#include "syncd/log.h"
#include "transport/codec.h"
#include "transport/known_hosts.h"
#include "transport/pipe_channel.h"
#include "transport/rate_limited_channel.h"
#include "transport/replica_client.h"

namespace syncd::transport {
namespace {

uint32_t OpenFlags(const SyncConfig& s) {
  uint32_t flags = 0;
  if (s.KeepPerms()) flags |= kKeepPerms;
  if (s.KeepOwner()) flags |= kKeepOwner;
  if (s.KeepGroup()) flags |= kKeepGroup;
  if (s.KeepTimes()) flags |= kKeepTimes;
  if (s.rsync.xattrs) flags |= kKeepXattrs;
  if (s.rsync.acls) flags |= kKeepAcls;
  if (s.KeepTimes() && !s.KeepDirTimes()) flags |= kOmitDirTimes;
  if (s.KeepTimes() && !s.KeepLinkTimes()) flags |= kOmitLinkTimes;
  return flags;
}

// rsync's --whole-file turns deltas off; --compress turns compression on.
ClientOptions OptionsFor(const SyncConfig& s) {
  ClientOptions o;
  o.delta = !s.rsync.whole_file;
  o.compress = s.rsync.compress;
  o.follow_links = s.Follow() != FollowLinks::kNone;
  o.xattrs = s.Xattrs();
  if (s.Backups()) o.backup = BackupSettings{s.BackupSuffix(), s.rsync.backup_dir.value_or("")};
  if (auto filter = Filter::Parse(s.filter_rules, s.rsync.delete_excluded); filter && filter->protects())
    o.protect_rules = filter->Rules();
  if (auto mapping = MetaMapping::For(s.rsync, CurrentUmask())) o.meta_mapping = std::move(*mapping);
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

// libssh2 first; if the peer refuses an RSA key that libssh2 can only sign with SHA-1, the
// OpenSSH client (which signs with SHA-2) from then on, for every connection of this sync.
class FallbackChannel : public Channel {
 public:
  struct Shared {
    bool use_openssh = false;
  };
  FallbackChannel(uv_loop_t* loop, SshTarget target, std::vector<std::string> openssh,
                  std::shared_ptr<Shared> shared)
      : loop_(loop), target_(std::move(target)), openssh_(std::move(openssh)),
        shared_(std::move(shared)) {}

  void Open(Callbacks callbacks, std::function<void(Result<void>)> opened) override {
    if (shared_->use_openssh) return OpenSsh(std::move(callbacks), std::move(opened));
    inner_ = std::make_unique<SshChannel>(loop_, target_);
    inner_->Open(callbacks, [this, callbacks, opened](Result<void> r) {
      bool key = !r && r.error().code == EKEYREJECTED;
      bool algorithms = !r && r.error().code == EPROTONOSUPPORT;
      if (r || !(key || algorithms) || ::access(openssh_[0].c_str(), X_OK) != 0)
        return opened(std::move(r));
      if (!shared_->use_openssh && key)
        LogWarn("{}; the OpenSSH client ({}) carries the syncs to it instead, signing with "
                "SHA-2. To use syncd's own client, give it an ed25519 key; to say so and skip "
                "this try, set ssh = {{ carrier = 'openssh' }}",
                r.error().message.substr(0, r.error().message.find(';')), openssh_[0]);
      if (!shared_->use_openssh && algorithms)
        LogWarn("{}: syncd's SSH client and the standby have no algorithm in common (an "
                "RSA-only host key, or a cipher or key exchange it lacks); the OpenSSH client "
                "({}) carries the syncs to it instead. To skip this try, set ssh = {{ carrier "
                "= 'openssh' }}",
                r.error().message, openssh_[0]);
      shared_->use_openssh = true;
      retired_ = std::move(inner_);  // Its callback is still on the stack.
      OpenSsh(callbacks, opened);
    });
  }
  void Write(std::string bytes) override { inner_->Write(std::move(bytes)); }
  size_t buffered() const override { return inner_ ? inner_->buffered() : 0; }
  void Close() override {
    if (inner_) inner_->Close();
  }

 private:
  void OpenSsh(Callbacks callbacks, std::function<void(Result<void>)> opened) {
    inner_ = std::make_unique<PipeChannel>(loop_, openssh_, "ssh " + target_.Describe());
    inner_->Open(std::move(callbacks), std::move(opened));
  }
  uv_loop_t* loop_;
  SshTarget target_;
  std::vector<std::string> openssh_;
  std::shared_ptr<Shared> shared_;
  std::unique_ptr<Channel> inner_, retired_;
};

bool WantsOpenSsh(const SyncConfig& sync) {
  const SshOptions& o = sync.ssh;
  if (o.binary || o.carrier == SshCarrier::kOpenSsh) return true;
  return o.carrier == SshCarrier::kAuto &&
         (o.options.contains("ProxyJump") || o.options.contains("ProxyCommand"));
}

}  // namespace

std::vector<std::string> OpenSshCommand(const SyncConfig& sync) {
  SshTarget t = SshTargetFor(sync);
  std::vector<std::string> argv{sync.ssh.binary.value_or("/usr/bin/ssh"), "-T", "-x", "-a",
                                "-o", "BatchMode=yes"};
  auto option = [&](const std::string& key, const std::string& value) {
    argv.push_back("-o");
    argv.push_back(key + "=" + value);
  };
  // What the config says, then syncd's defaults for what it does not (the first value wins).
  for (const auto& [key, value] : sync.ssh.options) option(key, value);
  // The same known_hosts files as syncd's own client (HOME, not the passwd entry, gives ~).
  if (!sync.ssh.options.contains("UserKnownHostsFile"))
    option("UserKnownHostsFile", fmt::format("{}", fmt::join(KnownHostsFiles(t), " ")));
  if (!sync.ssh.options.contains("ServerAliveInterval"))
    option("ServerAliveInterval", std::to_string(t.keepalive_s));
  if (!sync.ssh.options.contains("ServerAliveCountMax"))
    option("ServerAliveCountMax", std::to_string(t.keepalive_count_max));
  if (!sync.ssh.options.contains("ConnectTimeout"))
    option("ConnectTimeout", std::to_string(t.connect_timeout_s));
  if (sync.ssh.identity_file) {
    argv.push_back("-i");
    argv.push_back(*sync.ssh.identity_file);
  }
  if (sync.ssh.port) {
    argv.push_back("-p");
    argv.push_back(std::to_string(*sync.ssh.port));
  }
  for (const std::string& e : sync.ssh.extra) argv.push_back(e);
  if (!t.user.empty()) {
    argv.push_back("-l");
    argv.push_back(t.user);
  }
  argv.push_back("--");
  argv.push_back(t.host);
  argv.push_back(t.remote_command);
  return argv;
}

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
  t.remote_command = sync.agent_command;
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
  if (auto it = o.find("StrictHostKeyChecking"); it != o.end())
    t.accept_new_host_keys = it->second == "accept-new" || it->second == "no";
  if (auto it = o.find("ConnectTimeout"); it != o.end()) t.connect_timeout_s = std::max(1, std::atoi(it->second.c_str()));
  if (auto it = o.find("ServerAliveInterval"); it != o.end()) t.keepalive_s = std::atoi(it->second.c_str());
  if (auto it = o.find("ServerAliveCountMax"); it != o.end())
    t.keepalive_count_max = std::max(1, std::atoi(it->second.c_str()));
  return t;
}

namespace {

// With --bwlimit, every channel the factory makes is paced.
ReplicaClient::ChannelFactory Paced(uv_loop_t* loop, const SyncConfig& sync,
                                    ReplicaClient::ChannelFactory factory) {
  if (!sync.rsync.bwlimit) return factory;
  uint64_t rate = *sync.rsync.bwlimit;
  return [loop, rate, factory = std::move(factory)]() -> std::unique_ptr<Channel> {
    return std::make_unique<RateLimitedChannel>(loop, factory(), rate);
  };
}

}  // namespace

std::unique_ptr<Replica> MakeReplica(uv_loop_t* loop, const SyncConfig& sync,
                                     const std::string& self_exe) {
  if (sync.host.empty()) {
    // The local agent keeps its history where this node's syncd does.
    std::vector<std::string> argv{self_exe, "--server", "--state-dir", sync.state_dir};
    if (sync.state_dir.empty()) argv.resize(2);
    return std::make_unique<ReplicaClient>(
        loop, "local agent:" + sync.target_dir, sync.target_dir, OpenFlags(sync),
        Paced(loop, sync, [loop, argv] { return std::make_unique<PipeChannel>(loop, argv); }),
        OptionsFor(sync));
  }
  SshTarget target = SshTargetFor(sync);
  std::string name = fmt::format("{}:{}", target.Describe(), sync.target_dir);
  std::vector<std::string> openssh = OpenSshCommand(sync);
  ReplicaClient::ChannelFactory factory;
  if (WantsOpenSsh(sync)) {
    factory = [loop, openssh, target] {
      return std::make_unique<PipeChannel>(loop, openssh, "ssh " + target.Describe());
    };
  } else if (sync.ssh.carrier == SshCarrier::kLibssh2) {
    factory = [loop, target] { return std::make_unique<SshChannel>(loop, target); };
  } else {
    // One decision (and one warning) per peer, shared by the syncs that go to it.
    static std::map<std::string, std::shared_ptr<FallbackChannel::Shared>> per_peer;
    auto& shared = per_peer[target.Key()];
    if (!shared) shared = std::make_shared<FallbackChannel::Shared>();
    factory = [loop, target, openssh, shared] {
      return std::make_unique<FallbackChannel>(loop, target, openssh, shared);
    };
  }
  return std::make_unique<ReplicaClient>(loop, name, sync.target_dir, OpenFlags(sync),
                                         Paced(loop, sync, std::move(factory)), OptionsFor(sync));
}

}  // namespace syncd::transport
