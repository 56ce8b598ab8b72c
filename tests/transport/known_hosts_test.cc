#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "transport/ssh_channel.h"

namespace syncd::transport {
namespace {

using ::testing::ElementsAre;

class KnownHostsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/syncd-kh.XXXXXX";
    int fd = mkstemp(tmpl);
    close(fd);
    path_ = tmpl;
  }
  void TearDown() override { unlink(path_.c_str()); }
  void Write(const std::string& text) { std::ofstream(path_) << text; }
  std::string path_;
};

// libssh2 1.10 would otherwise pick ECDSA first and fail against an ed25519-only entry.
TEST_F(KnownHostsTest, PrefersTheTypesRecordedForTheHost) {
  Write("# comment\nother ecdsa-sha2-nistp256 AAAA\nosm2,10.0.0.2 ssh-ed25519 AAAA\n");
  EXPECT_THAT(KnownHostKeyMethods({path_}, "osm2", 22), ElementsAre("ssh-ed25519"));
  EXPECT_THAT(KnownHostKeyMethods({path_}, "10.0.0.2", 22), ElementsAre("ssh-ed25519"));
}

TEST_F(KnownHostsTest, NonStandardPortUsesBracketForm) {
  Write("[127.0.0.1]:2222 ecdsa-sha2-nistp256 AAAA\n127.0.0.1 ssh-ed25519 AAAA\n");
  EXPECT_THAT(KnownHostKeyMethods({path_}, "127.0.0.1", 2222), ElementsAre("ecdsa-sha2-nistp256"));
}

TEST_F(KnownHostsTest, RsaOffersSha2SignaturesFirst) {
  Write("osm2 ssh-rsa AAAA\n");
  EXPECT_THAT(KnownHostKeyMethods({path_}, "osm2", 22),
              ElementsAre("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"));
}

TEST_F(KnownHostsTest, HashedEntriesContributeTheirTypesWhenNothingPlainMatches) {
  Write("|1|abc=|def= ssh-ed25519 AAAA\n");
  EXPECT_THAT(KnownHostKeyMethods({path_}, "osm2", 22), ElementsAre("ssh-ed25519"));
}

}  // namespace
}  // namespace syncd::transport
