// The seed's deployment over a real sshd: the peer runs in a mount namespace of its own where
// the seed's folders are different directories, so source and target have the same paths, as
// on two nodes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>

#include "tests/integration/harness.h"
#include "tests/integration/scenario.h"

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
  // Starts syncd on the seed's config; its log goes with the layout.
  std::unique_ptr<Process> StartSeedSyncd() {
    std::string config = tmp_ / "lsyncd.conf.lua";
    WriteFile(config, SeedConfig(osm1_, "127.0.0.1", key_, tmp_ / "lsyncd.log"));
    auto syncd = StartSyncd(config, home_, tmp_ / "syncd.out");
    layout_.syncd = syncd.get();
    return syncd;
  }
  // Both nodes trust each other, the seed's trees are populated, and syncd has copied them.
  std::unique_ptr<Process> StartConvergedSeedSyncd() {
    TrustEachOther();
    sshd_->Start();
    PopulateSeedTrees(layout_);
    auto syncd = StartSeedSyncd();
    ExpectConverged(layout_, "startup");
    return syncd;
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
};

TEST_F(SshReplicationTest, SeedConfigReplicatesExactlyAndEveryChangeConverges) {
  auto syncd = StartConvergedSeedSyncd();
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_FALSE(fs::exists(layout_.targets[2] + "/sess_stale"));
  RunLiveChanges(layout_);
  // The three syncs to one host share one SSH session.
  EXPECT_EQ(Count(sshd_->log(), "Accepted publickey"), 1) << sshd_->log();
  syncd->Signal(SIGTERM);
  EXPECT_EQ(syncd->Wait(), 0) << syncd->log();
  EXPECT_THAT(ReadFile(tmp_ / "lsyncd.log"), HasSubstr("in sync with"));
}

TEST_F(SshReplicationTest, UnknownHostKeyStopsWithOneClearLine) {
  sshd_->Authorize(SshServer::MakeUserKey(key_));
  sshd_->Start();
  int status = 0;
  std::string out = RunUntilExit(&status);
  EXPECT_EQ(status, 1) << out;
  EXPECT_EQ(Count(out, "unknown host key for 127.0.0.1"), 1) << out;
  EXPECT_THAT(out, HasSubstr("SHA256:"));
  EXPECT_THAT(out, HasSubstr("ssh-keyscan"));
  ExpectPeerUntouched();
}

TEST_F(SshReplicationTest, ChangedHostKeyStopsWithOneClearLine) {
  sshd_->Authorize(SshServer::MakeUserKey(key_));
  sshd_->Start();
  std::string line = sshd_->KnownHostsLine("ed25519");
  line[line.size() - 5] = line[line.size() - 5] == 'A' ? 'B' : 'A';  // Another key.
  WriteFile(home_ + "/.ssh/known_hosts", line);
  int status = 0;
  std::string out = RunUntilExit(&status);
  EXPECT_EQ(status, 1) << out;
  EXPECT_THAT(out, HasSubstr("does not match known_hosts")) << out;
  ExpectPeerUntouched();
}

TEST_F(SshReplicationTest, RefusedKeyStopsWithOneClearLine) {
  SshServer::MakeUserKey(key_);  // Not authorized on the peer.
  sshd_->Start();
  WriteFile(home_ + "/.ssh/known_hosts", sshd_->KnownHostsLine("ed25519"));
  int status = 0;
  std::string out = RunUntilExit(&status);
  EXPECT_EQ(status, 1) << out;
  EXPECT_EQ(Count(out, "127.0.0.1 refused the key " + key_), 1) << out;
  ExpectPeerUntouched();
}

// The seed names its key sync_rsa. libssh2 1.10 signs RSA with SHA-1 only; OpenSSH 9 refuses
// that, and the message must say so and what to do.
TEST_F(SshReplicationTest, RsaKeyRefusalExplainsTheWayOut) {
  sshd_->Authorize(SshServer::MakeUserKey(key_, "rsa"));
  sshd_->Start();
  WriteFile(home_ + "/.ssh/known_hosts", sshd_->KnownHostsLine("ed25519"));
  int status = 0;
  std::string out = RunUntilExit(&status);
  EXPECT_EQ(status, 1) << out;
  EXPECT_THAT(out, HasSubstr("is an RSA key"));
  EXPECT_THAT(out, HasSubstr("ssh-keygen -t ed25519"));
  ExpectPeerUntouched();
}

// insist = true (the seed's setting): a standby that is down at startup is retried.
TEST_F(SshReplicationTest, PeerDownAtStartupIsRetriedWithInsist) {
  TrustEachOther();
  PopulateSeedTrees(layout_);
  auto syncd = StartSeedSyncd();
  ASSERT_TRUE(WaitForRetry(*syncd)) << syncd->log();
  EXPECT_TRUE(syncd->running());
  sshd_->Start();
  ExpectConverged(layout_, "the standby came up");
}

// Connections that break while running are retried; nothing changed meanwhile is lost.
TEST_F(SshReplicationTest, BrokenConnectionIsRetriedAndCaughtUp) {
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

TEST_F(SshReplicationTest, PortAndIdentityFromTheConfig) {
  SshServer other(tmp_ / "sshd2222", 2222, {{osm2_, osm1_}});
  other.Authorize(SshServer::MakeUserKey(key_));
  other.Start();
  WriteFile(home_ + "/.ssh/known_hosts", other.KnownHostsLine("ecdsa"));
  WriteFile(layout_.sources[0] + "/f", "via port 2222");
  std::string config = tmp_ / "port.conf.lua";
  WriteFile(config, "settings { insist = true }\n"
                    "sync { default.rsyncssh, source = '" + layout_.sources[0] +
                        "', host = 'root@127.0.0.1', targetdir = '" + layout_.sources[0] +
                        "', rsync = { _extra = {'--rsh=ssh -p 2222 -i " + key_ + "'} } }\n");
  auto syncd = StartSyncd(config, home_, tmp_ / "syncd.out");
  EXPECT_TRUE(WaitUntil([&] { return ReadFile(layout_.targets[0] + "/f") == "via port 2222"; }))
      << syncd->log();
}

}  // namespace
}  // namespace syncd::itest
