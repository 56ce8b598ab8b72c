// The seed's deployment over a real sshd: the peer runs in a mount namespace of its own where
// the seed's folders are different directories, so source and target have the same paths, as
// on two nodes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <thread>

#include "tests/integration/harness.h"
#include "tests/integration/scenario.h"
#include "tests/random_bytes.h"

namespace syncd::itest {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class SshReplicationTest : public ::testing::Test {
 protected:
  SshReplicationTest()
      : tmp_("ssh"),
        osm1_(tmp_ / "osm1"),
        osm2_(tmp_ / "osm2"),
        home_(tmp_ / "home"),
        key_(tmp_ / "sync_key") {
    MakeDirs(osm1_);
    MakeDirs(osm2_);
    MakeDirs(home_ + "/.ssh");
    for (const std::string& folder : kSeedFolders) {
      layout_.sources.push_back(osm1_ + folder);
      layout_.targets.push_back(osm2_ + folder);
      MakeDirs(osm1_ + folder);
    }
    sshd_ = std::make_unique<SshServer>(tmp_ / "sshd", 22,
                                        std::vector<std::pair<std::string, std::string>>{
                                            {osm2_, osm1_}});
  }

  // An authorized ed25519 key and, of the host keys sshd offers (ed25519 and ECDSA), only the
  // ed25519 one in known_hosts: libssh2 1.10 on its own would negotiate ECDSA and fail.
  void TrustEachOther() {
    sshd_->Authorize(SshServer::MakeUserKey(key_));
    WriteFile(home_ + "/.ssh/known_hosts", sshd_->KnownHostsLine("ed25519"));
  }
  // Starts syncd on the seed's config (with `extra` appended); its log goes with the layout.
  std::unique_ptr<Process> StartSeedSyncd(const std::string& extra = "") {
    std::string config = tmp_ / "lsyncd.conf.lua";
    std::string text = SeedConfig(osm1_, "127.0.0.1", key_, tmp_ / "lsyncd.log", carrier_);
    WriteFile(config, text + extra);
    auto syncd = StartSyncd(config, home_, tmp_ / "syncd.out");
    layout_.syncd = syncd.get();
    return syncd;
  }
  // Both nodes trust each other, the seed's trees are populated, and syncd has copied them.
  std::unique_ptr<Process> StartConvergedSeedSyncd(const std::string& extra = "") {
    TrustEachOther();
    sshd_->Start();
    PopulateSeedTrees(layout_);
    auto syncd = StartSeedSyncd(extra);
    ExpectConverged(layout_, "startup");
    return syncd;
  }
  // The seed's trees copied, then syncd started again with ServerAliveInterval 2 and
  // ServerAliveCountMax 2: a peer silent for 4 s is given up.
  void RestartWithKeepaliveDeadlineOf4Seconds(std::unique_ptr<Process>* again) {
    auto syncd = StartConvergedSeedSyncd();
    ASSERT_FALSE(HasFatalFailure());
    syncd->Signal(SIGTERM);
    ASSERT_EQ(syncd->Wait(), 0) << syncd->log();
    std::string config = tmp_ / "lsyncd.conf.lua";
    std::string text = ReadFile(config);
    size_t at = text.find("identityFile = ");
    ASSERT_NE(at, std::string::npos);
    text.insert(at, "options = { ServerAliveInterval = 2, ServerAliveCountMax = 2 }, ");
    WriteFile(config, text);
    *again = StartSyncd(config, home_, tmp_ / "syncd2.out");
    layout_.syncd = again->get();
  }
  bool WaitForRetry(Process& syncd) {
    return WaitUntil([&] { return syncd.log().find("retrying in") != std::string::npos; });
  }
  // Starts syncd with the seed config and waits for it to exit; returns its output.
  std::string RunUntilExit(int* status) {
    auto syncd = StartSeedSyncd();
    auto st = syncd->Wait(std::chrono::seconds(60));
    *status = st.value_or(-1);
    return syncd->log();
  }
  void ExpectPeerUntouched() {
    auto tree = Snapshot(osm2_);
    tree.erase(".");
    EXPECT_TRUE(tree.empty()) << "the peer was written to: " << tree.begin()->first;
  }
  static int Count(const std::string& text, const std::string& what) {
    int n = 0;
    for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
    return n;
  }

