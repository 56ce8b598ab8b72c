#include "lua/ssh_settings.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace syncd::lua {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

SyncConfig WithRsh(const std::string& rsh) {
  SyncConfig s;
  s.host = "osm2";
  s.rsync.rsh = rsh;
  return s;
}

std::string Refusal(const std::string& rsh) {
  SyncConfig s = WithRsh(rsh);
  auto r = ApplySshSettings(s, "f:1: sync[1]");
  return r ? std::string("(accepted)") : r.error().message;
}

TEST(SshSettingsTest, RshIdentityPortUserAndOptions) {
  SyncConfig s = WithRsh("ssh -p 2222 -l sync -i '/root/my key' -o ConnectTimeout=5 -qT");
  ASSERT_TRUE(ApplySshSettings(s, "f:1: sync[1]"));
  EXPECT_EQ(s.ssh.identity_file, "/root/my key");
  EXPECT_EQ(s.ssh.port, 2222);
  EXPECT_EQ(s.host, "sync@osm2");
  EXPECT_EQ(s.ssh.options.at("ConnectTimeout"), "5");
  EXPECT_EQ(s.ssh.carrier, SshCarrier::kAuto);
  EXPECT_THAT(s.notes, IsEmpty());
}

TEST(SshSettingsTest, AttachedValuesAndCaseInsensitiveKeys) {
  SyncConfig s = WithRsh("/usr/bin/ssh -p2200 -i/k/id -ostricthostkeychecking=no");
  ASSERT_TRUE(ApplySshSettings(s, "w"));
  EXPECT_EQ(s.ssh.port, 2200);
  EXPECT_EQ(s.ssh.identity_file, "/k/id");
  EXPECT_EQ(s.ssh.options.at("StrictHostKeyChecking"), "no");
}

TEST(SshSettingsTest, ExplicitSshIdentityWinsOverRsh) {
  SyncConfig s = WithRsh("ssh -i /keys/b");
  s.ssh.identity_file = "/keys/a";
  ASSERT_TRUE(ApplySshSettings(s, "w"));
  EXPECT_EQ(s.ssh.identity_file, "/keys/a");
}

TEST(SshSettingsTest, PasswordsWrappersAndForeignProgramsAreRefused) {
  EXPECT_THAT(Refusal("sshpass -p root ssh -p 22"),
              HasSubstr("f:1: sync[1]: rsh \"sshpass -p root ssh -p 22\" is refused: sshpass "
                        "gives ssh a password"));
  EXPECT_THAT(Refusal("/usr/local/bin/myssh"), HasSubstr("not \"/usr/local/bin/myssh\""));
  EXPECT_THAT(Refusal("nice ssh"), HasSubstr("not \"nice\""));
  EXPECT_THAT(Refusal("ssh -p"), HasSubstr("-p needs a value"));
  EXPECT_THAT(Refusal("ssh -p twenty"), HasSubstr("-p twenty: not a port"));
  EXPECT_THAT(Refusal("ssh -t"), HasSubstr("-t: a terminal"));
  EXPECT_THAT(Refusal("ssh -L 80:x:80"), HasSubstr("-L: syncd's connection makes no forwarding"));
  EXPECT_THAT(Refusal("ssh otherhost"), HasSubstr("\"otherhost\" is not an ssh option"));
}

TEST(SshSettingsTest, WhatOnlyOpenSshCarriesMovesTheSyncToIt) {
  SyncConfig s = WithRsh("ssh -c aes256-gcm@openssh.com -F /etc/sync/ssh_config");
  ASSERT_TRUE(ApplySshSettings(s, "w"));
  EXPECT_EQ(s.ssh.carrier, SshCarrier::kOpenSsh);
  EXPECT_EQ(s.ssh.options.at("Ciphers"), "aes256-gcm@openssh.com");
  EXPECT_THAT(s.ssh.extra, ElementsAre("-F", "/etc/sync/ssh_config"));
  ASSERT_EQ(s.notes.size(), 1u);
  EXPECT_THAT(s.notes[0], HasSubstr("Ciphers, -F /etc/sync/ssh_config: connects with OpenSSH's"));

  SyncConfig pinned = WithRsh("ssh -c aes256-gcm@openssh.com");
  pinned.ssh.carrier = SshCarrier::kLibssh2;
  auto r = ApplySshSettings(pinned, "w");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("ssh.carrier is \"libssh2\""));
}

TEST(SshSettingsTest, LocalTargetsRunNoSsh) {
  SyncConfig s;
  s.rsync.rsh = "sshpass -p x ssh";
  ASSERT_TRUE(ApplySshSettings(s, "w"));
  EXPECT_THAT(s.notes, ElementsAre(HasSubstr("the target is local")));
}

TEST(SplitCommandLineTest, QuotesAndEscapes) {
  EXPECT_THAT(SplitCommandLine("ssh -i \"/a b\" -o 'X=1 2'  z"),
              ElementsAre("ssh", "-i", "/a b", "-o", "X=1 2", "z"));
  EXPECT_THAT(SplitCommandLine(R"(ssh -i /a\ b "q\"x" 'n\o')"),
              ElementsAre("ssh", "-i", "/a b", "q\"x", "n\\o"));
}

}  // namespace
}  // namespace syncd::lua
