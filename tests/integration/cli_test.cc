// The command line as a user meets it: version, help, and configuration errors that stop
// syncd with one line naming the file, the line and the key.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <filesystem>

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

TEST_F(CliTest, ServerRootMustExistAndOnlyAppliesToTheServer) {
  std::string out;
  EXPECT_EQ(Run({"--server", "--root", tmp_ / "missing"}, &out), 2);
  EXPECT_THAT(out, HasSubstr("missing: No such file or directory"));
  EXPECT_EQ(Run({"--server", "--root", "relative/dir"}, &out), 2);
  EXPECT_THAT(out, HasSubstr("expected an absolute directory"));
  EXPECT_EQ(Run({"--root", tmp_.path(), Config("sync { default.rsync, source = '" + tmp_ / "src" +
                                                   "', target = '/tmp/x' }")},
                &out),
            2);
  EXPECT_THAT(out, HasSubstr("-root applies to --server only"));
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
                         " rsync = { archive = true, inplace = true, _extra = {'-v'} } }\n");
  std::string out;
  EXPECT_EQ(Run({"--check", c}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("Sync1 (rsyncssh, " + c + ":1): " + tmp_ / "src" + " -> osm2:/t"));
  EXPECT_THAT(out, HasSubstr("keeps: perms=true owner=true group=true times=true"));
  EXPECT_THAT(out, HasSubstr("differs from lsyncd: -v: output only"));
  EXPECT_THAT(out, HasSubstr("differs from lsyncd: excluded entries the standby holds inside a "
                             "renamed directory move with it"));
  EXPECT_THAT(out, HasSubstr("differs from lsyncd: no delay: a change goes out once the file "
                             "is closed"));
  EXPECT_THAT(out, HasSubstr("differs from lsyncd: --inplace: files are written under a "
                             "temporary name and renamed into place"));
}

