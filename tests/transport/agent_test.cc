#include "transport/agent.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <xxhash.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "tests/random_bytes.h"
#include "tests/temp_dir.h"
#include "tests/transport/agent_frames.h"

namespace syncd::transport {
namespace {

namespace fs = std::filesystem;
using syncd::testing::RandomBytes;

struct Reply {
  MsgType type;
  uint64_t seq = 0;
  std::string message;
};

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = tmp_.path();
    root_ = base_ + "/target";
    outside_ = base_ + "/outside";
    fs::create_directories(outside_);
    Send(Encoder(MsgType::kHello).U32(kMagic).U16(kProtocolVersion).U64(kKnownCaps).Finish());
    Send(Encoder(MsgType::kOpen).U64(1).Str(root_).U32(kKeepPerms | kKeepTimes).Finish());
    auto replies = Take();
    ASSERT_EQ(replies.size(), 2u);
    ASSERT_EQ(replies[1].type, MsgType::kOk) << replies[1].message;
  }

  // Feeds whole frames to the agent; returns false if it asked to end the session.
  bool Send(const std::string& frames) {
    reader_in_.Feed(frames);
    agent_.NewInput();
    bool go_on = true;
    while (auto f = reader_in_.Next()) {
      if (!*f) break;
      go_on = agent_.Handle((*f)->type, (*f)->payload) && go_on;
    }
    return go_on;
  }
  std::vector<Reply> Take() {
    FrameReader reader;
    reader.Feed(agent_.TakeOutput());
    std::vector<Reply> out;
    while (auto f = reader.Next()) {
      if (!*f) break;
      Decoder d((*f)->payload);
      Reply r{(*f)->type, 0, {}};
      if (r.type == MsgType::kFailed) {
        r.seq = d.U64();
        d.U32();
        r.message = d.Str();
      } else if (r.type == MsgType::kFatal) {
        d.U32();
        r.message = d.Str();
      } else if (r.type != MsgType::kHelloOk) {
        r.seq = d.U64();
      }
      out.push_back(r);
    }
    return out;
  }
  std::string Put(uint64_t seq, const std::string& path, const std::string& content,
                  std::optional<std::string> hashed = {}) {
    Meta meta;
    meta.mode = 0640;
    meta.mtime_sec = 1600000000;
    std::string h = hashed.value_or(content);
    XXH128_hash_t hash = XXH3_128bits(h.data(), h.size());
    return Encoder(MsgType::kPutBegin).U64(seq).Str(path).U64(content.size()).MetaField(meta).Finish() +
           Encoder(MsgType::kPutData).U64(seq).Raw(content).Finish() +
           Encoder(MsgType::kPutEnd).U64(seq).U8(kPutComplete).U64(hash.high64).U64(hash.low64).Finish();
  }
  std::string Commit(uint64_t seq) { return Encoder(MsgType::kCommit).U64(seq).Finish(); }
  // Asks for the signature of `path` and returns it (empty, with the reply in `failed`, if
  // the agent refused).
  std::string Signature(uint64_t seq, const std::string& path, Reply* failed = nullptr) {
    EXPECT_TRUE(Send(Encoder(MsgType::kSignature).U64(seq).Str(path).Finish()));
    FrameReader reader;
    reader.Feed(agent_.TakeOutput());
    std::string sig;
    while (auto f = reader.Next()) {
      if (!*f) break;
      Decoder d((*f)->payload);
      EXPECT_EQ(d.U64(), seq);
      if ((*f)->type == MsgType::kSigData) sig += d.Rest();
      if ((*f)->type == MsgType::kFailed && failed) *failed = Reply{MsgType::kFailed, seq, {}};
    }
    return sig;
  }
  // PATCH_BEGIN, the delta in frames of `chunk` bytes, and PUT_END with the hash of `content`.
  std::string Patch(uint64_t seq, const std::string& path, const std::string& delta,
                    const std::string& content, size_t chunk = 4096) {
    Meta meta;
    meta.mode = 0640;
    XXH128_hash_t hash = XXH3_128bits(content.data(), content.size());
    std::string out = Encoder(MsgType::kPatchBegin).U64(seq).Str(path).U64(content.size()).MetaField(meta).Finish();
    for (size_t at = 0; at < delta.size(); at += chunk)
      out += Encoder(MsgType::kPutData).U64(seq).Raw(delta.substr(at, chunk)).Finish();
    return out + Encoder(MsgType::kPutEnd).U64(seq).U8(kPutComplete).U64(hash.high64).U64(hash.low64).Finish();
  }
  static std::string Delta(const std::string& signature, const std::string& content) {
    auto enc = DeltaEncoder::Make(signature);
    EXPECT_TRUE(enc.has_value());
    std::string delta;
    auto sink = [&](std::string_view b) { delta.append(b); };
    EXPECT_TRUE((*enc)->Update(content, sink).has_value());
    EXPECT_TRUE((*enc)->Finish(sink).has_value());
    return delta;
  }
  static std::string Read(const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  // The entries of the LIST_CHUNK replies in `output`, by path.
  static std::map<std::string, Entry> Listed(const std::string& output) {
    FrameReader reader;
    reader.Feed(output);
    std::map<std::string, Entry> listed;
    while (auto f = reader.Next()) {
      if (!*f) break;
      if ((*f)->type != MsgType::kListChunk) continue;
      Decoder d((*f)->payload);
      d.U64();
      for (uint32_t n = d.U32(); n > 0 && d.ok(); --n) {
        Entry e = d.EntryField();
        listed[e.path] = e;
      }
    }
    return listed;
  }
  // Names in the target, temp files included.
  std::vector<std::string> Names(const std::string& dir) {
    std::vector<std::string> out;
    for (auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename());
    std::sort(out.begin(), out.end());
    return out;
  }

  Agent agent_;
  FrameReader reader_in_;
  testing::TempDir tmp_{"agent-test"};
  std::string base_, root_, outside_;
};

TEST_F(AgentTest, FileAppearsOnlyAtCommitWithItsMetadata) {
  ASSERT_TRUE(Send(Put(2, "a.txt", "hello")));
  EXPECT_FALSE(fs::exists(root_ + "/a.txt"));  // Still under its temporary name.
  ASSERT_TRUE(Send(Commit(3)));
  auto replies = Take();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].type, MsgType::kCommitted);
  EXPECT_EQ(replies[0].seq, 3u);
  EXPECT_EQ(Read(root_ + "/a.txt"), "hello");
  struct stat st;
  ASSERT_EQ(stat((root_ + "/a.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1600000000);
  EXPECT_THAT(Names(root_), ::testing::ElementsAre("a.txt"));
}

// A startup batch can hold tens of thousands of files: the agent must not keep a descriptor per
// file until COMMIT.
TEST_F(AgentTest, HugeBatchDoesNotRunOutOfDescriptors) {
  rlimit saved;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit low = saved;
  low.rlim_cur = 512;  // Far fewer than the batch's files.
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  struct Restore {
    rlimit r;
    ~Restore() { setrlimit(RLIMIT_NOFILE, &r); }
  } restore{saved};
  fs::create_directories(root_ + "/a");
  fs::create_directories(root_ + "/b");
  std::string frames;
  for (int i = 0; i < 5000; ++i)
    frames += Put(10 + static_cast<uint64_t>(i), (i % 2 ? "a/f" : "b/f") + std::to_string(i), "x");
  ASSERT_TRUE(Send(frames + Commit(9999)));
  auto replies = Take();
  ASSERT_EQ(replies.size(), 1u) << replies.front().message;
  EXPECT_EQ(replies[0].type, MsgType::kCommitted);
  EXPECT_EQ(std::distance(fs::directory_iterator(root_ + "/a"), fs::directory_iterator()), 2500);
}

TEST_F(AgentTest, HashMismatchKeepsTheOldFileAndLeavesNoTemporary) {
  ASSERT_TRUE(Send(Put(2, "f", "old") + Commit(3)));
  Take();
  ASSERT_TRUE(Send(Put(4, "f", "new!", std::string("corrupted")) + Commit(5)));
  auto replies = Take();
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0].type, MsgType::kFailed);
  EXPECT_EQ(replies[0].seq, 4u);
  EXPECT_THAT(replies[0].message, ::testing::HasSubstr("hash mismatch"));
  EXPECT_EQ(replies[1].type, MsgType::kCommitted);
  EXPECT_EQ(Read(root_ + "/f"), "old");
  EXPECT_THAT(Names(root_), ::testing::ElementsAre("f"));
}

