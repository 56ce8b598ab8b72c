#include "lua/extra_flags.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace syncd::lua {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

TEST(ExtraFlagsTest, RshIdentityPortUserAndOptions) {
  SyncConfig s;
  s.host = "osm2";
  s.rsync.extra = {"--rsh=ssh -p 2222 -l sync -i '/root/my key' -o ConnectTimeout=5"};
  std::vector<std::string> warnings;
  ASSERT_TRUE(ApplyExtraFlags(s, "f:1: sync[1]", warnings));
  EXPECT_EQ(s.ssh.identity_file, "/root/my key");
  EXPECT_EQ(s.ssh.port, 2222);
  EXPECT_EQ(s.host, "sync@osm2");
  EXPECT_EQ(s.ssh.options.at("ConnectTimeout"), "5");
  EXPECT_THAT(warnings, IsEmpty());
}

TEST(ExtraFlagsTest, ExplicitSshIdentityWinsOverRsh) {
  SyncConfig s;
  s.ssh.identity_file = "/keys/a";
  s.rsync.extra = {"--rsh=ssh -i /keys/b"};
  std::vector<std::string> warnings;
  ASSERT_TRUE(ApplyExtraFlags(s, "w", warnings));
  EXPECT_EQ(s.ssh.identity_file, "/keys/a");
}

TEST(ExtraFlagsTest, ShortFlagsAreUnderstoodAndOthersNamed) {
  SyncConfig s;
  s.rsync.extra = {"-avzm", "--numeric-ids", "-X"};
  std::vector<std::string> warnings;
  ASSERT_TRUE(ApplyExtraFlags(s, "f:3: sync[1]", warnings));
  EXPECT_TRUE(s.rsync.archive);
  EXPECT_TRUE(s.rsync.compress);
  EXPECT_TRUE(s.rsync.prune_empty_dirs);
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_THAT(warnings[0], HasSubstr("f:3: sync[1]: rsync._extra: --numeric-ids is not understood"));
  EXPECT_THAT(warnings[1], HasSubstr("-X (in \"-X\")"));
}

TEST(ExtraFlagsTest, ForeignRshProgramIsReported) {
  SyncConfig s;
  s.rsync.extra = {"--rsh=/usr/local/bin/myssh"};
  std::vector<std::string> warnings;
  ASSERT_TRUE(ApplyExtraFlags(s, "w", warnings));
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("\"/usr/local/bin/myssh\" is not run"));
}

TEST(SplitCommandLineTest, Quotes) {
  EXPECT_THAT(SplitCommandLine("ssh -i \"/a b\" -o 'X=1 2'  z"),
              ElementsAre("ssh", "-i", "/a b", "-o", "X=1 2", "z"));
}

}  // namespace
}  // namespace syncd::lua
