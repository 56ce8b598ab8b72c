#include "syncd/file_system.h"
#include "tests/temp_dir.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>

namespace syncd {
namespace {

namespace fs = std::filesystem;

class FileSystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.path();
  }
  void Write(const std::string& rel, const std::string& content) {
    std::ofstream(dir_ + "/" + rel) << content;
  }
  // The scan of dir_ as "path:type" lines, sorted: ScanTree's, or with `threads`,
  // ScanTreeParallel's.
  std::vector<std::string> Scan(FollowLinks follow, unsigned threads = 0, const Filter& filter = Filter{}) {
    Result<Listing> listing;
    if (threads == 0) {
      PosixFileSystem posix(follow);
      listing = ScanTree(posix, dir_, filter);
    } else {
      auto make = [follow]() -> std::unique_ptr<FileSystem> { return std::make_unique<PosixFileSystem>(follow); };
      listing = ScanTreeParallel(make, dir_, filter, false, 0, threads);
    }
    EXPECT_TRUE(listing.has_value()) << (listing ? "" : listing.error().message);
    std::vector<std::string> out;
    for (const Entry& e : listing.value_or(Listing{}))
      out.push_back(e.path + ":" + std::to_string(static_cast<int>(e.type)));
    std::sort(out.begin(), out.end());
    return out;
  }
  static std::vector<std::string> Sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  }
  testing::TempDir tmp_{"fs-test"};
  std::string dir_;
};

TEST_F(FileSystemTest, UnsafeSymlinkIsRsyncsRule) {
  EXPECT_TRUE(UnsafeSymlink("a", "/etc/passwd"));
  EXPECT_TRUE(UnsafeSymlink("a", ""));
  EXPECT_TRUE(UnsafeSymlink("a", "../x"));
  EXPECT_FALSE(UnsafeSymlink("d/a", "../x"));
  EXPECT_TRUE(UnsafeSymlink("d/a", "../../x"));
  EXPECT_FALSE(UnsafeSymlink("d/a", "./b/../c"));
  EXPECT_TRUE(UnsafeSymlink("d/a", "b/../../../c"));
}

TEST_F(FileSystemTest, FollowedLinksAreTheirReferentsAndDanglingOnesAreSkipped) {
  fs::create_directories(dir_ + "/d");
  Write("d/f", "x");
  fs::create_symlink("d/f", dir_ + "/inner");
  fs::create_symlink("/nonexistent/target", dir_ + "/dangling_abs");
  fs::create_symlink("d", dir_ + "/dirlink");
  const std::string file = ":1", dir = ":2", link = ":3";
  EXPECT_EQ(Scan(FollowLinks::kNone),
            Sorted({dir, "d" + dir, "d/f" + file, "dangling_abs" + link,
                                      "dirlink" + link, "inner" + link}));
  EXPECT_EQ(Scan(FollowLinks::kAll),
            Sorted({dir, "d" + dir, "d/f" + file, "dirlink" + dir,
                                      "dirlink/f" + file, "inner" + file}));
  // Only the unsafe one is followed, and it leads nowhere.
  EXPECT_EQ(Scan(FollowLinks::kUnsafe),
            Sorted({dir, "d" + dir, "d/f" + file, "dirlink" + link, "inner" + link}));
}

TEST_F(FileSystemTest, AFollowedLinkThatLoopsBackIsListedNotEntered) {
  fs::create_directories(dir_ + "/a/b");
  Write("a/b/f", "x");
  fs::create_symlink("..", dir_ + "/a/b/up");  // Back to a/.
  fs::create_symlink(dir_, dir_ + "/a/top");   // Back to the top.
  for (unsigned threads : {0u, 1u, 2u}) {
    std::vector<std::string> scan = Scan(FollowLinks::kAll, threads);
    EXPECT_EQ(scan, Sorted({":2", "a:2", "a/b:2", "a/b/f:1", "a/b/up:2", "a/top:2"})) << threads;
  }
}

