// Generations on two nodes. osm1 and osm2 are network namespaces joined by a veth pair; each
// node's processes (its syncd, and its sshd with the agents) see that node's own root at one
// common path, as two real hosts do with the same configuration. Each node keeps its history
// in its own state directory (inside its root, at the common path). Roles swap as a cluster
// manager would swap them: the standby's syncd is not running, the active node's is.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <fmt/format.h>

#include "tests/integration/harness.h"
#include "tests/integration/scenario.h"

namespace syncd::itest {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const std::vector<std::string> kFolders = {"/var/spool/ovd/session-manager", "/var/lib/php/sessions"};

class GenerationsTest : public ::testing::Test {
 protected:
  GenerationsTest() : tmp_("generations"), tag_(std::to_string(::getpid() % 100000)) {
    common_ = tmp_ / "node";
    MakeDirs(common_);
    std::string v1 = "g1-" + tag_, v2 = "g2-" + tag_;
    for (int n = 0; n < 2; ++n) {
      Node& node = nodes_[n];
      node.name = n == 0 ? "osm1" : "osm2";
      node.ns = "gen" + std::to_string(n + 1) + "-" + tag_;
      node.ip = n == 0 ? "10.202.0.1" : "10.202.0.2";
      node.root = tmp_ / node.name;
      for (const std::string& f : kFolders) MakeDirs(node.root + f);
    }
    Shell("ip netns add " + nodes_[0].ns + " && ip netns add " + nodes_[1].ns + " && ip link add " +
          v1 + " type veth peer name " + v2 + " && ip link set " + v1 + " netns " + nodes_[0].ns +
          " && ip link set " + v2 + " netns " + nodes_[1].ns + " && ip -n " + nodes_[0].ns +
          " addr add " + nodes_[0].ip + "/24 dev " + v1 + " && ip -n " + nodes_[1].ns + " addr add " +
          nodes_[1].ip + "/24 dev " + v2 + " && ip -n " + nodes_[0].ns + " link set " + v1 +
          " up && ip -n " + nodes_[1].ns + " link set " + v2 + " up && ip -n " + nodes_[0].ns +
          " link set lo up && ip -n " + nodes_[1].ns + " link set lo up");
    home_ = tmp_ / "home";
    MakeDirs(home_ + "/.ssh");
    key_ = tmp_ / "sync_key";
    std::string pub = SshServer::MakeUserKey(key_);
    std::string known;
    for (Node& node : nodes_) {
      node.sshd = std::make_unique<SshServer>(
          tmp_ / ("sshd-" + node.name), 22,
          std::vector<std::pair<std::string, std::string>>{{node.root, common_}}, node.ns, node.ip);
      node.sshd->Authorize(pub, common_ + "/state");
      known += node.sshd->KnownHostsLine("ed25519");
      node.sshd->Start();
    }
    WriteFile(home_ + "/.ssh/known_hosts", known);
  }
  ~GenerationsTest() override {
    for (Node& node : nodes_) {
      node.syncd.reset();
      node.sshd.reset();
    }
    std::system(("ip netns del " + nodes_[0].ns + " 2>/dev/null; ip netns del " + nodes_[1].ns +
                 " 2>/dev/null").c_str());
  }

  struct Node {
    std::string name, ns, ip, root;
    std::unique_ptr<SshServer> sshd;
    std::unique_ptr<Process> syncd;
    int starts = 0;
    std::string config, status, run_dir;
  };
  Node& osm1() { return nodes_[0]; }
  Node& osm2() { return nodes_[1]; }
  Node& Peer(Node& n) { return &n == &nodes_[0] ? nodes_[1] : nodes_[0]; }