TEST_F(AgentTest, AbortedUploadLeavesNothing) {
  std::string frames = Encoder(MsgType::kPutBegin).U64(2).Str("g").U64(3).MetaField(Meta{}).Finish() +
                       Encoder(MsgType::kPutData).U64(2).Raw("abc").Finish() +
                       Encoder(MsgType::kPutEnd).U64(2).U8(kPutAbort).U64(0).U64(0).Finish();
  ASSERT_TRUE(Send(frames + Commit(3)));
  auto replies = Take();
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0].type, MsgType::kFailed);
  EXPECT_TRUE(Names(root_).empty());
}

TEST_F(AgentTest, EscapingPathsAreRefused) {
  fs::create_directories(root_ + "/real");
  fs::create_directory_symlink(outside_, root_ + "/escape");
  uint64_t seq = 10;
  std::vector<std::string> paths = {"../outside/x", "/tmp/x", "escape/x",
                                    "real/../../outside/x", std::string("a\0b", 3), "real//x"};
  for (const std::string& path : paths) {
    ASSERT_TRUE(Send(Put(seq, path, "data"))) << path;
    auto replies = Take();
    ASSERT_EQ(replies.size(), 1u) << path;
    EXPECT_EQ(replies[0].type, MsgType::kFailed) << path;
    ++seq;
  }
  ASSERT_TRUE(Send(Encoder(MsgType::kDelete).U64(seq++).Str("escape/x").Finish()));
  ASSERT_TRUE(Send(Encoder(MsgType::kMkdir).U64(seq++).Str("escape/newdir").MetaField(Meta{}).Finish()));
  ASSERT_TRUE(Send(Commit(seq)));
  Take();
  EXPECT_TRUE(fs::is_empty(outside_)) << "something was written outside the target";
}