// The scan shared out over threads lists what one thread lists, the root first and every
// directory before what lies beneath it, whatever the number of threads, with a filter, a
// symlink to the root among the root's entries, and an error in the middle of it.
TEST_F(FileSystemTest, AScanOnSeveralThreadsListsWhatOneThreadLists) {
  Write("top_file", "x");
  fs::create_directories(dir_ + "/empty");
  for (int d = 0; d < 12; ++d) {
    std::string dir = "d" + std::to_string(d);
    for (int s = 0; s < d % 4; ++s) {
      std::string sub = dir + "/s" + std::to_string(s) + "/deeper";
      fs::create_directories(dir_ + "/" + sub);
      Write(sub + "/f", "x");
      Write(dir + "/s" + std::to_string(s) + "/g", "x");
    }
    fs::create_directories(dir_ + "/" + dir + "/cache");
    Write(dir + "/cache/junk", "x");
    Write(dir + "/f", "x");
  }
  fs::create_symlink(dir_, dir_ + "/self");
  auto filter = Filter::Parse({"- cache/"}, false);
  ASSERT_TRUE(filter.has_value());
  std::vector<std::string> one = Scan(FollowLinks::kAll, 0, *filter);
  ASSERT_EQ(std::count_if(one.begin(), one.end(), [](const std::string& l) { return l.find("cache") != std::string::npos; }), 0);
  ASSERT_GT(one.size(), 50u);
  for (unsigned threads : {1u, 2u, 3u, 8u, 40u}) EXPECT_EQ(Scan(FollowLinks::kAll, threads, *filter), one) << threads;

  auto make = []() -> std::unique_ptr<FileSystem> { return std::make_unique<PosixFileSystem>(); };
  auto listing = ScanTreeParallel(make, dir_, Filter{}, false, 0, 3);
  ASSERT_TRUE(listing.has_value());
  ASSERT_FALSE(listing->empty());
  EXPECT_EQ(listing->front().path, "");
  std::set<std::string> seen;
  for (const Entry& e : *listing) {
    std::string parent = ParentOf(e.path);
    if (!e.path.empty()) {
      EXPECT_TRUE(seen.contains(parent)) << e.path << " before " << parent;
    }
    seen.insert(e.path);
  }

  // A subtree that cannot be read fails the scan, as it fails ScanTree's (unless root, who
  // reads everything).
  if (::geteuid() != 0) {
    fs::permissions(dir_ + "/d5", fs::perms::none);
    auto failed = ScanTreeParallel(make, dir_, Filter{}, false, 0, 2);
    fs::permissions(dir_ + "/d5", fs::perms::owner_all);
    EXPECT_FALSE(failed.has_value());
  }
}

TEST_F(FileSystemTest, PathsLongerThanTheSystemAllowsAreSkippedNotFatal) {
  Write("plain", "x");
  int cur = ::open(dir_.c_str(), O_DIRECTORY | O_RDONLY);
  ASSERT_GE(cur, 0);
  std::string name(250, 'n');
  for (int i = 0; i < 20; ++i) {  // 20 x 251 bytes: past PATH_MAX.
    ASSERT_EQ(::mkdirat(cur, name.c_str(), 0755), 0);
    int next = ::openat(cur, name.c_str(), O_DIRECTORY | O_RDONLY);
    ::close(cur);
    cur = next;
  }
  ::close(cur);
  PosixFileSystem posix;
  auto make = []() -> std::unique_ptr<FileSystem> { return std::make_unique<PosixFileSystem>(); };
  for (auto listing : {ScanTree(posix, dir_, Filter{}), ScanTreeParallel(make, dir_, Filter{}, false, 0, 2)}) {
    ASSERT_TRUE(listing.has_value()) << listing.error().message;
    bool plain = false;
    size_t deepest = 0;
    for (const Entry& e : *listing) {
      plain = plain || e.path == "plain";
      deepest = std::max(deepest, e.path.size());
    }
    EXPECT_TRUE(plain);
    EXPECT_GT(deepest, 3000u);  // What can be named is listed.
    EXPECT_LT(dir_.size() + 1 + deepest, size_t{PATH_MAX});
  }
}

// Listing a directory through its descriptor describes each child exactly as a Stat by name.
TEST_F(FileSystemTest, ListingADirectoryDescribesEachChildAsStatDoes) {
  fs::create_directories(dir_ + "/d/sub");
  Write("d/f", "content");
  Write("d/sub/g", "x");
  fs::create_symlink("sub/g", dir_ + "/d/inside");
  fs::create_symlink("/etc/hostname", dir_ + "/d/outside");
  fs::create_symlink("nowhere", dir_ + "/d/dangling");
  ASSERT_EQ(::mkfifo((dir_ + "/d/fifo").c_str(), 0600), 0);
  for (FollowLinks follow : {FollowLinks::kNone, FollowLinks::kUnsafe, FollowLinks::kAll}) {
    PosixFileSystem posix(follow);
    auto fast = posix.ListDir(dir_, "d");
    auto by_name = posix.FileSystem::ListDir(dir_, "d");
    ASSERT_TRUE(fast.has_value() && by_name.has_value());
    auto describe = [](const std::vector<Result<Entry>>& entries) {
      std::vector<std::string> out;
      for (const auto& e : entries)
        out.push_back(e ? fmt::format("{} {} {} {} {:o} {}", e->path, static_cast<int>(e->type),
                                      e->size, e->ino, e->meta.mode, e->link_target)
                        : "error " + e.error().message);
      std::sort(out.begin(), out.end());
      return out;
    };
    EXPECT_EQ(describe(*fast), describe(*by_name)) << "follow " << static_cast<int>(follow);
    EXPECT_EQ(fast->size(), follow == FollowLinks::kAll ? 5u : 6u);  // "dangling" has no referent.
  }
  EXPECT_FALSE(PosixFileSystem().ListDir(dir_, "d/f").has_value());
  EXPECT_EQ(PosixFileSystem().ListDir(dir_, "gone").error().code, ENOENT);
}

}  // namespace
}  // namespace syncd