TEST_F(CliTest, CheckShowsTheCustomLayersOfEachSync) {
  std::string c = Config("bash = { delay = 5, onCreate = 'cp -r ^sourcePath ^targetPathdir',\n"
                         "  onDelete = '/bin/rm -rf ^targetPath', onMove = function(o, d) end }\n"
                         "sync { bash, source = '" + tmp_ / "src" + "', target = '/srv/t/' }\n"
                         "sync { default.rsync, source = '" + tmp_ / "src" + "', target = '/srv/u',\n"
                         "  action = function(inlet) return default.rsync.action(inlet) end }\n");
  std::string out;
  EXPECT_EQ(Run({"--check", c}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("Sync1 (custom layers, " + c + ":3): " + tmp_ / "src" + " -> target '/srv/t/'"));
  EXPECT_THAT(out, HasSubstr("  layers: onCreate (shell command), onDelete (command), onMove (function)\n"));
  EXPECT_THAT(out, HasSubstr("  delay=5s maxDelays=1000\n"));
  EXPECT_THAT(out, HasSubstr("Sync2 (rsync, " + c + ":4): " + tmp_ / "src" + " -> /srv/u"));
  EXPECT_THAT(out, HasSubstr("  layers over default.rsync: action (function)"));
}

TEST_F(CliTest, AnOptionThatCannotBeCarriedStopsTheStartWithItsReason) {
  std::string c = Config("sync { default.rsync, source = '" + tmp_ / "src" + "', target = '" +
                         tmp_ / "dst" + "',\n rsync = { _extra = { '--files-from=/etc/list' } } }\n");
  std::string out;
  EXPECT_EQ(Run({"--check", c}, &out), 1);
  EXPECT_EQ(out, "syncd: " + c + ":1: sync[1].rsync._extra: --files-from=/etc/list is refused: "
                 "syncd replicates the whole source tree; use filter rules to choose what is "
                 "sent\n");
}

// lsyncd's command-line syncs: no config file, one sync per -rsync/-rsyncssh/-direct.
TEST_F(CliTest, CommandLineSyncsReplicateWithoutAConfigFile) {
  MakeDirs(tmp_ / "src/sub");
  WriteFile(tmp_ / "src/sub/a", "hello");
  Process p({SyncdBinary(), "-nodaemon", "-rsync", tmp_ / "src", tmp_ / "dst"},
            {"HOME=" + tmp_.path()}, tmp_ / "run.log");
  ASSERT_TRUE(WaitUntil([&] { return p.log().find("in sync with") != std::string::npos; }))
      << p.log();
  EXPECT_EQ(ReadFile(tmp_ / "dst/sub/a"), "hello");
  WriteFile(tmp_ / "src/b", "live");
  ASSERT_TRUE(WaitUntil([&] { return ReadFile(tmp_ / "dst/b") == "live"; })) << p.log();
  p.Signal(SIGTERM);
  EXPECT_EQ(p.Wait(), 0);

  std::string out;
  EXPECT_EQ(Run({"--check", "-rsyncssh", tmp_ / "src", "osm2", "/srv/t", "-sshopts",
                 "-p 2222 -i /k/id", "-direct", tmp_ / "src", tmp_ / "copy"},
                &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("Sync1 (rsyncssh, command line:1): " + tmp_ / "src" + " -> osm2:/srv/t"));
  EXPECT_THAT(out, HasSubstr("ssh: identityFile=/k/id port=2222"));
  EXPECT_THAT(out, HasSubstr("Sync2 (direct, command line:2): " + tmp_ / "src" + " -> " + tmp_ / "copy"));
  EXPECT_EQ(Run({"-rsync", tmp_ / "src"}, &out), 2);
  EXPECT_THAT(out, HasSubstr("-rsync needs 2 arguments"));
  EXPECT_EQ(Run({"-rsync", tmp_ / "src", tmp_ / "dst", Config("")}, &out), 2);
  EXPECT_THAT(out, HasSubstr("there cannot be command-line syncs and a config file together"));
}

// Under systemd, stderr is the journal's stream (JOURNAL_STREAM names its device and inode):
// lines carry their priority for journald and leave the timestamp to it.
TEST_F(CliTest, LinesToTheJournalCarryTheirPriority) {
  std::string c = Config("sync { default.rsync, source = '" + tmp_ / "src" + "', target = '" +
                         tmp_ / "dst" + "' }\n");
  ::chmod(c.c_str(), 0644);  // Warned: readable by everyone.
  std::string log = tmp_ / "journal.log";
  WriteFile(log, "");
  struct stat st;
  ASSERT_EQ(::stat(log.c_str(), &st), 0);
  Process p({SyncdBinary(), "-nodaemon", c},
            {"HOME=" + tmp_.path(), "JOURNAL_STREAM=" + std::to_string(st.st_dev) + ":" +
                                        std::to_string(st.st_ino)},
            log);
  ASSERT_TRUE(WaitUntil([&] { return p.log().find("in sync with") != std::string::npos; }))
      << p.log();
  p.Signal(SIGTERM);
  EXPECT_EQ(p.Wait(), 0);
  EXPECT_THAT(p.log(), HasSubstr("\n<6>Normal: Sync1: in sync with"));
  EXPECT_THAT(p.log(), ::testing::ContainsRegex("(^|\n)<4>Warn: .*readable by everyone"));
  EXPECT_THAT(p.log(), ::testing::Not(::testing::ContainsRegex("\n20[0-9][0-9]-")));
}

// Out of inotify watches (a user namespace of its own with a limit of 10, so that nothing else
// on the machine is touched): syncd stops with how many the tree needs and the sysctl to raise.
TEST_F(CliTest, OutOfInotifyWatchesSaysHowManyAreNeededAndHowToRaiseTheLimit) {
  for (int i = 0; i < 30; ++i) MakeDirs(tmp_ / "src/d" + std::to_string(i));
  std::string c = Config("sync { default.rsync, source = '" + tmp_ / "src" + "', target = '" +
                         tmp_ / "dst" + "' }\n");
  Process p({"/usr/bin/unshare", "-U", "-r", "/bin/sh", "-c",
             "echo 10 > /proc/sys/user/max_inotify_watches && exec \"$0\" -nodaemon \"$1\"",
             SyncdBinary(), c},
            {"HOME=" + tmp_.path()}, tmp_ / "limited.log");
  EXPECT_EQ(p.Wait(), 1) << p.log();
  EXPECT_THAT(p.log(), HasSubstr("this sync needs one per directory, 31 in all"));
  EXPECT_THAT(p.log(), HasSubstr("limit of 10 watches per user"));
  EXPECT_THAT(p.log(), HasSubstr("sysctl -w fs.inotify.max_user_watches="));
}

// Without nodaemon syncd detaches as lsyncd does; the pidfile names the daemon and goes away
// when it stops.
TEST_F(CliTest, DaemonDetachesWithPidfileAndLogfile) {
  std::string c = Config("settings { logfile = '" + tmp_ / "syncd.log" + "', pidfile = '" +
                         tmp_ / "syncd.pid" + "' }\nsync { default.rsync, source = '" +
                         tmp_ / "src" + "', target = '" + tmp_ / "dst" + "' }\n");
  std::string out;
  ASSERT_EQ(Run({c}, &out), 0) << out;  // The foreground process returns once detached.
  ASSERT_TRUE(WaitUntil([&] { return !ReadFile(tmp_ / "syncd.pid").empty(); }));
  pid_t pid = std::stoi(ReadFile(tmp_ / "syncd.pid"));
  EXPECT_EQ(::kill(pid, 0), 0) << "the daemon named in the pidfile is not running";
  ASSERT_EQ(::kill(pid, SIGUSR1), 0);  // What logrotate sends: harmless.
  EXPECT_TRUE(WaitUntil([&] {
    return ReadFile(tmp_ / "syncd.log").find("SIGUSR1") != std::string::npos;
  })) << ReadFile(tmp_ / "syncd.log");
  EXPECT_EQ(::kill(pid, 0), 0) << "SIGUSR1 killed the daemon";
  WriteFile(tmp_ / "src/f", "replicated by the daemon");
  EXPECT_TRUE(WaitUntil([&] { return ReadFile(tmp_ / "dst/f") == "replicated by the daemon"; }))
      << ReadFile(tmp_ / "syncd.log");
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  EXPECT_TRUE(WaitUntil([&] { return ::kill(pid, 0) != 0; }));
  EXPECT_FALSE(std::filesystem::exists(tmp_ / "syncd.pid"));
  EXPECT_THAT(ReadFile(tmp_ / "syncd.log"), HasSubstr("SIGTERM: sending pending changes"));
}

}  // namespace
}  // namespace syncd::itest
