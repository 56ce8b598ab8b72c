// The seed's lsyncd configuration, byte for byte, on a machine where its folders exist: this
// test gives itself such a machine with overlay mounts over /etc, /var and /root in a mount
// namespace of its own, so nothing on the real machine changes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/integration/harness.h"
#include "tests/integration/scenario.h"

namespace syncd::itest {
namespace {

using ::testing::HasSubstr;

TEST(SeedConfigTest, LoadsUnchanged) {
  TempDir tmp("seed");
  std::string script = "set -e\n";
  for (const char* dir : {"etc", "var", "root"}) {
    std::string d = tmp.path() + "/" + dir;
    script += "mkdir -p " + d + "/upper " + d + "/work\n";
    script += "mount -t overlay overlay -o lowerdir=/" + std::string(dir) + ",upperdir=" + d +
              "/upper,workdir=" + d + "/work /" + dir + "\n";
  }
  for (const std::string& folder : kSeedFolders) script += "mkdir -p " + folder + "\n";
  script += "exec " + SyncdBinary() + " --check " + SourceDir() + "/examples/lsyncd.conf.lua\n";
  WriteFile(tmp / "check.sh", script, 0755);
  Process check({"/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh",
                 tmp / "check.sh"},
                {}, tmp / "out.log");
  ASSERT_EQ(check.Wait(), 0) << check.log();
  std::string out = check.log();
  EXPECT_THAT(out, HasSubstr("3 sync(s)"));
  EXPECT_THAT(out, HasSubstr("/var/lib/php/sessions -> the-other-osm:/var/lib/php/sessions"));
  EXPECT_THAT(out, HasSubstr("ssh: identityFile=/root/.ssh/sync_rsa port=22"));
  EXPECT_THAT(out, HasSubstr("filter: - .*"));
  // The seed's --rsh=ssh -i KEY is understood: no flag is reported as ignored.
  EXPECT_THAT(out, ::testing::Not(HasSubstr("not understood")));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("ignored")));
}

}  // namespace
}  // namespace syncd::itest