// A batch of more files than wait for one publication: the first groups are renamed into
// place on the publisher's thread while the next files arrive. A rename that fails there (the
// name is a directory holding something) is answered before COMMITTED; a deletion in the same
// batch acts on what the earlier groups published; nothing is left under a temporary name.
TEST_F(AgentTest, FilesOfALargeBatchArePublishedInGroupsWhileMoreArrive) {
  fs::create_directories(root_ + "/d/blocked/inside");
  constexpr int kFiles = 9000;  // More than two groups.
  std::string frames = Put(2, "d/blocked", "cannot replace a directory that holds something");
  for (int i = 0; i < kFiles; ++i) frames += Put(10 + i, "d/f" + std::to_string(i), "content " + std::to_string(i));
  ASSERT_TRUE(Send(frames));
  uint64_t seq = 10 + kFiles;
  ASSERT_TRUE(Send(Encoder(MsgType::kDelete).U64(seq++).Str("d/f0").Finish()));
  ASSERT_TRUE(Send(Commit(seq)));
  auto replies = Take();
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0].type, MsgType::kFailed);
  EXPECT_EQ(replies[0].seq, 2u);
  EXPECT_THAT(replies[0].message, ::testing::HasSubstr("d/blocked"));
  EXPECT_EQ(replies[1].type, MsgType::kCommitted);
  EXPECT_TRUE(fs::is_directory(root_ + "/d/blocked/inside"));
  EXPECT_FALSE(fs::exists(root_ + "/d/f0"));
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(root_ + "/d")) {
    std::string name = e.path().filename();
    ASSERT_FALSE(TargetDir::IsTempName(name)) << name;
    if (name == "blocked") continue;
    ++files;
    ASSERT_EQ(Read(e.path()), "content " + name.substr(1)) << name;
  }
  EXPECT_EQ(files, static_cast<size_t>(kFiles - 1));
}

// A directory the agent has written into is swapped for a symlink out of the target, by
// someone on the standby, between two operations of one batch and between two batches: no
// later write goes outside the target.
TEST_F(AgentTest, DirectorySwappedForASymlinkIsNeverFollowed) {
  fs::create_directories(root_ + "/a");
  fs::create_directories(root_ + "/b");
  ASSERT_TRUE(Send(Put(2, "a/f1", "one") + Commit(3)));
  Take();
  fs::rename(root_ + "/a", outside_ + "/a");  // Moved out, and a symlink left in its place.
  fs::create_directory_symlink(outside_ + "/a", root_ + "/a");
  ASSERT_TRUE(Send(Put(4, "a/f2", "two") + Commit(5)));
  auto replies = Take();
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0].type, MsgType::kFailed);
  EXPECT_FALSE(fs::exists(outside_ + "/a/f2"));

  ASSERT_TRUE(Send(Put(6, "b/f1", "one")));  // The batch is still open.
  Take();
  fs::rename(root_ + "/b", outside_ + "/b");
  fs::create_directory_symlink(outside_ + "/b", root_ + "/b");
  ASSERT_TRUE(Send(Put(7, "b/f2", "two") + Commit(8)));
  Take();
  EXPECT_FALSE(fs::exists(outside_ + "/b/f2")) << "written through a directory moved out";
}

TEST_F(AgentTest, SetMetaOnASymlinkNeverTouchesItsTarget) {
  std::string victim = outside_ + "/victim";
  std::ofstream(victim) << "x";
  fs::permissions(victim, fs::perms(0600));
  fs::create_symlink(victim, root_ + "/link");
  Meta meta;
  meta.mode = 0777;
  ASSERT_TRUE(Send(Encoder(MsgType::kSetMeta).U64(2).Str("link").U8(1).MetaField(meta).Finish() +
                   Commit(3)));
  Take();
  EXPECT_EQ(static_cast<unsigned>(fs::status(victim).permissions()), 0600u);
}