  // syncd becomes active on `node`, replicating to the other one.
  void Activate(Node& node, double divergence_limit = 2) {
    node.config = tmp_ / (node.name + ".lua");
    node.status = tmp_ / (node.name + ".status");
    node.run_dir = tmp_ / (node.name + "-run");
    std::string lua = fmt::format(
        "settings {{ insist = true, statusFile = '{}', statusInterval = 1, stateDir = '{}/state', "
        "divergenceLimit = {} }}\n",
        node.status, common_, divergence_limit);
    for (const std::string& f : kFolders)
      lua += fmt::format(
          "sync {{ default.rsyncssh, source = '{0}{1}', host = '{2}', targetdir = '{0}{1}', "
          "exclude = {{ '.*' }}, rsync = {{ archive = true }}, ssh = {{ identityFile = '{3}', "
          "carrier = 'libssh2' }} }}\n",
          common_, f, Peer(node).ip, key_);
    WriteFile(node.config, lua);
    std::filesystem::remove(node.status);  // A report of an earlier run says nothing.
    node.syncd = OnNode(node, "-nodaemon", "syncd" + std::to_string(++node.starts));
  }
  // `syncd ARG CONFIG` on `node`: in its network namespace, seeing its own root.
  std::unique_ptr<Process> OnNode(Node& node, const std::string& arg, const std::string& log) {
    std::string script = "mount --rbind '" + node.root + "' '" + common_ + "' && exec '" +
                         SyncdBinary() + "' " + arg + " '" + node.config + "'";
    return std::make_unique<Process>(
        std::vector<std::string>{"/usr/sbin/ip", "netns", "exec", node.ns, "/usr/bin/unshare",
                                 "--mount", "--propagation", "private", "/bin/sh", "-c", script},
        std::vector<std::string>{"HOME=" + home_, "SSH_AUTH_SOCK=", "SYNCD_RUN_DIR=" + node.run_dir},
        tmp_ / (node.name + "-" + log + ".out"));
  }
  // The node fails: its syncd dies on the spot.
  void Crash(Node& node) {
    node.syncd->Signal(SIGKILL);
    node.syncd->Wait();
  }
  // `syncd CMD CONFIG` for the syncd running on `node`; its exit status and output.
  int Command(Node& node, const std::string& cmd, std::string* out) {
    auto p = OnNode(node, cmd, cmd + std::to_string(++commands_));
    auto status = p->Wait(std::chrono::seconds(90));
    *out = p->log();
    return status.value_or(-1);
  }
  Layout Pair(Node& from) {
    Layout l;
    for (const std::string& f : kFolders) {
      l.sources.push_back(from.root + f);
      l.targets.push_back(Peer(from).root + f);
    }
    l.syncd = from.syncd.get();
    return l;
  }
  bool StatusSays(Node& node, const std::string& state) {
    return WaitUntil([&] {
      std::ifstream in(node.status);
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      return text.find("State: " + state + "\n") != std::string::npos;
    });
  }
  std::string Session(Node& node, const std::string& name) {
    return node.root + "/var/lib/php/sessions/" + name;
  }

