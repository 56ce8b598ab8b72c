#include "syncd/peer_map.h"

#include <gtest/gtest.h>

namespace syncd {
namespace {

Entry Make(const std::string& path, FileType type) {
  Entry e;
  e.path = path;
  e.type = type;
  e.size = path.size();
  e.meta.mode = 04755;
  e.meta.uid = 33;
  e.meta.gid = 34;
  e.meta.user = "www-data";
  e.meta.group = "adm";
  e.meta.mtime_sec = 1700000000;
  e.meta.mtime_nsec = 123456789;
  return e;
}

std::vector<std::string> Paths(const PeerMap& m) {
  std::vector<std::string> out;
  m.ForEachPath([&](const std::string& p, FileType) { out.push_back(p); });
  return out;
}

TEST(PeerMapTest, AnEntryComesBackAsItWentIn) {
  Entry link = Make("l", FileType::kSymlink);
  link.link_target = "../target";
  Entry dev = Make("dev", FileType::kCharDevice);
  dev.rdev = 0x0103;
  Entry file = Make("f", FileType::kFile);
  file.hash = ContentHash{7, 8};
  file.meta.xattrs = {{"user.a", "1"}};
  PeerMap m(Listing{Make("", FileType::kDir), link, dev, file});
  EXPECT_EQ(m.size(), 4u);
  for (const Entry& e : {link, dev, file}) {
    auto got = m.Find(e.path);
    ASSERT_TRUE(got) << e.path;
    EXPECT_EQ(got->type, e.type);
    EXPECT_EQ(got->size, e.size);
    EXPECT_EQ(got->meta, e.meta);
    EXPECT_EQ(got->link_target, e.link_target);
    EXPECT_EQ(got->rdev, e.rdev);
    EXPECT_EQ(got->hash, e.hash);
  }
  EXPECT_FALSE(m.Find("missing"));
}

TEST(PeerMapTest, SubtreesAreRangesByPathNotByPrefix) {
  PeerMap m(Listing{Make("", FileType::kDir), Make("a", FileType::kDir), Make("a/x", FileType::kFile),
                    Make("a/y", FileType::kDir), Make("a/y/z", FileType::kFile), Make("a-b", FileType::kFile),
                    Make("ab", FileType::kFile)});
  std::vector<std::string> beneath;
  m.ForEachBeneath("a", [&](const std::string& p, FileType) { beneath.push_back(p); });
  EXPECT_EQ(beneath, (std::vector<std::string>{"a/x", "a/y", "a/y/z"}));
  auto taken = m.TakeSubtree("a");
  ASSERT_EQ(taken.size(), 4u);
  EXPECT_EQ(taken[0].path, "a");
  EXPECT_EQ(Paths(m), (std::vector<std::string>{"", "a-b", "ab"}));
  m.EraseSubtree("");
  EXPECT_TRUE(m.size() == 0);
}

TEST(PeerMapTest, MetaHashAndDirTimeChangeInPlace) {
  Entry link = Make("l", FileType::kSymlink);
  link.link_target = "t";
  PeerMap m(Listing{Make("d", FileType::kDir), link});
  Meta meta = Make("x", FileType::kFile).meta;
  meta.user = "root";
  meta.mode = 0600;
  EXPECT_TRUE(m.SetMeta("l", meta));
  EXPECT_FALSE(m.SetMeta("missing", meta));
  EXPECT_EQ(m.Find("l")->meta.user, "root");
  EXPECT_EQ(m.Find("l")->link_target, "t");  // What lies beside the record stays.
  m.SetHash("l", ContentHash{1, 1});
  EXPECT_EQ(m.Find("l")->hash, (ContentHash{1, 1}));
  m.ForgetDirTime("d");
  EXPECT_EQ(m.Find("d")->meta.mtime_sec, INT64_MIN);
  Entry plain = Make("l", FileType::kFile);  // Replaced by a file: the target goes.
  m.Set(plain);
  EXPECT_TRUE(m.Find("l")->link_target.empty());
}

}  // namespace
}  // namespace syncd