TEST_F(AgentTest, DeleteRemovesDirectoriesRecursivelyAndToleratesMissing) {
  fs::create_directories(root_ + "/d/e");
  std::ofstream(root_ + "/d/e/f") << "x";
  ASSERT_TRUE(Send(Encoder(MsgType::kDelete).U64(2).Str("d").Finish() +
                   Encoder(MsgType::kDelete).U64(3).Str("missing").Finish() + Commit(4)));
  auto replies = Take();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].type, MsgType::kCommitted);
  EXPECT_TRUE(Names(root_).empty());
}

// rsync keeps what the filter excludes when it deletes a directory ("cannot delete
// non-empty directory"): the agent removes the rest, keeps the directories on the way to a
// protected entry, and says so with KEPT.
TEST_F(AgentTest, DeleteKeepsWhatTheFilterProtectsAndTheDirectoriesHoldingIt) {
  fs::create_directories(root_ + "/d/e/deep");
  fs::create_directories(root_ + "/d/gone/sub");
  for (const char* f : {"/d/a", "/d/.keep", "/d/e/b", "/d/e/deep/c.tmp", "/d/gone/sub/x"})
    std::ofstream(root_ + f) << "x";
  std::ofstream(root_ + "/d/e/.syncd-0123456789abcdef.tmp") << "left by a transfer";
  std::string rules = Encoder(MsgType::kFilter).U32(2).Str("- .*").Str("- *.tmp").Finish();
  ASSERT_TRUE(Send(rules + Encoder(MsgType::kDelete).U64(2).Str("d").Finish() + Commit(3)));
  FrameReader reader;
  reader.Feed(agent_.TakeOutput());
  std::vector<MsgType> types;
  std::string kept_path, first;
  uint64_t kept_count = 0;
  while (auto f = reader.Next()) {
    if (!*f) break;
    types.push_back((*f)->type);
    if ((*f)->type != MsgType::kKept) continue;
    Decoder d((*f)->payload);
    EXPECT_EQ(d.U64(), 2u);
    kept_path = d.Str();
    kept_count = d.U64();
    first = d.Str();
  }
  EXPECT_THAT(types, ::testing::ElementsAre(MsgType::kKept, MsgType::kCommitted));
  EXPECT_EQ(kept_path, "d");
  EXPECT_EQ(kept_count, 2u);
  EXPECT_TRUE(first == "d/.keep" || first == "d/e/deep/c.tmp") << first;
  EXPECT_TRUE(fs::exists(root_ + "/d/.keep"));
  EXPECT_TRUE(fs::exists(root_ + "/d/e/deep/c.tmp"));
  EXPECT_FALSE(fs::exists(root_ + "/d/a"));
  EXPECT_FALSE(fs::exists(root_ + "/d/e/b"));
  EXPECT_FALSE(fs::exists(root_ + "/d/gone"));  // Nothing protected inside: gone entirely.
  EXPECT_FALSE(fs::exists(root_ + "/d/e/.syncd-0123456789abcdef.tmp"));  // Ours, never kept.
  // A file that replaces the kept directory cannot take its place, and says why.
  ASSERT_TRUE(Send(Put(4, "d", "now a file") + Commit(5)));
  auto replies = Take();
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0].type, MsgType::kFailed);
  EXPECT_THAT(replies[0].message, ::testing::HasSubstr("holds entries the filter protects"));
  EXPECT_TRUE(fs::exists(root_ + "/d/.keep"));
}

// Without the filter, or with rules that do not protect (--delete-excluded), all of it goes.
TEST_F(AgentTest, DeleteWithSenderOnlyRulesRemovesEverything) {
  fs::create_directories(root_ + "/d");
  std::ofstream(root_ + "/d/.keep") << "x";
  ASSERT_TRUE(Send(Encoder(MsgType::kFilter).U32(1).Str("-s .*").Finish() +
                   Encoder(MsgType::kDelete).U64(2).Str("d").Finish() + Commit(3)));
  auto replies = Take();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].type, MsgType::kCommitted);
  EXPECT_FALSE(fs::exists(root_ + "/d"));
}

