// The agent's side of generations: HISTORY tells what its node's tree holds, STAMP is recorded
// with the COMMIT that follows it, and GET reads a file of the tree for the client.
#include <gtest/gtest.h>
#include <unistd.h>
#include <xxhash.h>

#include <filesystem>
#include <fstream>

#include "tests/random_bytes.h"
#include "tests/temp_dir.h"
#include "transport/agent.h"

namespace syncd::transport {
namespace {

struct Frame {
  MsgType type;
  std::string payload;
};

class AgentHistoryTest : public ::testing::Test {
 protected:
  void Open(const std::string& state_dir) {
    agent_ = std::make_unique<Agent>(std::vector<std::string>{}, state_dir);
    Send(Encoder(MsgType::kHello).U32(kMagic).U16(kProtocolVersion).U64(kKnownCaps).Finish());
    Send(Encoder(MsgType::kOpen).U64(1).Str(root_).U32(kKeepPerms | kKeepTimes).Finish());
    auto replies = Take();
    ASSERT_EQ(replies.size(), 2u);
    ASSERT_EQ(replies[1].type, MsgType::kOk);
  }
  bool Send(const std::string& frame) {
    return agent_->Handle(static_cast<MsgType>(frame[4]), std::string_view(frame).substr(5));
  }
  std::vector<Frame> Take() {
    FrameReader reader;
    reader.Feed(agent_->TakeOutput());
    std::vector<Frame> out;
    while (auto f = reader.Next()) {
      if (!*f) break;
      out.push_back(Frame{(*f)->type, std::string((*f)->payload)});
    }
    return out;
  }
  PeerHistory History(uint64_t seq) {
    EXPECT_TRUE(Send(Encoder(MsgType::kHistory).U64(seq).Finish()));
    auto replies = Take();
    EXPECT_EQ(replies.size(), 1u);
    PeerHistory h;
    if (replies.empty() || replies[0].type != MsgType::kHistoryData) return h;
    Decoder d(replies[0].payload);
    EXPECT_EQ(d.U64(), seq);
    h.state = static_cast<PeerHistory::State>(d.U8());
    h.node = d.Str();
    h.detail = d.Str();
    h.lineage = d.EpochsField();
    EXPECT_TRUE(d.done());
    return h;
  }
  static EpochRecord Epoch(int64_t through, uint64_t changes) {
    EpochRecord e;
    e.node = "aaaaaaaaaaaaaaaa";
    e.host = "osm1";
    e.counter = 2;
    e.started = 1000;
    e.first = 2000;
    e.through = through;
    e.changes = changes;
    e.unconfirmed_since = 1500;  // Never kept by a standby.
    return e;
  }

