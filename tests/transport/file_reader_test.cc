// FileReader in delta mode with a loop: the segments two workers encode side by side arrive in
// order and rebuild the content; the hash is of the content, in order.
#include "transport/file_reader.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>

#include "tests/random_bytes.h"
#include "transport/codec.h"

namespace syncd::transport {
namespace {

using syncd::testing::RandomBytes;

UniqueFd TempFileWith(const std::string& content) {
  char path[] = "/tmp/syncd-reader-test.XXXXXX";
  int fd = mkstemp(path);
  unlink(path);
  EXPECT_EQ(write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
  return UniqueFd(fd);
}

struct Read {
  std::string delta;
  size_t segments = 0;
  bool failed = false;
  XXH128_hash_t digest{};
  uint64_t most_consumed = 0;  // The largest consumed() seen along the way.
  uint64_t consumed = 0;       // At the end.
};

Read ReadDelta(const std::string& content, const std::string& signature, bool segments) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  Read out;
  std::shared_ptr<FileReader> reader;
  bool done = false;
  auto drain = [&] {
    std::string chunk;
    out.most_consumed = std::max(out.most_consumed, reader->consumed());
    while (!done) {
      if (reader->finished()) {
        done = true;
        out.failed = reader->failed();
        out.digest = reader->Digest();
        out.consumed = reader->consumed();
        break;
      }
      if (!reader->Next(chunk)) {
        if (reader->finished()) continue;
        break;
      }
      out.delta += chunk;
    }
  };
  reader = FileReader::Make(&loop, TempFileWith(content), content.size(), kDataChunk, drain);
  reader->EncodeDelta(signature, segments);
  out.segments = reader->segments();
  reader->Prefetch();
  uv_run(&loop, UV_RUN_DEFAULT);
  reader.reset();
  uv_loop_close(&loop);
  EXPECT_TRUE(done);
  return out;
}

std::string Patch(const std::string& old_content, const std::string& delta, bool chained) {
  UniqueFd basis = TempFileWith(old_content);
  PatchApplier patch(basis.get(), chained);
  std::string rebuilt;
  auto sink = [&](std::string_view b) { rebuilt.append(b); };
  EXPECT_TRUE(patch.Update(delta, sink).has_value());
  EXPECT_TRUE(patch.Finish(sink).has_value());
  return rebuilt;
}

TEST(FileReaderTest, SegmentedDeltaRebuildsTheContentInOrder) {
  std::string old_content = RandomBytes(40 << 20, 1);
  std::string new_content = old_content;
  new_content.replace(1000, 3000, RandomBytes(3000, 2));
  new_content.replace((35 << 20) + 5, 70000, RandomBytes(70000, 3));
  SignatureBuilder builder(old_content.size());
  builder.Update(old_content);
  std::string sig = builder.Finish();

  Read split = ReadDelta(new_content, sig, /*segments=*/true);
  ASSERT_FALSE(split.failed);
  EXPECT_EQ(split.segments, 3u);
  EXPECT_LT(split.delta.size(), 120000u);
  EXPECT_TRUE(Patch(old_content, split.delta, /*chained=*/true) == new_content);
  XXH128_hash_t want = XXH3_128bits(new_content.data(), new_content.size());
  EXPECT_TRUE(XXH128_isEqual(split.digest, want)) << "the hash is not of the content in order";
  // What the probe that sends new data whole goes by.
  EXPECT_EQ(split.consumed, new_content.size());
  EXPECT_LE(split.most_consumed, new_content.size());

  Read whole = ReadDelta(new_content, sig, /*segments=*/false);
  ASSERT_FALSE(whole.failed);
  EXPECT_EQ(whole.segments, 1u);
  EXPECT_TRUE(Patch(old_content, whole.delta, /*chained=*/false) == new_content);
  EXPECT_TRUE(XXH128_isEqual(whole.digest, want));
}

TEST(FileReaderTest, MalformedSignatureIsADeltaError) {
  std::string content = RandomBytes(2 << 20, 4);
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto reader = FileReader::Make(&loop, TempFileWith(content), content.size(), kDataChunk, [] {});
  reader->EncodeDelta("not a signature at all", true);
  reader->Prefetch();
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_TRUE(reader->finished());
  EXPECT_TRUE(reader->failed());
  EXPECT_TRUE(reader->delta_error().has_value());
  reader.reset();
  uv_loop_close(&loop);
}

}  // namespace
}  // namespace syncd::transport
