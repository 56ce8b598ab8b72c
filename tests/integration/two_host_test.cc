// Two nodes on one machine: osm1 and osm2 are network namespaces joined by a veth pair, with
// sshd (and so the agent) in osm2 and syncd in osm1, each with its own data root (osm2's sshd
// sees its root at osm1's paths, as on two hosts). Faults are made on purpose; each scenario
// ends with an exact comparison of the seed's trees (nothing lost, nothing torn) and no
// temporary file left on the standby.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/integration/harness.h"
#include "tests/integration/scenario.h"

namespace syncd::itest {
namespace {

// Each scenario runs on both carriers: syncd's own SSH client (libssh2) and the OpenSSH client.
class TwoHostTest : public ::testing::TestWithParam<const char*> {
 protected:
  TwoHostTest()
      : tmp_("twohost"),
        tag_(std::to_string(::getpid() % 100000)),
        ns1_("osm1-" + tag_),
        ns2_("osm2-" + tag_),
        osm1_(tmp_ / "osm1"),
        osm2_(tmp_ / "osm2"),
        home_(tmp_ / "home"),
        key_(tmp_ / "sync_key") {
    std::string v1 = "s1-" + tag_, v2 = "s2-" + tag_;
    Shell("ip netns add " + ns1_ + " && ip netns add " + ns2_ + " && ip link add " + v1 +
          " type veth peer name " + v2 + " && ip link set " + v1 + " netns " + ns1_ +
          " && ip link set " + v2 + " netns " + ns2_ + " && ip -n " + ns1_ + " addr add " +
          kOsm1 + "/24 dev " + v1 + " && ip -n " + ns2_ + " addr add " + kOsm2 + "/24 dev " + v2 +
          " && ip -n " + ns1_ + " link set " + v1 + " up && ip -n " + ns2_ + " link set " + v2 +
          " up && ip -n " + ns1_ + " link set lo up && ip -n " + ns2_ + " link set lo up");
    link2_ = v2;
    MakeDirs(home_ + "/.ssh");
    for (const std::string& folder : kSeedFolders) {
      layout_.sources.push_back(osm1_ + folder);
      layout_.targets.push_back(osm2_ + folder);
      MakeDirs(osm1_ + folder);
      MakeDirs(osm2_ + folder);
    }
    sshd_ = std::make_unique<SshServer>(
        tmp_ / "sshd", 22, std::vector<std::pair<std::string, std::string>>{{osm2_, osm1_}}, ns2_,
        kOsm2);
    sshd_->Authorize(SshServer::MakeUserKey(key_));
    WriteFile(home_ + "/.ssh/known_hosts", sshd_->KnownHostsLine("ed25519"));
    sshd_->Start();
  }
  ~TwoHostTest() override {
    syncd_.reset();
    sshd_.reset();
    std::system(("ip netns del " + ns1_ + " 2>/dev/null; ip netns del " + ns2_ + " 2>/dev/null").c_str());
  }
  // syncd on osm1 with the seed's config, pointed at osm2.
  void StartSyncdOnOsm1() {
    std::string config = tmp_ / "lsyncd.conf.lua";
    WriteFile(config, SeedConfig(osm1_, kOsm2, key_, tmp_ / "lsyncd.log", GetParam()), 0600);
    syncd_ = std::make_unique<Process>(
        std::vector<std::string>{"/usr/sbin/ip", "netns", "exec", ns1_, SyncdBinary(),
                                 "-nodaemon", config},
        std::vector<std::string>{"HOME=" + home_, "SSH_AUTH_SOCK="},
        tmp_ / ("syncd" + std::to_string(++starts_) + ".out"));
    layout_.syncd = syncd_.get();
  }
  void ExpectNothingLostOrTorn(const std::string& step) {
    ExpectConverged(layout_, step);
    EXPECT_THAT(TempFiles(osm2_), ::testing::IsEmpty()) << step;
  }