// A delete of a tree deeper than any stack allows is done without recursion.
TEST_F(AgentTest, DeleteOfAVeryDeepTreeDoesNotRecurse) {
  std::string path = root_;
  fs::create_directories(root_);
  int fd = ::open(root_.c_str(), O_DIRECTORY | O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::mkdirat(fd, "deep", 0700), 0);
  int cur = ::openat(fd, "deep", O_DIRECTORY | O_RDONLY);
  ::close(fd);
  for (int i = 0; i < 3000; ++i) {
    ASSERT_EQ(::mkdirat(cur, "d", 0700), 0);
    int next = ::openat(cur, "d", O_DIRECTORY | O_RDONLY);
    ::close(cur);
    cur = next;
  }
  ::close(cur);
  ASSERT_TRUE(Send(Encoder(MsgType::kDelete).U64(2).Str("deep").Finish() + Commit(3)));
  auto replies = Take();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].type, MsgType::kCommitted) << replies[0].message;
  EXPECT_FALSE(fs::exists(root_ + "/deep"));
}

// MKNOD makes FIFOs and devices in place of what was there; LINK makes a name of a file of
// the same batch once it is in place; LIST says which names are one file.
TEST_F(AgentTest, NodesAndHardLinksAreMadeAndListed) {
  fs::create_directories(root_ + "/was-a-dir/inside");
  std::ofstream(root_ + "/was-a-file") << "old";
  Meta meta;
  meta.mode = 0640;
  ASSERT_TRUE(Send(Encoder(MsgType::kDelete).U64(2).Str("was-a-dir").Finish() +
                   Encoder(MsgType::kMknod).U64(3).Str("was-a-dir").U8(5).U64(0).MetaField(meta).Finish() +
                   Encoder(MsgType::kMknod).U64(4).Str("was-a-file").U8(7).U64(makedev(1, 3)).MetaField(meta).Finish() +
                   Put(5, "first", "one file") +
                   Encoder(MsgType::kLink).U64(6).Str("second").Str("first").Finish() +
                   Encoder(MsgType::kLink).U64(7).Str("third").Str("missing").Finish() + Commit(8)));
  auto replies = Take();
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0].type, MsgType::kFailed);
  EXPECT_EQ(replies[0].seq, 7u);
  EXPECT_EQ(replies[1].type, MsgType::kCommitted);
  struct stat fifo, dev, first, second;
  ASSERT_EQ(::lstat((root_ + "/was-a-dir").c_str(), &fifo), 0);
  EXPECT_TRUE(S_ISFIFO(fifo.st_mode));
  EXPECT_EQ(fifo.st_mode & 07777, 0640u);
  ASSERT_EQ(::lstat((root_ + "/was-a-file").c_str(), &dev), 0);
  EXPECT_TRUE(S_ISCHR(dev.st_mode));
  EXPECT_EQ(dev.st_rdev, makedev(1, 3));
  ASSERT_EQ(::stat((root_ + "/first").c_str(), &first), 0);
  ASSERT_EQ(::stat((root_ + "/second").c_str(), &second), 0);
  EXPECT_EQ(first.st_ino, second.st_ino);
  EXPECT_EQ(Read(root_ + "/second"), "one file");
  EXPECT_FALSE(fs::exists(root_ + "/third"));
  // The listing: kinds, the device number, and one token for both names of the file.
  ASSERT_TRUE(Send(Encoder(MsgType::kList).U64(9).Finish()));
  std::map<std::string, Entry> listed = Listed(agent_.TakeOutput());
  EXPECT_EQ(listed["was-a-dir"].type, FileType::kFifo);
  EXPECT_EQ(listed["was-a-file"].type, FileType::kCharDevice);
  EXPECT_EQ(listed["was-a-file"].rdev, makedev(1, 3));
  EXPECT_FALSE(listed["first"].link_target.empty());
  EXPECT_EQ(listed["first"].link_target, listed["second"].link_target);
}

// A client that does not know special files sees them as "other", never types it cannot read.
TEST_F(AgentTest, OlderClientsSeeSpecialFilesAsOther) {
  fs::create_directories(root_);
  ASSERT_EQ(::mkfifo((root_ + "/fifo").c_str(), 0600), 0);
  Agent agent;
  HandleFrame(agent, Encoder(MsgType::kHello).U32(kMagic).U16(kProtocolVersion).U64(kCapDelta).Finish());
  HandleFrame(agent, Encoder(MsgType::kOpen).U64(1).Str(root_).U32(0).Finish());
  agent.TakeOutput();
  HandleFrame(agent, Encoder(MsgType::kList).U64(2).Finish());
  std::map<std::string, Entry> listed = Listed(agent.TakeOutput());
  ASSERT_TRUE(listed.contains("fifo"));
  EXPECT_EQ(listed["fifo"].type, FileType::kOther);
}