  TempDir tmp_;
  std::string tag_, common_, home_, key_;
  Node nodes_[2];
  int commands_ = 0;
};

// osm2 is away while osm1 serves and changes sessions for longer than divergenceLimit; then
// osm1 dies and osm2 is promoted with its old data. When osm1 comes back as the standby,
// osm2's syncd finds osm1 holding changes it never received and leaves osm1 untouched;
// `syncd adopt` brings them to osm2, and then both nodes are the same.
TEST_F(GenerationsTest, DoubleFailureIsRefusedUntilTheOperatorAdopts) {
  WriteFile(Session(osm1(), "sess_before"), "made while both were up", 0600);
  Activate(osm1());
  ExpectConverged(Pair(osm1()), "the first comparison");

  osm2().sshd->Stop();  // osm2 goes down for maintenance.
  WriteFile(Session(osm1(), "sess_alone_1"), "osm1 alone, first", 0600);
  std::this_thread::sleep_for(std::chrono::seconds(3));  // More than divergenceLimit (2 s).
  WriteFile(Session(osm1(), "sess_alone_2"), "osm1 alone, later", 0600);
  WriteFile(Session(osm1(), "sess_before"), "changed while osm2 was away", 0600);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // Its history is written.
  Crash(osm1());

  osm1().sshd->Start();  // osm1 back, as the standby; osm2 promoted, with its old data.
  osm2().sshd->Start();
  Activate(osm2());
  ASSERT_TRUE(StatusSays(osm2(), "diverged")) << osm2().syncd->log();
  std::string log = osm2().syncd->log();
  EXPECT_THAT(log, HasSubstr("diverged: it holds changes this node never received"));
  EXPECT_THAT(log, HasSubstr("unseen on the standby: "));
  EXPECT_THAT(log, HasSubstr("syncd adopt CONFIG"));
  // Nothing osm1 wrote alone is lost.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_EQ(ReadFile(Session(osm1(), "sess_alone_2")), "osm1 alone, later");
  EXPECT_EQ(ReadFile(Session(osm1(), "sess_before")), "changed while osm2 was away");
  std::string out;
  EXPECT_EQ(Command(osm2(), "status", &out), 3) << out;
  EXPECT_THAT(out, HasSubstr("State: diverged"));
  EXPECT_EQ(Command(osm2(), "flush", &out), 1) << out;
  EXPECT_THAT(out, HasSubstr("diverged"));
  // Meanwhile osm2 serves: a session made there goes over once the operator decides.
  WriteFile(Session(osm2(), "sess_on_osm2"), "made on the promoted node", 0600);

  ASSERT_EQ(Command(osm2(), "adopt", &out), 0) << out << osm2().syncd->log();
  EXPECT_THAT(out, HasSubstr("in sync"));
  EXPECT_EQ(ReadFile(Session(osm2(), "sess_alone_1")), "osm1 alone, first");
  EXPECT_EQ(ReadFile(Session(osm2(), "sess_alone_2")), "osm1 alone, later");
  EXPECT_EQ(ReadFile(Session(osm2(), "sess_before")), "changed while osm2 was away");
  ExpectConverged(Pair(osm2()), "after adopting");
  EXPECT_EQ(ReadFile(Session(osm1(), "sess_on_osm2")), "made on the promoted node");

  // And the pair goes on: a later restart of osm2's syncd finds nothing unseen.
  Crash(osm2());
  Activate(osm2());
  ASSERT_TRUE(StatusSays(osm2(), "in sync")) << osm2().syncd->log();
  EXPECT_THAT(osm2().syncd->log(), Not(HasSubstr("never received")));
}

// The same divergence, resolved the other way: osm2's tree wins.
TEST_F(GenerationsTest, DoubleFailureOverwrittenOnTheOperatorsWord) {
  WriteFile(Session(osm1(), "sess_before"), "made while both were up", 0600);
  Activate(osm1());
  ExpectConverged(Pair(osm1()), "the first comparison");
  osm2().sshd->Stop();
  WriteFile(Session(osm1(), "sess_alone_1"), "osm1 alone", 0600);
  std::this_thread::sleep_for(std::chrono::seconds(3));
  WriteFile(Session(osm1(), "sess_alone_2"), "osm1 alone, later", 0600);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  Crash(osm1());
  osm2().sshd->Start();
  Activate(osm2());
  ASSERT_TRUE(StatusSays(osm2(), "diverged")) << osm2().syncd->log();
  std::string out;
  ASSERT_EQ(Command(osm2(), "overwrite", &out), 0) << out << osm2().syncd->log();
  ExpectConverged(Pair(osm2()), "after overwriting");
  EXPECT_FALSE(std::filesystem::exists(Session(osm1(), "sess_alone_1")));
  EXPECT_FALSE(std::filesystem::exists(Session(osm2(), "sess_alone_1")));
}

// The ordinary failover: osm1 dies in the middle of a stream of changes and osm2, which was
// its standby, is promoted. What osm1 had not sent yet is overwritten, said at Warn, with no
// question asked.
TEST_F(GenerationsTest, AnOrdinaryFailoverGoesOnWithoutAQuestion) {
  Activate(osm1());
  ExpectConverged(Pair(osm1()), "the first comparison");
  for (int i = 0; i < 50; ++i) WriteFile(Session(osm1(), "sess_" + std::to_string(i)), "v" + std::to_string(i), 0600);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  for (int i = 0; i < 5; ++i) {
    ::kill(osm1().syncd->pid(), SIGSTOP);  // These never leave osm1.
    WriteFile(Session(osm1(), "sess_in_flight" + std::to_string(i)), "lost in the failover", 0600);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ::kill(osm1().syncd->pid(), SIGCONT);
  Crash(osm1());
  Activate(osm2());
  ExpectConverged(Pair(osm2()), "after the failover");
  EXPECT_TRUE(StatusSays(osm2(), "in sync")) << osm2().syncd->log();
  EXPECT_THAT(osm2().syncd->log(), Not(HasSubstr("diverged")));
}

// A restart of the active node's syncd resumes from its manifest of what the standby holds;
// a standby whose state directory was lost is listed and compared, said at Warn.
TEST_F(GenerationsTest, ARestartAndALostStandbyStateGoOn) {
  WriteFile(Session(osm1(), "sess_a"), "a", 0600);
  Activate(osm1());
  ExpectConverged(Pair(osm1()), "the first comparison");
  EXPECT_THAT(osm1().syncd->log(), Not(HasSubstr("has no history")));  // A fresh pair.
  WriteFile(Session(osm1(), "sess_b"), "b", 0600);
  ExpectConverged(Pair(osm1()), "a change");
  Crash(osm1());
  WriteFile(Session(osm1(), "sess_c"), "made while syncd was down", 0600);
  Activate(osm1());
  ExpectConverged(Pair(osm1()), "after the restart");
  ASSERT_TRUE(StatusSays(osm1(), "in sync"));
  EXPECT_THAT(osm1().syncd->log(), Not(HasSubstr("never received")));
  // It compared with its manifest of what the standby holds, without listing the standby.
  EXPECT_THAT(osm1().syncd->log(), HasSubstr("without listing it"));

  Crash(osm1());
  std::filesystem::remove_all(osm2().root + "/state");
  Activate(osm1());
  ExpectConverged(Pair(osm1()), "after the standby lost its state");
  ASSERT_TRUE(StatusSays(osm1(), "in sync"));
  EXPECT_THAT(osm1().syncd->log(), HasSubstr("has no history"));
  EXPECT_THAT(osm1().syncd->log(), Not(HasSubstr("diverged")));
  EXPECT_THAT(osm1().syncd->log(), Not(HasSubstr("without listing it")));
}

}  // namespace
}  // namespace syncd::itest
