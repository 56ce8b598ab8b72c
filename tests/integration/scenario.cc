#include "tests/integration/scenario.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace syncd::itest {

void SetMtime(const std::string& path, time_t when) {
  timespec times[2] = {{when, 0}, {when, 123456789}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW), 0) << path;
}

namespace {

namespace fs = std::filesystem;

// Rewrites a file in place, as PHP's session handler does.
void Overwrite(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  size_t pos = 0;
  while ((pos = text.find(from, pos)) != std::string::npos) {
    text.replace(pos, from.size(), to);
    pos += to.size();
  }
  return text;
}

}  // namespace

// Stops the scenario at the first step that does not converge.
#define CONVERGE(step)                                   \
  do {                                                   \
    ExpectConverged(l, step);                            \
    if (::testing::Test::HasFatalFailure()) return;      \
  } while (0)

SessionWriter::SessionWriter(std::string dir)
    : dir_(std::move(dir)), thread_([this] {
        for (int i = 0; !stop_; ++i) {
          std::string name = dir_ + "/sess_w" + std::to_string(i % 50);
          if (i % 9 == 8)
            ::unlink(name.c_str());
          else
            std::ofstream(name, std::ios::trunc) << "user|i:" << i << ";" << std::string(i % 700, 'x');
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      }) {}

void SessionWriter::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

std::string SeedConfig(const std::string& folder_prefix, const std::string& host,
                       const std::string& key, const std::string& logfile,
                       const std::string& carrier) {
  std::string text = ReadFile(SourceDir() + "/examples/lsyncd.conf.lua");
  text = Replace(text, "\"the-other-osm\"", "\"" + host + "\"");
  for (const std::string& folder : kSeedFolders)
    text = Replace(text, "\"" + folder + "\"", "\"" + folder_prefix + folder + "\"");
  text = Replace(text, "/root/.ssh/sync_rsa", key);
  text = Replace(text, "/var/log/lsyncd.log", logfile);
  if (!carrier.empty()) text = Replace(text, "ssh = {", "ssh = { carrier = '" + carrier + "',");
  return text;
}

void PopulateSeedTrees(const Layout& l) {
  const std::string& spool = l.sources[0];
  const std::string& etc = l.sources[1];
  const std::string& sessions = l.sources[2];
  MakeDirs(spool + "/a/b/c");
  MakeDirs(spool + "/empty/deeper");  // Pruned: nothing but directories inside.
  WriteFile(spool + "/a/b/c/file", "spool data\n");
  WriteFile(spool + "/script.sh", "#!/bin/sh\necho hi\n", 0755);
  std::string big(300 * 1024, '\0');  // More than one data frame.
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 7919) >> 3);
  WriteFile(spool + "/big.bin", big);
  fs::create_symlink("a/b", spool + "/current");
  SetMtime(spool + "/a/b/c/file", 1500000000);
  MakeDirs(etc + "/sub");
  WriteFile(etc + "/config.ini", "[sm]\nkey=1\n", 0640);
  Chown(etc + "/config.ini", "root", "www-data");
  WriteFile(etc + "/sub/ovd.conf", "secret\n", 0600);
  WriteFile(sessions + "/sess_a", "user|s:5:\"alice\";", 0600);
  WriteFile(sessions + "/sess_b", "user|s:3:\"bob\";", 0600);
  Chown(sessions + "/sess_a", "www-data", "www-data");
  Chown(sessions + "/sess_b", "www-data", "www-data");
  WriteFile(sessions + "/.lock", "excluded", 0600);
  // What a stale standby holds: an old session, a file with old content, and a dot-file that
  // the exclude protects from deletion.
  MakeDirs(l.targets[0] + "/a/b/c");
  WriteFile(l.targets[0] + "/a/b/c/file", "old content on the standby\n");
  MakeDirs(l.targets[2]);
  WriteFile(l.targets[2] + "/sess_stale", "gone on the active node", 0600);
  WriteFile(l.targets[2] + "/.keep", "standby's own dot-file", 0600);
}

void ExpectConverged(const Layout& l, const std::string& step) {
  SnapshotOptions source_view{.skip_dot_files = true, .prune_empty_dirs = true, .dir_times = true};
  SnapshotOptions target_view{.skip_dot_files = true, .prune_empty_dirs = false, .dir_times = true};
  std::string diff;
  bool same = WaitUntil([&] {
    diff.clear();
    for (size_t i = 0; i < l.sources.size(); ++i)
      diff += Diff(Snapshot(l.sources[i], source_view), Snapshot(l.targets[i], target_view));
    return diff.empty();
  });
  ASSERT_TRUE(same) << "after " << step << ", source and peer differ:\n"
                    << diff << "\nsyncd log:\n"
                    << (l.syncd ? l.syncd->log() : "");
}

void RunLiveChanges(const Layout& l) {
  const std::string& spool = l.sources[0];
  const std::string& etc = l.sources[1];
  const std::string& sessions = l.sources[2];

  WriteFile(sessions + "/sess_new", "new session", 0600);
  Chown(sessions + "/sess_new", "www-data", "www-data");
  CONVERGE("create");
  Overwrite(sessions + "/sess_a", "user|s:5:\"alice\";cart|a:1:{}");
  CONVERGE("overwrite in place");
  AppendFile(spool + "/a/b/c/file", "appended line\n");
  CONVERGE("append");
  ASSERT_EQ(::chmod((spool + "/script.sh").c_str(), 0700), 0);
  CONVERGE("chmod");
  Chown(etc + "/config.ini", "www-data", "root");
  CONVERGE("chown");
  fs::rename(sessions + "/sess_b", sessions + "/sess_c");
  CONVERGE("rename");
  fs::remove(sessions + "/sess_new");
  CONVERGE("delete");
  MakeDirs(spool + "/newdir/inner");
  WriteFile(spool + "/newdir/inner/f", "in a new directory");
  CONVERGE("mkdir");
  fs::remove_all(spool + "/newdir");
  CONVERGE("rmdir");
  fs::remove(spool + "/current");
  fs::create_symlink("a", spool + "/current");
  CONVERGE("symlink retarget");
  SetMtime(etc + "/sub/ovd.conf", 1600000000);
  CONVERGE("touch");
  // A dot-file is never sent: once a later file has arrived, it must not be there.
  WriteFile(sessions + "/.sess_tmp", "excluded", 0600);
  CONVERGE("dot-file alone (the directory's mtime still follows)");
  WriteFile(sessions + "/sess_marker", "after the dot-file", 0600);
  CONVERGE("dot-file then marker");
  EXPECT_FALSE(fs::exists(l.targets[2] + "/.sess_tmp")) << "an excluded file reached the peer";
  EXPECT_EQ(ReadFile(l.targets[2] + "/.keep"), "standby's own dot-file")
      << "an excluded file on the peer was deleted";
  for (const std::string& t : l.targets)
    EXPECT_TRUE(TempFiles(t).empty()) << "temporary files left in " << t;
}

}  // namespace syncd::itest
