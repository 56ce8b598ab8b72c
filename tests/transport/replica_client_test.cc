// ReplicaClient against an in-process agent: deltas end to end, with a link that damages them.
#include "transport/replica_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "syncd/file_system.h"
#include "tests/fakes/agent_channel.h"
#include "tests/random_bytes.h"

namespace syncd::transport {
namespace {

namespace fs = std::filesystem;
using syncd::testing::RandomBytes;

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void Write(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
}

class ReplicaClientTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(); }
  // Connects a fresh client; with `agent_version_1`, the agent is told the client speaks
  // version 1 only, so it answers as a version 1 agent would: version 1, no capabilities.
  void Start(bool agent_version_1 = false) {
    char tmpl[] = "/tmp/syncd-client-test.XXXXXX";
    base_ = mkdtemp(tmpl);
    src_ = base_ + "/src";
    dst_ = base_ + "/dst";
    fs::create_directories(src_);
    uv_loop_init(&loop_);
    client_ = std::make_unique<ReplicaClient>(
        &loop_, "test agent", dst_, kKeepPerms | kKeepTimes, [this, agent_version_1] {
          return std::make_unique<testing::AgentChannel>(&loop_, [this, agent_version_1](MsgType t, std::string& p) {
            sent_.push_back(t);
            if (t == MsgType::kHello && agent_version_1) p[5] = 1;  // magic:u32, version:u16.
            if (t == MsgType::kPatchBegin) in_patch_ = true;
            if (t == MsgType::kPutBegin) in_patch_ = false;
            // Flip one byte in the middle of the first delta frame after PATCH_BEGIN.
            if (t == MsgType::kPutData && in_patch_ && damage_ > 0 && p.size() > 100) {
              p[p.size() / 2] = static_cast<char>(p[p.size() / 2] ^ 0x01);
              --damage_;
            }
          });
        });
    Result<void> connected = Fail("never answered");
    client_->Connect([&](Result<void> r) { connected = r; });
    uv_run(&loop_, UV_RUN_DEFAULT);
    ASSERT_TRUE(connected.has_value()) << connected.error().message;
  }
  void TearDown() override {
    client_.reset();
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
    fs::remove_all(base_);
  }
  // Sends `path` as one batch and runs the loop until the batch is durable.
  BatchResult Put(const std::string& path, uint64_t basis_size = 0) {
    PosixFileSystem posix;
    auto e = posix.Stat(src_, path);
    EXPECT_TRUE(e.has_value());
    ChangeBatch b;
    b.id = ++batch_id_;
    Op op = MakeOp(OpKind::kPut, *e, src_ + "/" + path);
    op.basis_size = basis_size;
    b.ops.push_back(op);
    BatchResult result{Fail("never answered"), {}, {}, {}};
    client_->Apply(std::make_shared<const ChangeBatch>(b), [&](BatchResult r) { result = std::move(r); });
    uv_run(&loop_, UV_RUN_DEFAULT);
    return result;
  }
  std::vector<std::string> Leftovers() {
    std::vector<std::string> out;
    for (auto& e : fs::directory_iterator(dst_))
      if (e.path().filename().string().starts_with(".syncd-")) out.push_back(e.path());
    return out;
  }

  std::string base_, src_, dst_;
  uv_loop_t loop_;
  std::unique_ptr<ReplicaClient> client_;
  std::vector<MsgType> sent_;
  bool in_patch_ = false;
  int damage_ = 0;
  uint64_t batch_id_ = 0;
};

// What a batch under way has sent is known before the batch is durable (the progress of a
// first copy, which is one batch), and forgotten once it is.
TEST_F(ReplicaClientTest, ABatchUnderWaySaysHowMuchItHasSent) {
  PosixFileSystem posix;
  ChangeBatch b;
  b.id = ++batch_id_;
  uint64_t bytes = 0;
  for (int i = 0; i < 20; ++i) {
    std::string name = "f" + std::to_string(i);
    Write(src_ + "/" + name, std::string(100 + i, 'x'));
    bytes += 100 + i;
    auto e = posix.Stat(src_, name);
    ASSERT_TRUE(e.has_value());
    b.ops.push_back(MakeOp(OpKind::kPut, *e, src_ + "/" + name));
  }
  b.ops.push_back(MakeOp(OpKind::kMkdir, *posix.Stat(src_, "")));
  EXPECT_EQ(client_->InFlightSent().ops, 0u);
  // Seen from the agent as the COMMIT arrives: everything has gone out, nothing is durable.
  std::optional<Replica::Sent> at_commit;
  client_ = std::make_unique<ReplicaClient>(&loop_, "test agent", dst_, kKeepPerms | kKeepTimes, [&] {
    return std::make_unique<testing::AgentChannel>(&loop_, [&](MsgType t, std::string&) {
      if (t == MsgType::kCommit) at_commit = client_->InFlightSent();
    });
  });
  client_->Connect([](Result<void>) {});
  uv_run(&loop_, UV_RUN_DEFAULT);
  BatchResult result{Fail("never answered"), {}, {}, {}};
  client_->Apply(std::make_shared<const ChangeBatch>(b), [&](BatchResult r) {
    result = std::move(r);
    EXPECT_EQ(client_->InFlightSent().ops, 0u);
  });
  uv_run(&loop_, UV_RUN_DEFAULT);
  ASSERT_TRUE(result.status.has_value()) << result.status.error().message;
  ASSERT_TRUE(at_commit.has_value());
  EXPECT_EQ(at_commit->ops, 21u);
  EXPECT_EQ(at_commit->bytes, bytes);
}