  TempDir tmp_;
  std::string osm1_, osm2_, home_, key_;
  Layout layout_;
  std::unique_ptr<SshServer> sshd_;
  std::string carrier_;  // ssh.carrier for the seed config; empty: as the seed has it.
};

// What holds for both carriers: syncd's own SSH client (libssh2) and the OpenSSH client.
class SshCarrierTest : public SshReplicationTest, public ::testing::WithParamInterface<const char*> {
 protected:
  SshCarrierTest() { carrier_ = GetParam(); }
  bool openssh() const { return carrier_ == "openssh"; }
  // `ssh = {...}` for a config of the test's own, with the carrier and `keys`.
  std::string SshTable(const std::string& keys) const {
    return "ssh = { carrier = '" + carrier_ + "', " + keys + " }";
  }
};

INSTANTIATE_TEST_SUITE_P(Carriers, SshCarrierTest, ::testing::Values("libssh2", "openssh"),
                         [](const auto& p) { return std::string(p.param); });

TEST_P(SshCarrierTest, SeedConfigReplicatesExactlyAndEveryChangeConverges) {
  auto syncd = StartConvergedSeedSyncd();
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_FALSE(fs::exists(layout_.targets[2] + "/sess_stale"));
  RunLiveChanges(layout_);
  if (openssh()) {
    size_t clients = 0;  // One OpenSSH client per sync, children of syncd.
    for (pid_t p : Descendants(syncd->pid()))
      if (ReadFile("/proc/" + std::to_string(p) + "/comm") == "ssh\n") ++clients;
    EXPECT_EQ(clients, 3u);
  } else {
    // The three syncs to one host share one SSH session.
    EXPECT_EQ(Count(sshd_->log(), "Accepted publickey"), 1) << sshd_->log();
  }
  syncd->Signal(SIGTERM);
  EXPECT_EQ(syncd->Wait(), 0) << syncd->log();
  EXPECT_THAT(ReadFile(tmp_ / "lsyncd.log"), HasSubstr("in sync with"));
}

TEST_P(SshCarrierTest, UnknownHostKeyStopsWithOneClearLine) {
  sshd_->Authorize(SshServer::MakeUserKey(key_));
  sshd_->Start();
  int status = 0;
  std::string out = RunUntilExit(&status);
  EXPECT_EQ(status, 1) << out;
  if (openssh()) {
    EXPECT_THAT(out, HasSubstr("Host key verification failed"));  // ssh's own words.
  } else {
    EXPECT_EQ(Count(out, "unknown host key for 127.0.0.1"), 1) << out;
    EXPECT_THAT(out, HasSubstr("SHA256:"));
    EXPECT_THAT(out, HasSubstr("ssh-keyscan"));
  }
  ExpectPeerUntouched();
}

TEST_P(SshCarrierTest, ChangedHostKeyStopsWithOneClearLine) {
  sshd_->Authorize(SshServer::MakeUserKey(key_));
  sshd_->Start();
  std::string line = sshd_->KnownHostsLine("ed25519");
  line[line.size() - 5] = line[line.size() - 5] == 'A' ? 'B' : 'A';  // Another key.
  WriteFile(home_ + "/.ssh/known_hosts", line);
  int status = 0;
  std::string out = RunUntilExit(&status);
  EXPECT_EQ(status, 1) << out;
  EXPECT_THAT(out, HasSubstr(openssh() ? "Host key verification failed" : "does not match known_hosts"))
      << out;
  ExpectPeerUntouched();
}

TEST_P(SshCarrierTest, RefusedKeyStopsWithOneClearLine) {
  SshServer::MakeUserKey(key_);  // Not authorized on the peer.
  sshd_->Start();
  WriteFile(home_ + "/.ssh/known_hosts", sshd_->KnownHostsLine("ed25519"));
  int status = 0;
  std::string out = RunUntilExit(&status);
  EXPECT_EQ(status, 1) << out;
  if (openssh()) {
    EXPECT_THAT(out, HasSubstr("Permission denied (publickey)"));
  } else {
    EXPECT_EQ(Count(out, "127.0.0.1 refused the key " + key_), 1) << out;
  }
  ExpectPeerUntouched();
}

// The seed names its key sync_rsa. libssh2 1.10 signs RSA with SHA-1 only; OpenSSH 9 refuses
// that, and the message must say so and what to do.
TEST_F(SshReplicationTest, RsaKeyRefusalExplainsTheWayOut) {
  sshd_->Authorize(SshServer::MakeUserKey(key_, "rsa"));
  sshd_->Start();
  WriteFile(home_ + "/.ssh/known_hosts", sshd_->KnownHostsLine("ed25519"));
  int status = 0;
  carrier_ = "libssh2";  // No fallback to the OpenSSH client: the error names both ways out.
  std::string out = RunUntilExit(&status);
  EXPECT_EQ(status, 1) << out;
  EXPECT_THAT(out, HasSubstr("is an RSA key"));
  EXPECT_THAT(out, HasSubstr("ssh-keygen -t ed25519"));
  EXPECT_THAT(out, HasSubstr("carrier = 'openssh'"));
  ExpectPeerUntouched();
}

// StrictHostKeyChecking = 'accept-new': the first connection records the standby's host key
// (once), and the next start trusts it without recording it again.
TEST_P(SshCarrierTest, AcceptNewRecordsAnUnknownHostKeyOnce) {
  sshd_->Authorize(SshServer::MakeUserKey(key_));
  sshd_->Start();
  PopulateSeedTrees(layout_);
  std::string config = tmp_ / "accept-new.conf.lua";
  std::string text = SeedConfig(osm1_, "127.0.0.1", key_, tmp_ / "lsyncd.log", carrier_);
  size_t at = text.find("identityFile = ");
  ASSERT_NE(at, std::string::npos);
  text.insert(at, "options = { StrictHostKeyChecking = 'accept-new' }, ");
  WriteFile(config, text, 0600);
  auto syncd = StartSyncd(config, home_, tmp_ / "syncd.out");
  layout_.syncd = syncd.get();
  ExpectConverged(layout_, "first connection");
  if (!openssh()) {  // The OpenSSH client records it in the same file, in its own words.
    EXPECT_EQ(Count(syncd->log(), "recorded in " + home_ + "/.ssh/known_hosts"), 1) << syncd->log();
  }
  std::string known = ReadFile(home_ + "/.ssh/known_hosts");
  // Debian's ssh_config hashes the names that the OpenSSH client records.
  EXPECT_THAT(known, openssh() ? ::testing::StartsWith("|1|") : ::testing::StartsWith("127.0.0.1 "));
  EXPECT_THAT(known, ::testing::ContainsRegex(" (ssh-ed25519|ecdsa-sha2-nistp256) AAAA"));
  syncd->Signal(SIGTERM);
  EXPECT_EQ(syncd->Wait(), 0);
  auto again = StartSyncd(config, home_, tmp_ / "syncd2.out");
  EXPECT_TRUE(WaitUntil([&] { return again->log().find("in sync with") != std::string::npos; }))
      << again->log();
  EXPECT_EQ(Count(again->log(), "recorded in"), 0) << again->log();
  EXPECT_EQ(ReadFile(home_ + "/.ssh/known_hosts"), known);
}

// A private key that others can read is refused, as OpenSSH refuses it, with the fix.
TEST_P(SshCarrierTest, KeyReadableByOthersIsRefused) {
  TrustEachOther();
  sshd_->Start();
  ::chmod(key_.c_str(), 0644);
  int status = 0;
  std::string out = RunUntilExit(&status);
  EXPECT_EQ(status, 1) << out;
  if (openssh()) {
    EXPECT_THAT(out, HasSubstr("Permissions 0644 for '" + key_ + "' are too open"));
  } else {
    EXPECT_THAT(out, HasSubstr("can be read by others (mode 0644)"));
    EXPECT_THAT(out, HasSubstr("chmod 600 " + key_));
  }
  ExpectPeerUntouched();
}

// The seed's users generate an RSA key (sync_rsa): with their config unchanged, the OpenSSH
// client takes over from libssh2 (which can only sign with SHA-1) after one warning, and every
// change replicates.
TEST_F(SshReplicationTest, SeedConfigWithAnRsaKeyReplicatesThroughTheOpenSshClient) {
  sshd_->Authorize(SshServer::MakeUserKey(key_, "rsa"));
  WriteFile(home_ + "/.ssh/known_hosts", sshd_->KnownHostsLine("ed25519"));
  sshd_->Start();
  PopulateSeedTrees(layout_);
  auto syncd = StartSeedSyncd();
  ExpectConverged(layout_, "startup");
  RunLiveChanges(layout_);
  EXPECT_EQ(Count(syncd->log(), "the OpenSSH client (/usr/bin/ssh) carries the syncs"), 1u)
      << syncd->log();
  EXPECT_THAT(sshd_->log(), HasSubstr("Accepted publickey for root from 127.0.0.1"));
  syncd->Signal(SIGTERM);
  EXPECT_EQ(syncd->Wait(), 0) << syncd->log();
}

// A standby whose only host key is RSA: OpenSSH 9 offers it as rsa-sha2 only, which
// libssh2 1.10 cannot verify, so the handshake finds no algorithm in common. The OpenSSH
// client takes over after one warning, as lsyncd's ssh would simply connect.
TEST_F(SshReplicationTest, RsaOnlyHostKeyReplicatesThroughTheOpenSshClient) {
  sshd_->Authorize(SshServer::MakeUserKey(key_));
  sshd_->OnlyHostKey("rsa");
  WriteFile(home_ + "/.ssh/known_hosts", sshd_->KnownHostsLine("rsa"));
  sshd_->Start();
  PopulateSeedTrees(layout_);
  auto syncd = StartSeedSyncd();
  ExpectConverged(layout_, "startup");
  RunLiveChanges(layout_);
  EXPECT_EQ(Count(syncd->log(), "no algorithm in common"), 1u) << syncd->log();
  EXPECT_THAT(sshd_->log(), HasSubstr("Accepted publickey for root from 127.0.0.1"));
  syncd->Signal(SIGTERM);
  EXPECT_EQ(syncd->Wait(), 0) << syncd->log();
}

// insist = true (the seed's setting): a standby that is down at startup is retried.
TEST_P(SshCarrierTest, PeerDownAtStartupIsRetriedWithInsist) {
  TrustEachOther();
  PopulateSeedTrees(layout_);
  auto syncd = StartSeedSyncd();
  ASSERT_TRUE(WaitForRetry(*syncd)) << syncd->log();
  EXPECT_TRUE(syncd->running());
  sshd_->Start();
  ExpectConverged(layout_, "the standby came up");
}

// The source is scanned from the start, while the standby is reached: what changes before the
// standby answers (a file added, one rewritten, one removed) is not left out of the first
// comparison because the early scan missed it.
TEST_P(SshCarrierTest, ChangesWhileTheStandbyIsDownAtStartupAllGoOver) {
  TrustEachOther();
  PopulateSeedTrees(layout_);
  auto syncd = StartSeedSyncd();
  ASSERT_TRUE(WaitForRetry(*syncd)) << syncd->log();
  WriteFile(layout_.sources[2] + "/sess_new", "written while the standby was down", 0600);
  WriteFile(layout_.sources[0] + "/a/b/c/file", "rewritten while the standby was down\n");
  fs::remove(layout_.sources[0] + "/script.sh");
  sshd_->Start();
  ExpectConverged(layout_, "the standby came up after changes");
  EXPECT_EQ(ReadFile(layout_.targets[2] + "/sess_new"), "written while the standby was down");
  EXPECT_FALSE(fs::exists(layout_.targets[0] + "/script.sh"));
}

// A stop that comes while syncd waits to reconnect tries at once, instead of leaving with the
// changes: here the standby has just come up, and what was written meanwhile gets there.
TEST_P(SshCarrierTest, StopWhileWaitingToReconnectTriesOnceMoreAndDelivers) {
  auto syncd = StartConvergedSeedSyncd();
  ASSERT_FALSE(HasFatalFailure());
  sshd_->Stop();
  WriteFile(layout_.sources[2] + "/sess_last", "written just before the failover", 0600);
  ASSERT_TRUE(WaitForRetry(*syncd)) << syncd->log();
  sshd_->Start();
  syncd->Signal(SIGTERM);
  EXPECT_EQ(syncd->Wait(), 0) << syncd->log();
  EXPECT_EQ(ReadFile(layout_.targets[2] + "/sess_last"), "written just before the failover")
      << syncd->log();
}

// ... and a stop when the standby cannot be reached says so with its exit status.
TEST_P(SshCarrierTest, StopWithTheStandbyUnreachableExitsOne) {
  auto syncd = StartConvergedSeedSyncd();
  ASSERT_FALSE(HasFatalFailure());
  sshd_->Stop();
  WriteFile(layout_.sources[2] + "/sess_lost", "cannot get there", 0600);
  ASSERT_TRUE(WaitForRetry(*syncd)) << syncd->log();
  syncd->Signal(SIGTERM);
  EXPECT_EQ(syncd->Wait(), 1) << syncd->log();
  EXPECT_THAT(syncd->log(), HasSubstr("stopping with changes not sent"));
}

// Connections that break while running are retried; nothing changed meanwhile is lost.
TEST_P(SshCarrierTest, BrokenConnectionIsRetriedAndCaughtUp) {
  auto syncd = StartConvergedSeedSyncd();
  ASSERT_FALSE(HasFatalFailure());
  sshd_->Stop();  // Ends the listener and every session, agents included.
  WriteFile(layout_.sources[2] + "/sess_during_outage", "written while the standby was away", 0600);
  ::unlink((layout_.sources[2] + "/sess_a").c_str());
  ASSERT_TRUE(WaitForRetry(*syncd)) << syncd->log();
  sshd_->Start();
  ExpectConverged(layout_, "reconnect");
  EXPECT_TRUE(syncd->running());
}

double Sum(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }
double Max(const std::vector<double>& v) { return v.empty() ? -1 : *std::max_element(v.begin(), v.end()); }

// The standby's sshd is killed (sessions and agents with it) for 20 s while sessions keep
// changing: the lag rises while it is away and falls back to zero once everything is durable,
// the reconnect is counted, and the trees end equal with no temporary file left.
TEST_P(SshCarrierTest, SshdKilledFor20SecondsDuringAStreamOfChanges) {
  std::string metrics = tmp_ / "syncd.prom";
  auto syncd = StartConvergedSeedSyncd("settings { statusFile = '" + tmp_ / "syncd.status" +
                                       "', metricsFile = '" + metrics + "', statusInterval = 1 }\n");
  ASSERT_FALSE(HasFatalFailure());
  auto read = [&](const std::string& metric) { return MetricValues(ReadFile(metrics), metric); };
  ASSERT_TRUE(WaitUntil([&] { return Sum(read("syncd_in_sync")) == 3; })) << ReadFile(metrics);
  EXPECT_EQ(Sum(read("syncd_reconnects_total")), 0);

  SessionWriter writer(layout_.sources[2]);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  sshd_->Stop();
  double highest_lag = 0, highest_pending = 0;
  for (int i = 0; i < 100; ++i) {  // 20 s away.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    highest_lag = std::max(highest_lag, Max(read("syncd_lag_seconds")));
    highest_pending = std::max(highest_pending, Max(read("syncd_pending_changes")));
  }
  EXPECT_GE(highest_lag, 10) << ReadFile(metrics);
  EXPECT_GE(highest_pending, 1) << ReadFile(metrics);
  EXPECT_EQ(Sum(read("syncd_in_sync")), 0) << "no sync can know it is in sync without its peer";
  sshd_->Start();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  writer.Stop();

  ExpectConverged(layout_, "after the outage");
  EXPECT_TRUE(WaitUntil([&] {
    return Sum(read("syncd_in_sync")) == 3 && Max(read("syncd_lag_seconds")) == 0 &&
           Max(read("syncd_pending_changes")) == 0;
  })) << ReadFile(metrics);
  EXPECT_GE(Sum(read("syncd_reconnects_total")), 1) << ReadFile(metrics);
  EXPECT_THAT(TempFiles(osm2_), ::testing::IsEmpty());
  EXPECT_TRUE(syncd->running());
}

// A standby that stops answering without closing anything (its sshd frozen: the kernel still
// acknowledges every packet) is given up after ServerAliveInterval x ServerAliveCountMax, and
// syncd connects again and catches up.
TEST_P(SshCarrierTest, PeerThatStopsAnsweringIsDroppedByTheKeepaliveDeadline) {
  std::unique_ptr<Process> again;
  RestartWithKeepaliveDeadlineOf4Seconds(&again);
  ASSERT_FALSE(HasFatalFailure());
  WriteFile(layout_.sources[2] + "/sess_before", "before the freeze", 0600);
  ExpectConverged(layout_, "restart");

  std::vector<pid_t> sessions = Descendants(sshd_->pid());
  ASSERT_FALSE(sessions.empty());
  for (pid_t p : sessions) ::kill(p, SIGSTOP);
  WriteFile(layout_.sources[2] + "/sess_during", "written while the standby was frozen", 0600);
  // syncd's client counts the silence itself; the OpenSSH client gives up in its own words.
  std::string gave_up = openssh() ? "not responding" : "has not answered for";
  EXPECT_TRUE(WaitUntil([&] { return again->log().find(gave_up) != std::string::npos; }))
      << again->log();
  ExpectConverged(layout_, "after the keepalive deadline");
  for (pid_t p : sessions) ::kill(p, SIGKILL);
  for (pid_t p : sessions) ::kill(p, SIGCONT);
  EXPECT_TRUE(again->running());
}

// It is this side that was held up, not the peer: syncd stopped for longer than the keepalive
// deadline (as a long comparison of a huge tree holds its loop) finds the peer's answers
// waiting, and keeps the connection.
TEST_P(SshCarrierTest, ALongPauseOnThisSideIsNotTakenForASilentPeer) {
  std::unique_ptr<Process> again;
  RestartWithKeepaliveDeadlineOf4Seconds(&again);
  ASSERT_FALSE(HasFatalFailure());
  WriteFile(layout_.sources[2] + "/sess_before", "before the pause", 0600);
  ExpectConverged(layout_, "restart");
  ::kill(again->pid(), SIGSTOP);
  std::this_thread::sleep_for(std::chrono::seconds(7));  // Past the 4 s deadline.
  ::kill(again->pid(), SIGCONT);
  WriteFile(layout_.sources[2] + "/sess_after", "after the pause", 0600);
  ExpectConverged(layout_, "after the pause");
  EXPECT_EQ(again->log().find("has not answered"), std::string::npos) << again->log();
  EXPECT_EQ(again->log().find("retrying in"), std::string::npos) << again->log();
}

// The first copy over a slow link (a relay that passes 1 MiB/s, so 4 MiB take at least 4 s)
// reports its progress; stderr is not a terminal, as under systemd, so it goes to the log.
TEST_P(SshCarrierTest, FirstCopyOverASlowLinkReportsProgress) {
  TrustEachOther();
  sshd_->Start();
  TcpRelay relay(2202, 22, 1 << 20);
  std::vector<std::string> blobs;
  for (uint32_t i = 0; i < 8; ++i) {
    blobs.push_back(syncd::testing::RandomBytes(512 * 1024, i));
    WriteFile(layout_.sources[0] + "/blob" + std::to_string(i), blobs.back());
  }
  std::string line = sshd_->KnownHostsLine("ed25519");
  WriteFile(home_ + "/.ssh/known_hosts", "[127.0.0.1]:2202" + line.substr(line.find(' ')));
  std::string config = tmp_ / "slow.conf.lua";
  WriteFile(config, "sync { default.rsyncssh, source = '" + layout_.sources[0] +
                        "', host = '127.0.0.1', targetdir = '" + layout_.sources[0] +
                        "', " + SshTable("port = 2202, identityFile = '" + key_ + "'") + " }\n",
            0600);
  auto syncd = StartSyncd(config, home_, tmp_ / "syncd.out");
  EXPECT_TRUE(WaitUntil([&] {
    for (uint32_t i = 0; i < blobs.size(); ++i)
      if (ReadFile(layout_.targets[0] + "/blob" + std::to_string(i)) != blobs[i]) return false;
    return true;
  })) << syncd->log();
  EXPECT_THAT(syncd->log(),
              ::testing::ContainsRegex("reconciling: [0-9]+/9 files, [0-9.]+ [KM]iB/4 MiB"));
  EXPECT_TRUE(WaitUntil([&] { return syncd->log().find("in sync with") != std::string::npos; }));
}

TEST_P(SshCarrierTest, PortAndIdentityFromTheConfig) {
  SshServer other(tmp_ / "sshd2222", 2222, {{osm2_, osm1_}});
  other.Authorize(SshServer::MakeUserKey(key_));
  other.Start();
  WriteFile(home_ + "/.ssh/known_hosts", other.KnownHostsLine("ecdsa"));
  WriteFile(layout_.sources[0] + "/f", "via port 2222");
  std::string config = tmp_ / "port.conf.lua";
  WriteFile(config, "settings { insist = true }\n"
                    "sync { default.rsyncssh, source = '" + layout_.sources[0] +
                        "', host = 'root@127.0.0.1', targetdir = '" + layout_.sources[0] +
                        "', rsync = { _extra = {'--rsh=ssh -p 2222 -i " + key_ + "'} }, " +
                        SshTable("") + " }\n");
  auto syncd = StartSyncd(config, home_, tmp_ / "syncd.out");
  EXPECT_TRUE(WaitUntil([&] { return ReadFile(layout_.targets[0] + "/f") == "via port 2222"; }))
      << syncd->log();
}

}  // namespace
}  // namespace syncd::itest