TEST_F(AgentTest, ListSkipsAndRemovesLeftoverTemporaries) {
  std::ofstream(root_ + "/kept") << "x";
  std::ofstream(root_ + "/.syncd-0123456789abcdef.tmp") << "partial";
  ASSERT_TRUE(Send(Encoder(MsgType::kList).U64(2).Finish()));
  FrameReader reader;
  reader.Feed(agent_.TakeOutput());
  std::vector<std::string> paths;
  while (auto f = reader.Next()) {
    if (!*f || (*f)->type != MsgType::kListChunk) break;
    Decoder d((*f)->payload);
    d.U64();
    for (uint32_t n = d.U32(); n > 0; --n) paths.push_back(d.EntryField().path);
  }
  EXPECT_THAT(paths, ::testing::UnorderedElementsAre("", "kept"));
  EXPECT_THAT(Names(root_), ::testing::ElementsAre("kept"));
}

TEST_F(AgentTest, RenameMovesAWholeDirectoryAndReportsAMissingOrigin) {
  fs::create_directories(root_ + "/d");
  std::ofstream(root_ + "/d/f") << "x";
  struct stat st_before;
  ASSERT_EQ(::stat((root_ + "/d/f").c_str(), &st_before), 0);
  ASSERT_TRUE(Send(Encoder(MsgType::kRename).U64(2).Str("d").Str("e").Finish() +
                   Encoder(MsgType::kRename).U64(3).Str("gone").Str("x").Finish() +
                   Encoder(MsgType::kRename).U64(4).Str("e").Str("../outside/e").Finish() +
                   Commit(5)));
  auto replies = Take();
  ASSERT_EQ(replies.size(), 3u);
  EXPECT_EQ(replies[0].type, MsgType::kFailed);
  EXPECT_EQ(replies[0].seq, 3u);
  EXPECT_EQ(replies[1].type, MsgType::kFailed);  // The escape.
  EXPECT_EQ(replies[1].seq, 4u);
  EXPECT_EQ(replies[2].type, MsgType::kCommitted);
  struct stat st_after;
  ASSERT_EQ(::stat((root_ + "/e/f").c_str(), &st_after), 0);
  EXPECT_EQ(st_after.st_ino, st_before.st_ino) << "moved, not copied";
  EXPECT_TRUE(fs::is_empty(outside_));
}

// The agent signs its copy; the delta of a changed middle rebuilds the new content exactly,
// and carries far less than the file.
TEST_F(AgentTest, DeltaAgainstTheSignatureRebuildsTheNewContent) {
  std::string old_content = RandomBytes(3 << 20, 1);
  ASSERT_TRUE(Send(Put(2, "big", old_content) + Commit(3)));
  Take();
  std::string sig = Signature(4, "big");
  ASSERT_FALSE(sig.empty());
  std::string new_content = old_content;
  new_content.replace(1 << 20, 50000, RandomBytes(50000, 2));
  new_content += "appended";
  std::string delta = Delta(sig, new_content);
  EXPECT_LT(delta.size(), 200000u);
  ASSERT_TRUE(Send(Patch(5, "big", delta, new_content) + Commit(6)));
  auto replies = Take();
  ASSERT_EQ(replies.size(), 1u) << replies[0].message;
  EXPECT_EQ(replies[0].type, MsgType::kCommitted);
  EXPECT_TRUE(Read(root_ + "/big") == new_content);
  EXPECT_THAT(Names(root_), ::testing::ElementsAre("big"));
}

// The agent signs a large file it put in place in the background; the next SIGNATURE is
// answered from that, but only while the file is exactly what was signed.
TEST_F(AgentTest, SignatureOfAFileItWroteIsMadeAheadAndDroppedWhenTheFileChanges) {
  std::string content = RandomBytes(3 << 20, 6);
  ASSERT_TRUE(Send(Put(2, "big", content) + Commit(3)));
  Take();
  agent_.WaitForSignatures();
  SignatureBuilder want(content.size());
  want.Update(content);
  EXPECT_TRUE(Signature(4, "big") == want.Finish());
  EXPECT_EQ(agent_.signatures_from_cache(), 1u);

  content += "more";  // Changed on the standby behind the agent's back.
  { std::ofstream(root_ + "/big", std::ios::binary | std::ios::app) << "more"; }
  SignatureBuilder again(content.size());
  again.Update(content);
  EXPECT_TRUE(Signature(5, "big") == again.Finish()) << "a stale signature was handed out";
  EXPECT_EQ(agent_.signatures_from_cache(), 1u);

  ASSERT_TRUE(Send(Put(6, "small", "tiny") + Commit(7)));  // Too small for deltas: not signed.
  Take();
  agent_.WaitForSignatures();
  Signature(8, "small");
  EXPECT_EQ(agent_.signatures_from_cache(), 1u);
}

