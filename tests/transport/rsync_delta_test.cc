#include "transport/rsync_delta.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>

#include "tests/random_bytes.h"

namespace syncd::transport {
namespace {

using syncd::testing::RandomBytes;

// The two-thread signature of a large file is the one-pass signature, byte for byte, for
// sizes on and off a block boundary.
TEST(RsyncDeltaTest, SplitSignatureEqualsOnePass) {
  for (size_t size : {size_t{20} << 20, (size_t{33} << 20) + 12345}) {
    std::string content = RandomBytes(size, static_cast<uint32_t>(size));
    char path[] = "/tmp/syncd-sig-test.XXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    unlink(path);
    ASSERT_EQ(write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    auto split = SignatureOfFile(fd, size);
    close(fd);
    ASSERT_TRUE(split.has_value());
    SignatureBuilder one(size);
    one.Update(content);
    EXPECT_TRUE(*split == one.Finish()) << size;
  }
}

// A delta round trip through the three classes, fed in odd-sized pieces.
TEST(RsyncDeltaTest, DeltaAndPatchRoundTripInPieces) {
  std::string old_content = RandomBytes(3 << 20, 1);
  std::string new_content = old_content.substr(0, 1 << 20) + RandomBytes(70000, 2) + old_content.substr(2 << 20);
  SignatureBuilder sig(old_content.size());
  sig.Update(old_content);
  auto enc = DeltaEncoder::Make(sig.Finish());
  ASSERT_TRUE(enc.has_value());
  std::string delta;
  auto to_delta = [&](std::string_view b) { delta.append(b); };
  for (size_t at = 0; at < new_content.size(); at += 99991)
    ASSERT_TRUE((*enc)->Update(std::string_view(new_content).substr(at, 99991), to_delta).has_value());
  ASSERT_TRUE((*enc)->Finish(to_delta).has_value());
  EXPECT_LT(delta.size(), 100000u);
  EXPECT_GE((*enc)->matched_bytes(), (2u << 20) - 2 * 4096);  // All but the blocks it touches.

  char path[] = "/tmp/syncd-basis-test.XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  unlink(path);
  ASSERT_EQ(write(fd, old_content.data(), old_content.size()), static_cast<ssize_t>(old_content.size()));
  PatchApplier patch(fd);
  std::string rebuilt;
  auto to_file = [&](std::string_view b) { rebuilt.append(b); };
  for (size_t at = 0; at < delta.size(); at += 777)
    ASSERT_TRUE(patch.Update(std::string_view(delta).substr(at, 777), to_file).has_value());
  ASSERT_TRUE(patch.Finish(to_file).has_value());
  close(fd);
  EXPECT_TRUE(rebuilt == new_content);
}

// Deltas of consecutive stretches of the new content, each against the whole old copy, one
// after the other: a chained patch rebuilds the whole; an unchained one refuses the second.
// Fed one byte at a time and in odd pieces, so no delta's end is ever at a piece boundary.
TEST(RsyncDeltaTest, ChainedDeltasRebuildTheWholeContent) {
  std::string old_content = RandomBytes(3 << 20, 3);
  std::string new_content = old_content;
  new_content.replace(100000, 5000, RandomBytes(5000, 4));        // In the first stretch.
  new_content.replace((2 << 20) + 7, 300, RandomBytes(300, 5));   // In the second.
  SignatureBuilder builder(old_content.size());
  builder.Update(old_content);
  std::string sig = builder.Finish();
  uint64_t block = SignatureBlockLength(sig);
  ASSERT_EQ(block, SignatureBuilder::Lengths(old_content.size()).first);
  auto enc = DeltaEncoder::Make(sig);
  ASSERT_TRUE(enc.has_value());
  std::string delta;
  auto to_delta = [&](std::string_view b) { delta.append(b); };
  size_t cut = static_cast<size_t>((1 << 20) / block * block);
  ASSERT_TRUE((*enc)->Update(std::string_view(new_content).substr(0, cut), to_delta).has_value());
  ASSERT_TRUE((*enc)->Finish(to_delta).has_value());
  size_t first_end = delta.size();
  (*enc)->Restart();
  ASSERT_TRUE((*enc)->Update(std::string_view(new_content).substr(cut), to_delta).has_value());
  ASSERT_TRUE((*enc)->Finish(to_delta).has_value());
  EXPECT_LT(delta.size(), 10000u) << "unmoved blocks at the cut were not matched";

  char path[] = "/tmp/syncd-chain-test.XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  unlink(path);
  ASSERT_EQ(write(fd, old_content.data(), old_content.size()), static_cast<ssize_t>(old_content.size()));
  for (size_t piece : {size_t{1}, size_t{4093}, delta.size()}) {
    PatchApplier patch(fd, /*chained=*/true);
    std::string rebuilt;
    auto to_file = [&](std::string_view b) { rebuilt.append(b); };
    for (size_t at = 0; at < delta.size(); at += piece)
      ASSERT_TRUE(patch.Update(std::string_view(delta).substr(at, piece), to_file).has_value()) << piece;
    ASSERT_TRUE(patch.Finish(to_file).has_value()) << piece;
    EXPECT_TRUE(rebuilt == new_content) << piece;
  }
  PatchApplier single(fd);
  auto sink = [](std::string_view) {};
  ASSERT_TRUE(single.Update(std::string_view(delta).substr(0, first_end), sink).has_value());
  EXPECT_FALSE(single.Update(std::string_view(delta).substr(first_end), sink).has_value());
  PatchApplier cut_short(fd, /*chained=*/true);
  ASSERT_TRUE(cut_short.Update(std::string_view(delta).substr(0, delta.size() - 1), sink).has_value());
  EXPECT_FALSE(cut_short.Finish(sink).has_value()) << "the last delta of a chain was cut short";
  close(fd);
}

TEST(RsyncDeltaTest, MalformedSignatureAndTruncatedDeltaAreErrors) {
  EXPECT_FALSE(DeltaEncoder::Make("not a signature").has_value());
  PatchApplier patch(-1);
  auto sink = [](std::string_view) {};
  EXPECT_TRUE(patch.Update(std::string("rs\x02\x36", 4), sink).has_value());
  EXPECT_FALSE(patch.Finish(sink).has_value());  // No END command.
}

}  // namespace
}  // namespace syncd::transport