  syncd::testing::TempDir tmp_{"agent-history"};
  std::string root_ = tmp_ / "target";
  std::string state_ = tmp_ / "state";
  std::unique_ptr<Agent> agent_;
};

TEST_F(AgentHistoryTest, AStampIsRecordedWithItsCommitAndToldAtTheNextSession) {
  Open(state_);
  PeerHistory fresh = History(2);
  EXPECT_EQ(fresh.state, PeerHistory::State::kNewNode);
  EXPECT_EQ(fresh.node.size(), 16u);
  EXPECT_TRUE(fresh.lineage.empty());

  ASSERT_TRUE(Send(Encoder(MsgType::kStamp).U8(1).EpochsField({Epoch(5000, 10)}).Finish()));
  EXPECT_TRUE(History(3).lineage.empty());  // Not before the COMMIT.
  ASSERT_TRUE(Send(Encoder(MsgType::kCommit).U64(4).Finish()));
  ASSERT_EQ(Take().back().type, MsgType::kCommitted);
  ASSERT_TRUE(Send(Encoder(MsgType::kStamp).U8(0).EpochsField({Epoch(9000, 12)}).Finish()));
  ASSERT_TRUE(Send(Encoder(MsgType::kCommit).U64(5).Finish()));
  Take();

  Open(state_);  // A new session: the same node, the tree's record read from disk.
  PeerHistory h = History(2);
  EXPECT_EQ(h.state, PeerHistory::State::kPresent);
  EXPECT_EQ(h.node, fresh.node);
  ASSERT_EQ(h.lineage.size(), 1u);
  EXPECT_EQ(h.lineage[0].through, 9000);
  EXPECT_EQ(h.lineage[0].changes, 12u);
  EXPECT_EQ(h.lineage[0].unconfirmed_since, 0);
  // Nothing of it is inside the replicated tree.
  for (const auto& e : std::filesystem::recursive_directory_iterator(root_))
    ADD_FAILURE() << "unexpected " << e.path();
}

TEST_F(AgentHistoryTest, AnAgentWithoutAStateDirectorySaysSoAndStillCommits) {
  Open("");
  PeerHistory h = History(2);
  EXPECT_EQ(h.state, PeerHistory::State::kUnusable);
  EXPECT_NE(h.detail.find("no state directory"), std::string::npos);
  ASSERT_TRUE(Send(Encoder(MsgType::kStamp).U8(1).EpochsField({Epoch(5000, 10)}).Finish()));
  ASSERT_TRUE(Send(Encoder(MsgType::kCommit).U64(3).Finish()));
  EXPECT_EQ(Take().back().type, MsgType::kCommitted);
}

TEST_F(AgentHistoryTest, MalformedStampsEndTheSession) {
  Open(state_);
  EXPECT_FALSE(Send(Encoder(MsgType::kStamp).U8(2).EpochsField({}).Finish()));
  Open(state_);
  std::string many = Encoder(MsgType::kStamp).U8(0).U32(kMaxWireEpochs + 1).Finish();
  EXPECT_FALSE(Send(many));
  Open(state_);
  EXPECT_FALSE(Send(Encoder(MsgType::kStamp).U8(0).U32(1).Str("cut").Finish()));
  // A node id that would break the history file's lines.
  EpochRecord odd = Epoch(5, 1);
  odd.node = "aaaa aaaa\naaaaaa";
  Open(state_);
  EXPECT_FALSE(Send(Encoder(MsgType::kStamp).U8(1).EpochsField({odd}).Finish()));
}

TEST_F(AgentHistoryTest, GetSendsAFileWithItsHashAndRefusesWhatIsNotOne) {
  Open(state_);
  std::string content = syncd::testing::RandomBytes(600 * 1024, 7);
  std::ofstream(root_ + "/big.bin") << content;
  ::symlink("/etc/passwd", (root_ + "/link").c_str());
  ASSERT_TRUE(Send(Encoder(MsgType::kGet).U64(9).Str("big.bin").Finish()));
  std::string got;
  auto replies = Take();
  ASSERT_GE(replies.size(), 3u);  // 256 KiB per GET_DATA.
  for (const Frame& f : replies) {
    Decoder d(f.payload);
    EXPECT_EQ(d.U64(), 9u);
    if (f.type == MsgType::kGetData) got += d.Rest();
    if (f.type == MsgType::kGetEnd) {
      EXPECT_EQ(d.U64(), content.size());
      XXH128_hash_t h = XXH3_128bits(content.data(), content.size());
      EXPECT_EQ(d.U64(), h.high64);
      EXPECT_EQ(d.U64(), h.low64);
    }
  }
  EXPECT_EQ(replies.back().type, MsgType::kGetEnd);
  EXPECT_EQ(got, content);
  // A symlink is not followed, a path cannot climb out, a missing file fails: each a FAILED.
  for (std::string path : {"link", "../state/node-id", "missing"}) {
    ASSERT_TRUE(Send(Encoder(MsgType::kGet).U64(10).Str(path).Finish())) << path;
    auto r = Take();
    ASSERT_EQ(r.size(), 1u) << path;
    EXPECT_EQ(r[0].type, MsgType::kFailed) << path;
  }
}

TEST_F(AgentHistoryTest, HistoryNeedsItsCapability) {
  agent_ = std::make_unique<Agent>(std::vector<std::string>{}, state_);
  Send(Encoder(MsgType::kHello).U32(kMagic).U16(kProtocolVersion).U64(kKnownCaps & ~kCapHistory).Finish());
  Send(Encoder(MsgType::kOpen).U64(1).Str(root_).U32(0).Finish());
  Take();
  EXPECT_FALSE(Send(Encoder(MsgType::kHistory).U64(2).Finish()));
  EXPECT_EQ(Take().back().type, MsgType::kFatal);
}

}  // namespace
}  // namespace syncd::transport
