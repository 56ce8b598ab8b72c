#include "transport/codec.h"

#include <gtest/gtest.h>

namespace syncd::transport {
namespace {

TEST(CodecTest, EntryRoundTrips) {
  Entry e;
  e.path = "dir/sess_\xff\n]";
  e.type = FileType::kSymlink;
  e.size = 1ull << 40;
  e.meta = Meta{0600, 33, 33, "www-data", "www-data", -5, 999999999, {}};
  e.link_target = "../x";
  std::string frame = Encoder(MsgType::kListChunk).EntryField(e).Finish();
  FrameReader reader;
  reader.Feed(frame);
  auto f = reader.Next();
  ASSERT_TRUE(f && *f);
  EXPECT_EQ((*f)->type, MsgType::kListChunk);
  Decoder d((*f)->payload);
  Entry back = d.EntryField();
  ASSERT_TRUE(d.done());
  EXPECT_EQ(back.path, e.path);
  EXPECT_EQ(back.type, e.type);
  EXPECT_EQ(back.size, e.size);
  EXPECT_EQ(back.meta, e.meta);
  EXPECT_EQ(back.link_target, e.link_target);
}

TEST(CodecTest, MetaCarriesExtendedAttributesWhenTheSessionDoes) {
  Meta m{0640, 0, 0, "root", "root", 1700000000, 1, {{"security.selinux", std::string("a\0b", 3)}, {"user.x", ""}}};
  std::string with = Encoder(MsgType::kSetMeta).MetaField(m, true).Finish();
  Decoder d(std::string_view(with).substr(5));
  EXPECT_EQ(d.MetaField(true), m);
  EXPECT_TRUE(d.done());
  // Without the session flag they do not travel.
  std::string without = Encoder(MsgType::kSetMeta).MetaField(m).Finish();
  Decoder d2(std::string_view(without).substr(5));
  EXPECT_TRUE(d2.MetaField(true).xattrs.empty());
  EXPECT_FALSE(d2.ok());
  // Unsorted, repeated or empty names are malformed.
  for (const Xattrs& bad : {Xattrs{{"user.b", "1"}, {"user.a", "2"}}, Xattrs{{"user.a", "1"}, {"user.a", "2"}},
                            Xattrs{{"", "1"}}}) {
    Meta b = m;
    b.xattrs = bad;
    std::string frame = Encoder(MsgType::kSetMeta).MetaField(b, true).Finish();
    Decoder bd(std::string_view(frame).substr(5));
    bd.MetaField(true);
    EXPECT_FALSE(bd.ok()) << bad.front().first;
  }
}

TEST(CodecTest, FramesSplitAcrossReadsAreReassembled) {
  std::string a = Encoder(MsgType::kCommit).U64(7).Finish();
  std::string b = Encoder(MsgType::kList).U64(8).Finish();
  std::string stream = a + b;
  FrameReader reader;
  std::vector<uint64_t> seqs;
  for (char c : stream) {  // One byte at a time: the worst short-read pattern.
    reader.Feed(std::string_view(&c, 1));
    while (true) {
      auto f = reader.Next();
      ASSERT_TRUE(f);
      if (!*f) break;
      seqs.push_back(Decoder((*f)->payload).U64());
    }
  }
  EXPECT_EQ(seqs, (std::vector<uint64_t>{7, 8}));
}

TEST(CodecTest, OversizedFrameIsRefused) {
  std::string header = {'\x7f', '\0', '\0', '\0', '\x01'};
  FrameReader reader;
  reader.Feed(header);
  auto f = reader.Next();
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().message.find("exceeds"), std::string::npos);
}

TEST(CodecTest, ReadingPastTheEndIsAnErrorNotGarbage) {
  std::string payload = "\x00\x00\x00\x10" "abc";  // Claims 16 bytes, has 3.
  Decoder d(payload);
  EXPECT_EQ(d.Str(), "");
  EXPECT_FALSE(d.ok());
}

struct PathCase {
  std::string path;
  bool ok;
};
class ValidatePathTest : public ::testing::TestWithParam<PathCase> {};
TEST_P(ValidatePathTest, RefusesEscapes) {
  EXPECT_EQ(ValidateRelativePath(GetParam().path).has_value(), GetParam().ok)
      << ::testing::PrintToString(GetParam().path);
}
INSTANTIATE_TEST_SUITE_P(
    Paths, ValidatePathTest,
    ::testing::Values(PathCase{"a", true}, PathCase{"a/b/c", true}, PathCase{"a]b", true},
                      PathCase{"new\nline", true}, PathCase{"\xff\xfe", true},
                      PathCase{std::string(255, 'x'), true}, PathCase{std::string(256, 'x'), false},
                      PathCase{"..", false}, PathCase{"a/../b", false}, PathCase{"/etc/passwd", false},
                      PathCase{"a//b", false}, PathCase{"./a", false}, PathCase{"a/", false},
                      PathCase{std::string("a\0b", 3), false}, PathCase{"", false}));

}  // namespace
}  // namespace syncd::transport
