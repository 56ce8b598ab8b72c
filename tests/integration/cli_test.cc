// The command line as a user meets it: version, help, and configuration errors that stop
// syncd with one line naming the file, the line and the key.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace syncd::itest {
namespace {

using ::testing::HasSubstr;

class CliTest : public ::testing::Test {
 protected:
  CliTest() : tmp_("cli") { MakeDirs(tmp_ / "src"); }
  // Runs syncd with `args`; returns the exit status and fills `out`.
  int Run(std::vector<std::string> args, std::string* out) {
    args.insert(args.begin(), SyncdBinary());
    Process p(args, {"HOME=" + tmp_.path()}, tmp_ / "out.log");
    int status = p.Wait().value_or(-1);
    *out = p.log();
    Shell("rm -f " + tmp_ / "out.log");
    return status;
  }
  std::string Config(const std::string& text) {
    WriteFile(tmp_ / "c.lua", text);
    return tmp_ / "c.lua";
  }
  TempDir tmp_;
};

TEST_F(CliTest, VersionAndHelp) {
  std::string out;
  EXPECT_EQ(Run({"--version"}, &out), 0);
  EXPECT_THAT(out, HasSubstr("syncd "));
  EXPECT_EQ(Run({"-help"}, &out), 0);
  EXPECT_THAT(out, HasSubstr("-nodaemon"));
  EXPECT_EQ(Run({"-bogus"}, &out), 2);
  EXPECT_THAT(out, HasSubstr("unknown option -bogus"));
}

TEST_F(CliTest, WrongTypeIsOneLineWithFileLineAndKey) {
  std::string c = Config("settings { nodaemon = true }\nsync { default.rsyncssh, source = '" +
                         tmp_ / "src" + "', host = 'p', targetdir = '/t', delay = 'fast' }\n");
  std::string out;
  EXPECT_EQ(Run({c}, &out), 1);
  EXPECT_EQ(out, "syncd: " + c + ":2: sync[1].delay: expected a number, got string\n");
}

TEST_F(CliTest, UnknownKeyAndMissingSourceAreOneLineEach) {
  std::string out;
  std::string c = Config("sync { default.rsyncssh, source = '" + tmp_ / "src" +
                         "', host = 'p', targetdir = '/t', excludes = {'x'} }\n");
  EXPECT_EQ(Run({c}, &out), 1);
  EXPECT_EQ(out, "syncd: " + c + ":1: sync[1].excludes: unknown key\n");
  c = Config("sync { default.rsyncssh, source = '/no/such/dir', host = 'p', targetdir = '/t' }\n");
  EXPECT_EQ(Run({c}, &out), 1);
  EXPECT_EQ(out, "syncd: " + c + ":1: sync[1].source: /no/such/dir: No such file or directory\n");
}

TEST_F(CliTest, CheckPrintsTheEffectiveConfiguration) {
  std::string c = Config("sync { default.rsyncssh, source = '" + tmp_ / "src" +
                         "', host = 'osm2', targetdir = '/t', exclude = {'.*'},"
                         " rsync = { archive = true, _extra = {'--bwlimit=100'} } }\n");
  std::string out;
  EXPECT_EQ(Run({"--check", c}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("Sync1 (rsyncssh, " + c + ":1): " + tmp_ / "src" + " -> osm2:/t"));
  EXPECT_THAT(out, HasSubstr("keeps: perms=true owner=true group=true times=true"));
  EXPECT_THAT(out, HasSubstr("--bwlimit=100 is not understood by syncd; ignored"));
}

}  // namespace
}  // namespace syncd::itest
