// statusFile, its JSON and the Prometheus metrics file, and `syncd status`, against a real
// local agent that the test freezes (SIGSTOP) to make the peer fall behind.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <thread>

#include "tests/integration/harness.h"

namespace syncd::itest {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// The value of `metric` for the one sync in a Prometheus text file; -1 if absent.
double Metric(const std::string& text, const std::string& metric) {
  std::smatch m;
  std::regex re("\n" + metric + "\\{[^}]*\\} ([0-9.e+-]+)");
  std::string padded = "\n" + text;
  if (!std::regex_search(padded, m, re)) return -1;
  return std::stod(m[1]);
}

class StatusTest : public ::testing::Test {
 protected:
  StatusTest() : tmp_("status") {
    MakeDirs(src_);
    config_ = tmp_ / "c.lua";
    WriteFile(config_, "settings { statusFile = '" + status_ + "', metricsFile = '" + metrics_ +
                           "', statusInterval = 1 }\n"
                           "sync { default.rsync, source = '" + src_ + "', target = '" + dst_ +
                           "', exclude = { '.*' }, rsync = { archive = true } }\n",
              0600);
  }
  double Read(const std::string& metric) {
    return Metric(ReadFile(metrics_), metric);
  }
  // Runs `syncd status CONFIG`; returns its exit status and fills `out`.
  int Status(std::string* out) { return Cli({"status", config_}, out); }
  // Starts syncd with the fault injector preloaded and switched on through `flag_var`, the
  // name of a file it watches (made here, `flag_name` in the temporary directory); fills `flag`.
  std::unique_ptr<Process> StartFaulty(const std::string& flag_var, const std::string& flag_name,
                                       std::string* flag) {
    *flag = tmp_ / flag_name;
    WriteFile(*flag, "");
    return std::make_unique<Process>(
        std::vector<std::string>{SyncdBinary(), "-nodaemon", config_},
        std::vector<std::string>{"HOME=" + tmp_.path(), "LD_PRELOAD=" SYNCD_EIO_SHIM, flag_var + "=" + *flag},
        tmp_ / "syncd.log");
  }
  int Cli(std::vector<std::string> args, std::string* out) {
    args.insert(args.begin(), SyncdBinary());
    Process p(args, {"HOME=" + tmp_.path()}, tmp_ / "status.out");
    int rc = p.Wait().value_or(-1);
    *out = p.log();
    fs::remove(tmp_ / "status.out");
    return rc;
  }
  TempDir tmp_;
  std::string src_ = tmp_ / "src", dst_ = tmp_ / "dst";
  std::string status_ = tmp_ / "syncd.status", metrics_ = tmp_ / "syncd.prom";
  std::string config_;
};

TEST_F(StatusTest, ReportsLagPendingAndFailuresAsTheyHappen) {
  auto syncd = StartSyncd(config_, tmp_.path(), tmp_ / "syncd.log");
  ASSERT_TRUE(WaitUntil([&] { return Read("syncd_in_sync") == 1; })) << syncd->log();
  for (int i = 0; i < 20; ++i) WriteFile(src_ + "/sess_" + std::to_string(i), "data");
  // 20 files, and the directory's time once they are in.
  ASSERT_TRUE(WaitUntil([&] {
    return Read("syncd_operations_total") >= 21 && Read("syncd_pending_changes") == 0 &&
           Read("syncd_in_sync") == 1;
  })) << ReadFile(metrics_);
  EXPECT_EQ(Read("syncd_lag_seconds"), 0);
  EXPECT_GE(Read("syncd_bytes_total"), 20 * 4);
  EXPECT_EQ(Read("syncd_failures_total"), 0);
  EXPECT_EQ(Read("syncd_watches"), 1);
  EXPECT_GT(Read("syncd_last_success_timestamp_seconds"), 1.7e9);
  std::string out;
  EXPECT_EQ(Status(&out), 0) << out;
  EXPECT_THAT(out, HasSubstr("State: in sync"));
  EXPECT_THAT(out, HasSubstr("exclude .*"));
  EXPECT_THAT(ReadFile(status_ + ".json"), HasSubstr("\"name\": \"Sync1\", \"source\": \"" + src_));

  // The peer stops answering: what is written waits, and the lag grows with its age.
  std::vector<pid_t> agents = Descendants(syncd->pid());
  ASSERT_EQ(agents.size(), 1u);
  ASSERT_EQ(::kill(agents[0], SIGSTOP), 0);
  for (int i = 0; i < 5; ++i) WriteFile(src_ + "/late_" + std::to_string(i), "late");
  EXPECT_TRUE(WaitUntil([&] {
    return Read("syncd_pending_changes") >= 5 && Read("syncd_lag_seconds") >= 2;
  })) << ReadFile(metrics_);
  EXPECT_EQ(Read("syncd_in_sync"), 0);
  EXPECT_EQ(Status(&out), 3) << out;
  EXPECT_THAT(out, HasSubstr("State: sending"));
  // The five files, and the directory whose time they changed; one batch may be in flight.
  EXPECT_THAT(out, ::testing::ContainsRegex("There are [5-9] delays"));

  // It answers again: everything arrives and the lag falls back to zero.
  ASSERT_EQ(::kill(agents[0], SIGCONT), 0);
  EXPECT_TRUE(WaitUntil([&] {
    return Read("syncd_in_sync") == 1 && Read("syncd_lag_seconds") == 0 &&
           Read("syncd_pending_changes") == 0;
  })) << ReadFile(metrics_);
  EXPECT_EQ(ReadFile(dst_ + "/late_4"), "late");

  // A path the peer refuses is counted (and retried).
  MakeDirs(src_ + "/d");
  WriteFile(src_ + "/d/f", "v1");
  ASSERT_TRUE(WaitUntil([&] { return fs::exists(dst_ + "/d/f"); }));
  fs::remove_all(dst_ + "/d");
  std::ofstream(src_ + "/d/f") << "v2";
  EXPECT_TRUE(WaitUntil([&] { return Read("syncd_failures_total") >= 1; })) << ReadFile(metrics_);
  EXPECT_TRUE(WaitUntil([&] { return fs::exists(dst_ + "/d/f") && Read("syncd_in_sync") == 1; }));

  syncd->Signal(SIGTERM);
  EXPECT_EQ(syncd->Wait(), 0);
  EXPECT_THAT(ReadFile(status_), HasSubstr("State: stopped"));
  EXPECT_EQ(Status(&out), 3) << out;
}

TEST_F(StatusTest, StatusWithoutAStatusFileSaysSo) {
  WriteFile(config_, "sync { default.rsync, source = '" + src_ + "', target = '" + dst_ + "' }\n");
  std::string out;
  EXPECT_EQ(Status(&out), 1);
  EXPECT_THAT(out, HasSubstr("sets no statusFile"));
}

// A source file that cannot be read (EIO, from a fault injector preloaded into syncd) is an
// error, said once, and the sync is not "in sync" while it lasts: the status file, its JSON,
// the metrics and `syncd status` say which path fails. Once it reads again it goes over.
TEST_F(StatusTest, UnreadableSourceFileIsAnErrorUntilItGoesOver) {
  WriteFile(src_ + "/unreadable_sess", "data behind a bad sector");
  WriteFile(src_ + "/fine", "fine");
  std::string flag;
  auto process = StartFaulty("SYNCD_EIO_FLAG", "eio_on", &flag);
  Process& syncd = *process;
  ASSERT_TRUE(WaitUntil([&] { return fs::exists(dst_ + "/fine"); })) << syncd.log();
  ASSERT_TRUE(WaitUntil([&] { return Read("syncd_failing_paths") == 1; })) << syncd.log();
  EXPECT_FALSE(fs::exists(dst_ + "/unreadable_sess"));
  EXPECT_EQ(Read("syncd_in_sync"), 0);
  std::string out;
  EXPECT_EQ(Status(&out), 3) << out;
  EXPECT_THAT(ReadFile(status_), HasSubstr("unreadable_sess"));
  EXPECT_THAT(ReadFile(status_ + ".json"), HasSubstr("\"failing_paths\": [\"unreadable_sess\"]"));
  // A few retries later: still one error line for the path, with the cause.
  std::this_thread::sleep_for(std::chrono::seconds(3));
  std::string log = syncd.log();
  size_t errors = 0;
  for (size_t at = 0; (at = log.find("Error: Sync1: unreadable_sess", at)) != std::string::npos; ++at) ++errors;
  EXPECT_EQ(errors, 1u) << log;
  EXPECT_THAT(log, HasSubstr("Input/output error"));
  // A flush tries it once more and says which path keeps it from being done, and why.
  EXPECT_EQ(Cli({"flush", "-timeout", "60", config_}, &out), 1) << out;
  EXPECT_THAT(out, HasSubstr("unreadable_sess: "));
  EXPECT_THAT(out, HasSubstr("Input/output error"));
  fs::remove(flag);  // The disk is readable again.
  ASSERT_TRUE(WaitUntil([&] { return fs::exists(dst_ + "/unreadable_sess"); }, std::chrono::seconds(60)))
      << syncd.log();
  EXPECT_TRUE(WaitUntil([&] { return Read("syncd_failing_paths") == 0 && Read("syncd_in_sync") == 1; }));
  EXPECT_EQ(Cli({"flush", config_}, &out), 0) << out;
  syncd.Signal(SIGTERM);
  EXPECT_EQ(syncd.Wait(), 0);
}

// The startup comparison waits for the scan of the source without holding the event loop: while
// a lookup of the scan hangs (a fault injector preloaded into syncd), a request on the control
// socket is answered and the status file says the sync is reconciling. Once the disk answers,
// the comparison goes on and the files go over.
TEST_F(StatusTest, TheLoopAnswersWhileTheStartupScanWaitsForTheDisk) {
  WriteFile(src_ + "/stall_sess", "behind a hung disk");
  WriteFile(src_ + "/fine", "fine");
  std::string flag;
  auto process = StartFaulty("SYNCD_STALL_FLAG", "stall_on", &flag);
  Process& syncd = *process;
  ASSERT_TRUE(WaitUntil([&] { return fs::exists(flag + ".stalled"); })) << syncd.log();
  std::string out;
  EXPECT_EQ(Cli({"adopt", config_}, &out), 1) << out << syncd.log();
  EXPECT_THAT(out, HasSubstr("no sync has found its standby diverged"));
  EXPECT_TRUE(WaitUntil([&] { return ReadFile(status_).find("reconciling") != std::string::npos; }))
      << ReadFile(status_);
  EXPECT_FALSE(fs::exists(dst_ + "/fine"));
  fs::remove(flag);
  ASSERT_TRUE(WaitUntil([&] { return fs::exists(dst_ + "/stall_sess") && fs::exists(dst_ + "/fine"); }))
      << syncd.log();
  EXPECT_EQ(ReadFile(dst_ + "/stall_sess"), "behind a hung disk");
  syncd.Signal(SIGTERM);
  EXPECT_EQ(syncd.Wait(), 0);
}

}  // namespace
}  // namespace syncd::itest