// A delta damaged on the way (a flipped byte in literal data, or in the commands) or made
// against another copy never replaces the file: FAILED, the old file stays, no temporary.
TEST_F(AgentTest, DamagedOrMismatchedDeltaKeepsTheOldFile) {
  std::string old_content = RandomBytes(2 << 20, 3);
  ASSERT_TRUE(Send(Put(2, "f", old_content) + Commit(3)));
  Take();
  std::string sig = Signature(4, "f");
  std::string new_content = old_content;
  new_content.replace(100000, 30000, RandomBytes(30000, 4));
  std::string delta = Delta(sig, new_content);
  std::string in_literal = delta;
  size_t lit = in_literal.find(new_content.substr(100000 + 1000, 64));
  ASSERT_NE(lit, std::string::npos);
  in_literal[lit] = static_cast<char>(in_literal[lit] ^ 0x5a);
  std::string in_commands = delta;
  in_commands[4] = static_cast<char>(0xff);  // The first command after the magic.
  std::string other_sig = Signature(5, "f");
  uint64_t seq = 10;
  for (const std::string& bad : {in_literal, in_commands, Delta(other_sig, RandomBytes(2 << 20, 5))}) {
    ASSERT_TRUE(Send(Patch(seq, "f", bad, new_content) + Commit(seq + 1)));
    auto replies = Take();
    ASSERT_EQ(replies.size(), 2u);
    EXPECT_EQ(replies[0].type, MsgType::kFailed);
    EXPECT_EQ(replies[0].seq, seq);
    EXPECT_EQ(replies[1].type, MsgType::kCommitted);
    EXPECT_TRUE(Read(root_ + "/f") == old_content);
    EXPECT_THAT(Names(root_), ::testing::ElementsAre("f"));
    seq += 2;
  }
}

TEST_F(AgentTest, SignatureOrPatchOfAMissingFileFails) {
  Reply failed{};
  EXPECT_TRUE(Signature(2, "nothing-here", &failed).empty());
  EXPECT_EQ(failed.type, MsgType::kFailed);
  ASSERT_TRUE(Send(Patch(3, "nothing-here", "rs\x026\0", "x") + Commit(4)));
  auto replies = Take();
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0].type, MsgType::kFailed);
  EXPECT_THAT(replies[0].message, ::testing::HasSubstr("no old copy"));
  EXPECT_THAT(Names(root_), ::testing::IsEmpty());
}

// ZSTD frames carry ordinary frames, split anywhere.
TEST_F(AgentTest, CompressedFramesAreUnpackedInOrder) {
  std::string plain = Put(2, "z", std::string(100000, 'z')) + Commit(3);
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  std::string frames;
  for (size_t at = 0; at < plain.size(); at += 7000) {
    std::string part = plain.substr(at, 7000);
    std::string out(ZSTD_compressBound(part.size()) + 64, '\0');
    ZSTD_inBuffer in{part.data(), part.size(), 0};
    ZSTD_outBuffer o{out.data(), out.size(), 0};
    ASSERT_EQ(ZSTD_compressStream2(cctx, &o, &in, ZSTD_e_flush), 0u);
    out.resize(o.pos);
    frames += Encoder(MsgType::kZstd).Raw(out).Finish();
  }
  ZSTD_freeCCtx(cctx);
  EXPECT_LT(frames.size(), 2000u);
  ASSERT_TRUE(Send(frames));
  auto replies = Take();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].type, MsgType::kCommitted);
  EXPECT_EQ(Read(root_ + "/z"), std::string(100000, 'z'));
}

// A version 1 client (no capabilities) talks version 1; the new messages are then refused.
TEST_F(AgentTest, OlderClientGetsVersionOneAndNoCapabilities) {
  Agent agent;
  ASSERT_TRUE(HandleFrame(agent, Encoder(MsgType::kHello).U32(kMagic).U16(1).U64(kKnownCaps).Finish()));
  FrameReader out;
  out.Feed(agent.TakeOutput());
  auto f = out.Next();
  ASSERT_TRUE(f && *f);
  Decoder d((*f)->payload);
  d.U32();
  EXPECT_EQ(d.U16(), 1u);
  EXPECT_EQ(d.U64(), 0u);
  ASSERT_TRUE(HandleFrame(agent, Encoder(MsgType::kOpen).U64(1).Str(root_).U32(0).Finish()));
  EXPECT_FALSE(HandleFrame(agent, Encoder(MsgType::kSignature).U64(2).Str("a").Finish()));
  EXPECT_EQ(LastReplyType(agent), MsgType::kFatal);
}

