#include "syncd/peer_map.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

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


// The array, the paths added since it was built, erased slots and merges, against a plain
// ordered map doing the same: every path, its order and its record agree at every step.
TEST(PeerMapTest, AgreesWithAnOrderedMapThroughSetsErasesAndMerges) {
  const std::vector<std::string> names{"a", "b", "a-b", "a.b", "ab", "z"};
  std::mt19937 random(17);
  auto pick_path = [&] {
    std::string path;
    int depth = 1 + static_cast<int>(random() % 3);
    for (int i = 0; i < depth; ++i) path += (i ? "/" : "") + names[random() % names.size()];
    return path;
  };
  Listing first{Make("", FileType::kDir)};
  for (int i = 0; i < 40; ++i) first.push_back(Make(pick_path(), FileType::kFile));
  std::map<std::string, uint64_t> model;  // Path -> size.
  for (const Entry& e : first) model[e.path] = e.size;
  PeerMap m{Listing(first)};
  for (int step = 0; step < 3000; ++step) {
    std::string path = pick_path();
    switch (random() % 7) {
      case 0:
      case 1: {
        Entry e = Make(path, FileType::kFile);
        e.size = static_cast<uint64_t>(step);
        m.Set(e);
        model[path] = e.size;
        break;
      }
      case 2:
        m.Erase(path);
        model.erase(path);
        break;
      case 3: {
        m.EraseSubtree(path);
        model.erase(path);
        for (auto it = model.lower_bound(path + "/"); it != model.end() && it->first.starts_with(path + "/");)
          it = model.erase(it);
        break;
      }
      case 4:
        if (step % 50 == 0) m.Compact();
        break;
      case 5:
        m.EraseBeneath(path);
        for (auto it = model.lower_bound(path + "/"); it != model.end() && it->first.starts_with(path + "/");)
          it = model.erase(it);
        break;
      default: {
        std::vector<std::string> beneath, expected;
        m.ForEachBeneath(path, [&](const std::string& p, FileType) { beneath.push_back(p); });
        for (auto it = model.lower_bound(path + "/"); it != model.end() && it->first.starts_with(path + "/"); ++it)
          expected.push_back(it->first);
        ASSERT_EQ(beneath, expected) << "beneath " << path << " at step " << step;
      }
    }
    ASSERT_EQ(m.size(), model.size()) << "step " << step;
    auto got = m.Find(path);
    ASSERT_EQ(got.has_value(), model.contains(path)) << path << " at step " << step;
    if (got) {
      ASSERT_EQ(got->size, model[path]);
    }
  }
  std::vector<std::string> expected;
  for (const auto& [p, size] : model) expected.push_back(p);
  EXPECT_EQ(Paths(m), expected);
  m.Compact();
  EXPECT_EQ(Paths(m), expected);
}

// A manifest is read into the map in path order (byte order: "a-b" before "a/x"); a listing
// comes in any order, a path in it possibly twice.
TEST(PeerMapTest, EntriesArriveInOrderOrNotAndTheLaterOfTwoHolds) {
  PeerMap in_order;
  for (const char* p : {"", "a", "a-b", "a/x", "a/y", "b"}) in_order.Set(Make(p, FileType::kFile));
  in_order.EraseBeneath("b");  // Nothing beneath the last path: nothing to do.
  in_order.Erase("b");
  in_order.Set(Make("c", FileType::kFile));  // After an erased last record.
  in_order.Set(Make("a/w", FileType::kFile));  // Before the end: beside the array.
  in_order.EraseBeneath("a");
  EXPECT_EQ(Paths(in_order), (std::vector<std::string>{"", "a", "a-b", "c"}));

  Entry first = Make("d/f", FileType::kFile), second = Make("d/f", FileType::kFile);
  first.size = 1;
  second.size = 2;
  PeerMap listed(Listing{Make("", FileType::kDir), Make("d", FileType::kDir), first,
                         Make("c", FileType::kFile), second, Make("d-e", FileType::kFile)});
  EXPECT_EQ(Paths(listed), (std::vector<std::string>{"", "c", "d", "d-e", "d/f"}));
  EXPECT_EQ(listed.Find("d/f")->size, 2u);
  EXPECT_EQ(listed.size(), 5u);
}

// Enough paths that the map merges on its own, as it does on a large tree's first copy.
TEST(PeerMapTest, MergesOnItsOwnAsPathsAreAddedAndErased) {
  PeerMap m;
  const int n = 150000;
  for (int i = n - 1; i >= 0; --i) m.Set(Make("d" + std::to_string(i % 100) + "/f" + std::to_string(i), FileType::kFile));
  EXPECT_EQ(m.size(), static_cast<size_t>(n));
  for (int i = 0; i < n; i += 2) m.Erase("d" + std::to_string(i % 100) + "/f" + std::to_string(i));
  EXPECT_EQ(m.size(), static_cast<size_t>(n / 2));
  std::string last;
  size_t seen = 0;
  bool ordered = true;
  m.ForEachPath([&](const std::string& p, FileType) {
    ordered = ordered && (seen == 0 || last < p);
    last = p;
    ++seen;
  });
  EXPECT_TRUE(ordered);
  EXPECT_EQ(seen, static_cast<size_t>(n / 2));
  EXPECT_TRUE(m.Find("d1/f1"));
  EXPECT_FALSE(m.Find("d2/f2"));
}

}  // namespace
}  // namespace syncd
