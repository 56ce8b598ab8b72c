// What the agent gives a file or directory of permissions and owners, whatever its umask and
// whoever made the file.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "tests/temp_dir.h"
#include "tests/transport/agent_frames.h"
#include "transport/agent.h"

namespace syncd::transport {
namespace {

namespace fs = std::filesystem;

// PUT_BEGIN, PUT_DATA and PUT_END of `content` at `path`, with `meta`.
void PutFile(Agent& agent, uint64_t seq, const std::string& path, const Meta& meta,
             const std::string& content) {
  XXH128_hash_t hash = XXH3_128bits(content.data(), content.size());
  HandleFrame(agent, Encoder(MsgType::kPutBegin).U64(seq).Str(path).U64(content.size()).MetaField(meta).Finish());
  HandleFrame(agent, Encoder(MsgType::kPutData).U64(seq).Raw(content).Finish());
  HandleFrame(agent, Encoder(MsgType::kPutEnd).U64(seq).U8(kPutComplete).U64(hash.high64).U64(hash.low64).Finish());
}

class AgentMetaTest : public ::testing::Test {
 protected:
  testing::TempDir tmp_{"agent-meta"};
  std::string base_ = tmp_.path();
};

// Without kept permissions (no `perms`, no `archive`), as rsync --no-perms: a new file or
// directory gets the source's bits less the umask and without set-id bits; a file that
// replaces an existing one keeps that one's mode; an existing directory keeps its own.
TEST_F(AgentMetaTest, WithoutKeptPermissionsModesFollowTheUmaskAndExistingFiles) {
  std::string target = base_ + "/noperms";
  fs::create_directories(target + "/old-dir");
  ::chmod((target + "/old-dir").c_str(), 0700);
  std::ofstream(target + "/existing") << "old";
  ::chmod((target + "/existing").c_str(), 0604);
  mode_t saved = ::umask(027);
  Agent agent;
  HandleFrame(agent, Encoder(MsgType::kHello).U32(kMagic).U16(kProtocolVersion).U64(0).Finish());
  HandleFrame(agent, Encoder(MsgType::kOpen).U64(1).Str(target).U32(kKeepTimes).Finish());
  auto put = [&](uint64_t seq, const std::string& path, uint32_t mode) {
    Meta meta;
    meta.mode = mode;
    PutFile(agent, seq, path, meta, "new content");
  };
  Meta dir_meta;
  dir_meta.mode = 02777;
  put(2, "fresh", 04775);
  put(3, "existing", 0777);
  HandleFrame(agent, Encoder(MsgType::kMkdir).U64(4).Str("new-dir").MetaField(dir_meta).Finish());
  HandleFrame(agent, Encoder(MsgType::kMkdir).U64(5).Str("old-dir").MetaField(dir_meta).Finish());
  HandleFrame(agent, Encoder(MsgType::kSetMeta).U64(6).Str("fresh").U8(1).MetaField(dir_meta).Finish());
  HandleFrame(agent, Encoder(MsgType::kCommit).U64(7).Finish());
  ::umask(saved);
  EXPECT_EQ(LastReplyType(agent), MsgType::kCommitted);
  auto mode = [&](const std::string& rel) {
    struct stat st;
    EXPECT_EQ(::lstat((target + "/" + rel).c_str(), &st), 0) << rel;
    return st.st_mode & 07777;
  };
  EXPECT_EQ(mode("fresh"), 0750u);      // 04775 less umask 027, no set-uid.
  EXPECT_EQ(mode("existing"), 0604u);   // Kept from the file it replaced.
  EXPECT_EQ(mode("new-dir"), 0750u);    // 02777 less umask 027 (set-gid only if inherited).
  EXPECT_EQ(mode("old-dir"), 0700u);    // Existing directory untouched.
  std::ifstream existing(target + "/existing");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(existing), {}), "new content");
}

// With kept permissions and owners, a file ends with the source's mode and owner whatever the
// agent's umask took from it at creation, and whether or not it was made with them already.
TEST_F(AgentMetaTest, KeptModesAndOwnersHoldWhateverTheUmaskAndTheCreator) {
  std::string target = base_ + "/perms";
  mode_t saved = ::umask(077);
  Agent agent;
  HandleFrame(agent, Encoder(MsgType::kHello).U32(kMagic).U16(kProtocolVersion).U64(0).Finish());
  HandleFrame(agent, Encoder(MsgType::kOpen).U64(1).Str(target)
                         .U32(kKeepPerms | kKeepTimes | kKeepOwner | kKeepGroup).Finish());
  auto put = [&](uint64_t seq, const std::string& path, uint32_t mode, uint32_t id) {
    Meta meta;
    meta.mode = mode;
    meta.uid = id;
    meta.gid = id;
    PutFile(agent, seq, path, meta, "content");
  };
  uint32_t me = ::geteuid();
  uint32_t other = me == 0 ? 4321 : me;  // Only root can give a file away.
  put(2, "private", 0600, me);      // Made as it should be: nothing to change.
  put(3, "shared", 0666, me);       // The umask took the group and other bits.
  put(4, "setuid", 04755, me);      // Set-id bits are never made at creation.
  put(5, "given", 0640, other);     // Another owner: chown, then the mode again.
  put(6, "given-suid", 02750, other);
  HandleFrame(agent, Encoder(MsgType::kCommit).U64(7).Finish());
  ::umask(saved);
  EXPECT_EQ(LastReplyType(agent), MsgType::kCommitted);
  auto stat_of = [&](const std::string& rel) {
    struct stat st {};
    EXPECT_EQ(::lstat((target + "/" + rel).c_str(), &st), 0) << rel;
    return st;
  };
  EXPECT_EQ(stat_of("private").st_mode & 07777, 0600u);
  EXPECT_EQ(stat_of("shared").st_mode & 07777, 0666u);
  EXPECT_EQ(stat_of("setuid").st_mode & 07777, 04755u);
  EXPECT_EQ(stat_of("given").st_mode & 07777, 0640u);
  EXPECT_EQ(stat_of("given-suid").st_mode & 07777, 02750u);
  EXPECT_EQ(stat_of("private").st_uid, me);
  EXPECT_EQ(stat_of("given").st_uid, other);
  EXPECT_EQ(stat_of("given").st_gid, other);
  EXPECT_EQ(stat_of("given-suid").st_gid, other);
}

}  // namespace
}  // namespace syncd::transport
