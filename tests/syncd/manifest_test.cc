#include "syncd/manifest.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <sys/stat.h>

#include "tests/temp_dir.h"

namespace syncd {
namespace {

Entry Make(const std::string& path, FileType type, int64_t mtime = 1) {
  Entry e;
  e.path = path;
  e.type = type;
  e.meta.mode = type == FileType::kDir ? 0755 : 0644;
  e.meta.mtime_sec = mtime;
  e.meta.user = "www-data";
  return e;
}

Lineage Stamped(int64_t through) {
  EpochRecord e;
  e.node = "aaaaaaaaaaaaaaaa";
  e.counter = 1;
  e.started = 1;
  e.first = 2;
  e.through = through;
  e.changes = static_cast<uint64_t>(through);
  return {e};
}

class ManifestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = StateDir::Open(tmp_ / "state");
    ASSERT_TRUE(s);
    state_.emplace(std::move(*s));
  }
  std::optional<Manifest::Contents> Load() {
    auto m = Manifest::Load(*state_, "/srv/tree");
    EXPECT_TRUE(m) << m.error().message;
    return m ? *m : std::nullopt;
  }
  testing::TempDir tmp_{"manifest"};
  std::optional<StateDir> state_;
};

TEST_F(ManifestTest, ASnapshotAndItsJournalReadBackAsTheStandbyHoldsThem) {
  EXPECT_FALSE(Load());
  Listing listing{Make("", FileType::kDir), Make("d", FileType::kDir), Make("d/a", FileType::kFile),
                  Make("d/sub", FileType::kDir), Make("d/sub/x", FileType::kFile), Make("d-x", FileType::kFile)};
  listing[2].hash = ContentHash{1, 2};
  listing[4].link_target = "inode:1:2";
  PeerMap entries(std::move(listing));
  auto m = Manifest::Create(*state_, "/srv/tree", entries, Stamped(10));
  ASSERT_TRUE(m) << m.error().message;
  Entry moved = Make("e", FileType::kDir);
  Entry moved_child = Make("e/x", FileType::kFile);
  Entry changed = Make("d-x", FileType::kFile, 99);
  ASSERT_TRUE(m->Append({moved, moved_child, changed}, {"d/sub"}, Stamped(11)));
  Entry file_over_dir = Make("d", FileType::kFile);
  ASSERT_TRUE(m->Append({file_over_dir}, {}, Stamped(12)));

  auto got = Load();
  ASSERT_TRUE(got);
  EXPECT_TRUE(SameLineage(got->lineage, Stamped(12)));
  std::vector<std::string> paths;
  got->entries.ForEachPath([&](const std::string& p, FileType) { paths.push_back(p); });
  EXPECT_EQ(paths, (std::vector<std::string>{"", "d", "d-x", "e", "e/x"}));
  EXPECT_EQ(got->entries.TypeOf("d"), FileType::kFile);
  EXPECT_EQ(got->entries.Find("d-x")->meta.mtime_sec, 99);
  EXPECT_EQ(got->entries.Find("e")->meta.user, "www-data");
}

TEST_F(ManifestTest, AJournalCutShortEndsAtItsLastStamp) {
  PeerMap entries(Listing{Make("", FileType::kDir)});
  auto m = Manifest::Create(*state_, "/srv/tree", entries, Stamped(1));
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->Append({Make("a", FileType::kFile)}, {}, Stamped(2)));
  ASSERT_TRUE(m->Append({Make("b", FileType::kFile)}, {}, Stamped(3)));
  std::string file = Manifest::FileFor(*state_, "/srv/tree");
  struct stat st;
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  ASSERT_EQ(::truncate(file.c_str(), st.st_size - 3), 0);  // The last stamp, torn.
  auto got = Load();
  ASSERT_TRUE(got);
  EXPECT_TRUE(SameLineage(got->lineage, Stamped(2)));
  EXPECT_TRUE(got->entries.Contains("a"));
  EXPECT_FALSE(got->entries.Contains("b"));  // Its batch's stamp never made it.
}

TEST_F(ManifestTest, AnotherTreesOrAGarbledFileIsAnError) {
  PeerMap entries(Listing{Make("", FileType::kDir)});
  ASSERT_TRUE(Manifest::Create(*state_, "/srv/tree", entries, Stamped(1)));
  EXPECT_FALSE(Manifest::Load(*state_, "/srv/other").value_or(std::nullopt));
  std::string file = Manifest::FileFor(*state_, "/srv/tree");
  ASSERT_EQ(::truncate(file.c_str(), 10), 0);
  EXPECT_FALSE(Manifest::Load(*state_, "/srv/tree"));
}

}  // namespace
}  // namespace syncd