// `syncd --server --root DIR`: a target in or beneath a root opens (missing levels created);
// one outside, one reached by `..`, and one through a symlink planted beneath the root are
// refused, and nothing is created outside.
TEST_F(AgentTest, ConfinedAgentOpensOnlyBeneathItsRoots) {
  std::string allowed = base_ + "/allowed";
  fs::create_directories(allowed);
  fs::create_symlink(outside_, allowed + "/link");
  auto open = [&](const std::string& target) {
    Agent agent({allowed});
    HandleFrame(agent, Encoder(MsgType::kHello).U32(kMagic).U16(kProtocolVersion).U64(0).Finish());
    HandleFrame(agent, Encoder(MsgType::kOpen).U64(1).Str(target).U32(0).Finish());
    return LastReplyType(agent);
  };
  EXPECT_EQ(open(allowed), MsgType::kOk);
  EXPECT_EQ(open(allowed + "/spool/new//deeper/."), MsgType::kOk);
  EXPECT_TRUE(fs::is_directory(allowed + "/spool/new/deeper"));
  EXPECT_EQ(open(outside_), MsgType::kFailed);
  EXPECT_EQ(open(allowed + "/../outside/x"), MsgType::kFailed);
  EXPECT_EQ(open(allowed + "x"), MsgType::kFailed);  // A sibling sharing the root's name as a prefix.
  EXPECT_EQ(open(allowed + "/link"), MsgType::kFailed);
  EXPECT_EQ(open(allowed + "/link/created"), MsgType::kFailed);
  EXPECT_FALSE(fs::exists(outside_ + "/created"));
  EXPECT_FALSE(fs::exists(outside_ + "/x"));
  EXPECT_FALSE(fs::exists(base_ + "/allowedx"));
  // A relative target is relative to the agent's working directory (the login directory).
  auto saved = fs::current_path();
  fs::current_path(allowed);
  EXPECT_EQ(open("relative/dir"), MsgType::kOk);
  EXPECT_EQ(open("link/x"), MsgType::kFailed);
  fs::current_path(base_);
  EXPECT_EQ(open("outside"), MsgType::kFailed);
  fs::current_path(saved);
  EXPECT_TRUE(fs::is_directory(allowed + "/relative/dir"));
}

TEST_F(AgentTest, BackupSettingsAreCheckedAndAConfinedAgentKeepsBackupsWithinItsRoots) {
  std::string allowed = base_ + "/allowed";
  fs::create_directories(allowed + "/target");
  auto backup = [&](const std::string& suffix, const std::string& dir) {
    Agent agent({allowed});
    HandleFrame(agent, Encoder(MsgType::kHello).U32(kMagic).U16(kProtocolVersion).U64(kKnownCaps).Finish());
    HandleFrame(agent, Encoder(MsgType::kOpen).U64(1).Str(allowed + "/target").U32(0).Finish());
    HandleFrame(agent, Encoder(MsgType::kBackup).Str(suffix).Str(dir).Finish());
    return LastReplyType(agent);
  };
  EXPECT_EQ(backup("~", ""), MsgType::kOk);  // Nothing more to say: OPEN's answer is the last.
  EXPECT_EQ(backup("", "../bak"), MsgType::kOk);
  EXPECT_TRUE(fs::is_directory(allowed + "/bak"));
  EXPECT_EQ(backup("", ""), MsgType::kFatal);         // Backups beside need a suffix.
  EXPECT_EQ(backup("a/b", ""), MsgType::kFatal);      // A suffix is part of one name.
  EXPECT_EQ(backup("~", outside_), MsgType::kFatal);  // Outside the agent's roots.
  EXPECT_EQ(backup("~", "../../outside"), MsgType::kFatal);
  EXPECT_FALSE(fs::exists(outside_ + "/target"));
}

TEST_F(AgentTest, MalformedFramesGetFatalRepliesNotCrashes) {
  // Truncated PUT_BEGIN, an unknown type, and data for a PUT that never began.
  std::vector<std::string> frames = {Encoder(MsgType::kPutBegin).U64(2).Finish(),
                                     Encoder(static_cast<MsgType>(0x55)).U64(1).Finish(),
                                     Encoder(MsgType::kPutData).U64(99).Raw("x").Finish()};
  for (const std::string& frame : frames) {
    FrameReader r;
    r.Feed(Encoder(MsgType::kHello).U32(kMagic).U16(1).U64(0).Finish() +
           Encoder(MsgType::kOpen).U64(1).Str(root_).U32(0).Finish() + frame);
    Agent agent;
    bool alive = true;
    while (auto f = r.Next()) {
      if (!*f) break;
      alive = agent.Handle((*f)->type, (*f)->payload);
    }
    EXPECT_FALSE(alive);
    EXPECT_EQ(LastReplyType(agent), MsgType::kFatal);
  }
}

}  // namespace
}  // namespace syncd::transport