  static constexpr const char* kOsm1 = "10.201.0.1";
  static constexpr const char* kOsm2 = "10.201.0.2";
  TempDir tmp_;
  std::string tag_, ns1_, ns2_, osm1_, osm2_, home_, key_, link2_;
  Layout layout_;
  std::unique_ptr<SshServer> sshd_;
  std::unique_ptr<Process> syncd_;
  int starts_ = 0;
};

// The link between the nodes goes dead for 15 s (osm2's side of the veth pair down: packets
// vanish without a word, so only a keepalive or a retransmission timeout can tell) while
// sessions keep changing on osm1.
TEST_P(TwoHostTest, LinkCutFor15SecondsDuringAStreamOfChanges) {
  PopulateSeedTrees(layout_);
  StartSyncdOnOsm1();
  ExpectConverged(layout_, "startup");
  SessionWriter writer(layout_.sources[2]);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  Shell("ip -n " + ns2_ + " link set " + link2_ + " down");
  WriteFile(layout_.sources[2] + "/sess_during_cut", "written while the link was down", 0600);
  std::this_thread::sleep_for(std::chrono::seconds(15));
  // The cut was real: nothing crossed it.
  EXPECT_FALSE(std::filesystem::exists(layout_.targets[2] + "/sess_during_cut"));
  Shell("ip -n " + ns2_ + " link set " + link2_ + " up");
  std::this_thread::sleep_for(std::chrono::seconds(1));
  writer.Stop();
  ExpectNothingLostOrTorn("after the link came back");
  EXPECT_EQ(ReadFile(layout_.targets[2] + "/sess_during_cut"), "written while the link was down");
  EXPECT_TRUE(syncd_->running());
  // The two nodes talked over the veth pair, not over loopback.
  EXPECT_THAT(sshd_->log(), ::testing::HasSubstr(std::string("from ") + kOsm1));
}

// syncd killed with SIGKILL in the middle of a stream of changes, then started again: what
// changed while it was down, and what it had in flight, arrives.
TEST_P(TwoHostTest, SyncdKilledMidStreamThenStartedAgain) {
  PopulateSeedTrees(layout_);
  StartSyncdOnOsm1();
  ExpectConverged(layout_, "startup");
  SessionWriter writer(layout_.sources[2]);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  syncd_->Signal(SIGKILL);
  syncd_->Wait();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  StartSyncdOnOsm1();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  writer.Stop();
  ExpectNothingLostOrTorn("after the restart");
}

// The standby is down when syncd starts (insist = true, as in the seed) and comes up 10 s
// later.
TEST_P(TwoHostTest, PeerDownAtStartThenUp10SecondsLater) {
  sshd_->Stop();
  PopulateSeedTrees(layout_);
  StartSyncdOnOsm1();
  std::this_thread::sleep_for(std::chrono::seconds(10));
  EXPECT_TRUE(syncd_->running());
  EXPECT_THAT(syncd_->log(), ::testing::HasSubstr("retrying in"));
  WriteFile(layout_.sources[2] + "/sess_while_down", "before the standby came up", 0600);
  sshd_->Start();
  ExpectNothingLostOrTorn("after the standby came up");
}

// The agent is killed and sshd restarted while a large file is on its way: the standby never
// holds a partial file under the real name, keeps no temporary file, and gets the whole file.
TEST_P(TwoHostTest, AgentKilledAndSshdRestartedMidTransferOfALargeFile) {
  PopulateSeedTrees(layout_);
  StartSyncdOnOsm1();
  ExpectConverged(layout_, "startup");
  std::string big(160 << 20, '\0');
  for (size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>(i >> 12);
  WriteFile(layout_.sources[0] + "/large.bin", big);
  // Once the standby is writing it (a temporary file appears), kill everything on its side.
  EXPECT_TRUE(WaitUntil([&] { return !TempFiles(osm2_).empty(); }, std::chrono::seconds(30)))
      << syncd_->log();
  EXPECT_FALSE(std::filesystem::exists(layout_.targets[0] + "/large.bin"));
  sshd_->Stop();  // sshd, its sessions and the agents, with SIGKILL.
  sshd_->Start();
  ExpectNothingLostOrTorn("after the agent was killed");
  EXPECT_TRUE(syncd_->running());
}

// The standby's filesystem for the sessions fills up, then is given room: the files that did
// not fit are retried until they land, and none is left partial or temporary.
TEST_P(TwoHostTest, StandbyFilesystemFullThenFreed) {
  sshd_->Stop();
  Shell("mount -t tmpfs -o size=1m syncd-full '" + layout_.targets[2] + "'");
  sshd_->Start();  // Its mount namespace, copied now, has the small filesystem.
  PopulateSeedTrees(layout_);
  StartSyncdOnOsm1();
  ExpectConverged(layout_, "startup");
  for (int i = 0; i < 40; ++i)  // 2.5 MiB into 1 MiB.
    WriteFile(layout_.sources[2] + "/sess_big" + std::to_string(i), std::string(64 << 10, 'a' + i % 26), 0600);
  EXPECT_TRUE(WaitUntil([&] { return syncd_->log().find("No space left on device") != std::string::npos; }))
      << syncd_->log();
  Shell("mount -o remount,size=16m '" + layout_.targets[2] + "'");
  ExpectNothingLostOrTorn("after the standby was given room");
  syncd_.reset();  // Before the filesystem goes.
  sshd_->Stop();
  Shell("umount '" + layout_.targets[2] + "'");
}

// 20,000 session files created as fast as the disk allows, more than the inotify queue holds
// (fs.inotify.max_queued_events is 16,384 by default): all arrive.
TEST_P(TwoHostTest, TwentyThousandFilesInABurst) {
  StartSyncdOnOsm1();
  ExpectConverged(layout_, "startup");
  // PHP's session directory is flat. syncd cannot read while the files are made: their 60,000
  // events outrun the kernel's queue (16,384 by default), as a burst outruns a reader on a busy
  // node.
  ::kill(syncd_->pid(), SIGSTOP);
  for (int f = 0; f < 20000; ++f)
    std::ofstream(layout_.sources[2] + "/sess_burst" + std::to_string(f)) << "burst " << f;
  ::kill(syncd_->pid(), SIGCONT);
  ExpectNothingLostOrTorn("after the burst");
  std::string log = syncd_->log();
  EXPECT_THAT(log, ::testing::HasSubstr("inotify queue overflowed"));
  EXPECT_TRUE(syncd_->running());
  size_t comparisons = 0;
  for (size_t at = log.find("in sync with"); at != std::string::npos;
       at = log.find("in sync with", at + 1))
    ++comparisons;
  EXPECT_EQ(comparisons, layout_.sources.size())
      << "the overflow rescans in place; it does not reconnect or restart a sync\n" << log;
}

INSTANTIATE_TEST_SUITE_P(Carriers, TwoHostTest, ::testing::Values("libssh2", "openssh"),
                         [](const auto& p) { return std::string(p.param); });

}  // namespace
}  // namespace syncd::itest