// The done-when of deltas: a delta damaged on the way never replaces the peer's file; the
// client sends the whole file next, and the peer ends with the right content.
TEST_F(ReplicaClientTest, DamagedDeltaKeepsTheOldFileThenTheWholeFileArrives) {
  std::string v1 = RandomBytes(3 << 20, 1);
  Write(src_ + "/f", v1);
  auto r1 = Put("f");
  ASSERT_TRUE(r1.status.has_value());
  ASSERT_EQ(r1.sent_hashes.size(), 1u);
  EXPECT_TRUE(Read(dst_ + "/f") == v1);

  std::string v2 = v1;
  v2.replace(1 << 20, 20000, RandomBytes(20000, 2));
  Write(src_ + "/f", v2);
  damage_ = 1;
  sent_.clear();
  auto r2 = Put("f", v1.size());
  ASSERT_TRUE(r2.status.has_value()) << r2.status.error().message;
  EXPECT_THAT(sent_, ::testing::Contains(MsgType::kSignature));
  EXPECT_THAT(sent_, ::testing::Contains(MsgType::kPatchBegin));
  EXPECT_EQ(damage_, 0) << "the delta was not damaged";
  ASSERT_EQ(r2.failures.size(), 1u);
  EXPECT_EQ(r2.failures[0].error.code, EAGAIN);
  EXPECT_EQ(r2.failures[0].retry, Retry::kNow);  // Sent again at once by the runner.
  EXPECT_TRUE(Read(dst_ + "/f") == v1) << "a damaged delta replaced the file";
  EXPECT_THAT(Leftovers(), ::testing::IsEmpty());

  sent_.clear();
  auto r3 = Put("f", v1.size());
  ASSERT_TRUE(r3.status.has_value());
  EXPECT_THAT(r3.failures, ::testing::IsEmpty());
  EXPECT_THAT(sent_, ::testing::Contains(MsgType::kPutBegin));
  EXPECT_THAT(sent_, ::testing::Not(::testing::Contains(MsgType::kPatchBegin)));
  EXPECT_TRUE(Read(dst_ + "/f") == v2);
  EXPECT_THAT(Leftovers(), ::testing::IsEmpty());
}

// A changed file goes as a delta; a file rewritten with new data goes whole, not as a delta
// of literals.
TEST_F(ReplicaClientTest, ChangedFileGoesAsADeltaAndNewDataGoesWhole) {
  std::string v1 = RandomBytes(6 << 20, 3);
  Write(src_ + "/f", v1);
  ASSERT_TRUE(Put("f").status.has_value());
  std::string v2 = v1;
  v2.replace(3 << 20, 4096, RandomBytes(4096, 4));
  Write(src_ + "/f", v2);
  sent_.clear();
  auto r2 = Put("f", v1.size());
  ASSERT_TRUE(r2.status.has_value());
  EXPECT_THAT(r2.failures, ::testing::IsEmpty());
  EXPECT_THAT(sent_, ::testing::Contains(MsgType::kPatchBegin));
  EXPECT_TRUE(Read(dst_ + "/f") == v2);

  std::string v3 = RandomBytes(6 << 20, 5);
  Write(src_ + "/f", v3);
  sent_.clear();
  auto r3 = Put("f", v2.size());
  EXPECT_THAT(r3.failures, ::testing::IsEmpty());
  EXPECT_THAT(sent_, ::testing::Contains(MsgType::kPutBegin));
  EXPECT_THAT(sent_, ::testing::Not(::testing::Contains(MsgType::kPatchBegin)));
  EXPECT_TRUE(Read(dst_ + "/f") == v3);
}

// A rolling upgrade: against an agent that speaks version 1, a changed large file goes whole.
TEST_F(ReplicaClientTest, OlderAgentGetsWholeFiles) {
  TearDown();
  Start(/*agent_version_1=*/true);
  EXPECT_EQ(client_->capabilities(), 0u);
  std::string v1 = RandomBytes(2 << 20, 6);
  Write(src_ + "/f", v1);
  ASSERT_TRUE(Put("f").status.has_value());
  v1[100] = 'x';
  Write(src_ + "/f", v1);
  sent_.clear();
  auto r = Put("f", v1.size());
  ASSERT_TRUE(r.status.has_value());
  EXPECT_THAT(r.failures, ::testing::IsEmpty());
  EXPECT_THAT(sent_, ::testing::Not(::testing::Contains(MsgType::kSignature)));
  EXPECT_THAT(sent_, ::testing::Contains(MsgType::kPutBegin));
  EXPECT_TRUE(Read(dst_ + "/f") == v1);
}

// The client decides what the runner does with each failure: wait for a writer that holds
// the file locked, resend at once what changed or did not apply, back off when the peer
// refuses.
TEST_F(ReplicaClientTest, EachFailureCarriesWhatToDoNext) {
  Write(src_ + "/locked", "session data");
  int fd = ::open((src_ + "/locked").c_str(), O_RDONLY);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);  // PHP's session handler, rewriting the file.
  auto locked = Put("locked");
  ::close(fd);
  ASSERT_EQ(locked.failures.size(), 1u);
  EXPECT_EQ(locked.failures[0].retry, Retry::kWhenWriterDone);

  Write(src_ + "/refused", "x");
  fs::create_directories(dst_);
  ASSERT_EQ(::mkdir((dst_ + "/refused").c_str(), 0755), 0);
  Write(dst_ + "/refused/inside", "a directory that is not empty stands in the way");
  auto refused = Put("refused");  // A file cannot replace a directory that is not empty.
  ASSERT_EQ(refused.failures.size(), 1u);
  EXPECT_EQ(refused.failures[0].retry, Retry::kBackOff) << refused.failures[0].error.message;
}

}  // namespace
}  // namespace syncd::transport
