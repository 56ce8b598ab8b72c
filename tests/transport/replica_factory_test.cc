// The OpenSSH client command line of the external carrier, built from a sync's settings.
#include "transport/replica_factory.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace syncd::transport {
namespace {

using ::testing::ElementsAre;
using ::testing::Contains;
using ::testing::Not;

// The value after `flag` in argv for every occurrence, in order.
std::vector<std::string> Values(const std::vector<std::string>& argv, const std::string& flag) {
  std::vector<std::string> out;
  for (size_t i = 0; i + 1 < argv.size(); ++i)
    if (argv[i] == flag) out.push_back(argv[i + 1]);
  return out;
}

TEST(OpenSshCommandTest, CarriesTheSyncsKeyPortUserAndOptions) {
  SyncConfig s;
  s.host = "sync@osm2.priv";
  s.ssh.identity_file = "/root/.ssh/sync_rsa";
  s.ssh.port = 2222;
  s.ssh.options = {{"ProxyJump", "bastion"}, {"ServerAliveInterval", "10"},
                   {"UserKnownHostsFile", "/etc/syncd/known_hosts"}};
  std::vector<std::string> argv = OpenSshCommand(s);
  EXPECT_EQ(argv.front(), "/usr/bin/ssh");
  EXPECT_THAT(Values(argv, "-i"), ElementsAre("/root/.ssh/sync_rsa"));
  EXPECT_THAT(Values(argv, "-p"), ElementsAre("2222"));
  EXPECT_THAT(Values(argv, "-l"), ElementsAre("sync"));
  std::vector<std::string> o = Values(argv, "-o");
  EXPECT_THAT(o, Contains("BatchMode=yes"));
  EXPECT_THAT(o, Contains("ProxyJump=bastion"));
  // The config's values, not syncd's defaults, for what it sets.
  EXPECT_THAT(o, Contains("ServerAliveInterval=10"));
  EXPECT_THAT(o, Not(Contains("ServerAliveInterval=5")));
  EXPECT_THAT(o, Contains("UserKnownHostsFile=/etc/syncd/known_hosts"));
  EXPECT_THAT(o, Contains("ServerAliveCountMax=3"));
  // Host and remote command last, after "--", so that a host cannot pass for an option.
  ASSERT_GE(argv.size(), 3u);
  EXPECT_THAT(std::vector<std::string>(argv.end() - 3, argv.end()),
              ElementsAre("--", "osm2.priv", "syncd --server"));
}

TEST(OpenSshCommandTest, BinaryAndExtraArgumentsFromTheConfig) {
  SyncConfig s;
  s.host = "osm2";
  s.ssh.binary = "/opt/openssh/bin/ssh";
  s.ssh.extra = {"-F", "/etc/syncd/ssh_config"};
  std::vector<std::string> argv = OpenSshCommand(s);
  EXPECT_EQ(argv.front(), "/opt/openssh/bin/ssh");
  EXPECT_THAT(Values(argv, "-F"), ElementsAre("/etc/syncd/ssh_config"));
  EXPECT_THAT(Values(argv, "-l"), ElementsAre());
  EXPECT_THAT(Values(argv, "-i"), ElementsAre());
}

}  // namespace
}  // namespace syncd::transport
