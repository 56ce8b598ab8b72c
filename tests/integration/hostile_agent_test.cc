// An attack client against `syncd --server`: the real binary, driven through pipes with
// frames a hostile or broken client could send. Each case checks that the agent answers as
// PROTOCOL.md says, never hangs, leaves no temporary file and keeps its memory bounded.
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/sysmacros.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <thread>

#include "tests/integration/harness.h"
#include "transport/codec.h"

namespace syncd::itest {
namespace {

namespace fs = std::filesystem;
using transport::Decoder;
using transport::Encoder;
using transport::FrameReader;
using transport::MsgType;

// `syncd --server --root ROOT` with its stdin and stdout on pipes; what it writes is read
// by a thread as it comes, so it never blocks on a full pipe.
class Agent {
 public:
  struct Limits {
    std::optional<rlim_t> files;  // RLIMIT_NOFILE, soft and hard.
    std::optional<rlim_t> stack;  // RLIMIT_STACK.
  };
  Agent(const std::string& root, Limits limits = {}) {
    int in[2], out[2];
    EXPECT_EQ(::pipe2(in, O_CLOEXEC), 0);
    EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
    // Spawned, not forked: a forked child would count this process's memory as its own.
    std::string script;
    if (limits.files) script += "ulimit -n " + std::to_string(*limits.files) + " && ";
    if (limits.stack) script += "ulimit -s " + std::to_string(*limits.stack / 1024) + " && ";
    script += "exec '" + SyncdBinary() + "' --server --root '" + root + "'";
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    const char* argv[] = {"/bin/sh", "-c", script.c_str(), nullptr};
    EXPECT_EQ(::posix_spawn(&pid_, "/bin/sh", &actions, nullptr, const_cast<char**>(argv), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    ::close(in[0]);
    ::close(out[1]);
    in_ = in[1];
    out_ = out[0];
    reader_ = std::thread([this] {
      char buf[65536];
      while (!stop_) {
        SampleRss();
        pollfd p{out_, POLLIN, 0};
        if (::poll(&p, 1, 5) <= 0) continue;
        ssize_t n = ::read(out_, buf, sizeof buf);
        if (n <= 0) break;
        std::lock_guard lock(mu_);
        received_ += static_cast<uint64_t>(n);
        tail_.append(buf, static_cast<size_t>(n));
        if (tail_.size() > 64) tail_.erase(0, tail_.size() - 64);
        if (kept_.size() < (8u << 20)) kept_.append(buf, static_cast<size_t>(n));
      }
    });
  }
  ~Agent() {
    CloseInput();
    if (pid_ > 0 && !status_) {
      ::kill(pid_, SIGKILL);
      Wait();
    }
    stop_ = true;
    if (reader_.joinable()) reader_.join();
    if (out_ >= 0) ::close(out_);
  }
  // Writes all of `bytes`; false once the agent no longer reads (it ended the session).
  bool Send(const std::string& bytes) {
    std::string_view rest = bytes;
    while (!rest.empty()) {
      ssize_t n = ::write(in_, rest.data(), rest.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      rest.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  bool EndsWith(const std::string& bytes) {
    std::lock_guard lock(mu_);
    return tail_.ends_with(bytes);
  }
  void CloseInput() {
    if (in_ >= 0) ::close(in_);
    in_ = -1;
  }
  // Stops reading what the agent writes: its next write fails with EPIPE.
  void CloseOutput() {
    stop_ = true;
    if (reader_.joinable()) reader_.join();
    ::close(out_);
    out_ = -1;
  }
  // The exit status, with the peak RSS in KiB; nullopt if it did not end in time (it hangs).
  std::optional<int> Wait(std::chrono::seconds timeout = std::chrono::seconds(60)) {
    if (status_) return status_;
    auto until = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      int status = 0;
      rusage usage{};
      pid_t r = ::wait4(pid_, &status, WNOHANG, &usage);
      if (r == pid_) {
        status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return status_;
      }
      if (std::chrono::steady_clock::now() > until) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  // The agent's peak RSS, from its own VmHWM (sampled while it runs, and at this call): its
  // rusage would count this process's memory, which it shared until exec.
  long peak_rss_kib() {
    SampleRss();
    return peak_rss_kib_;
  }
  void SampleRss() {
    std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    bool exec_done = false;
    long hwm = 0;
    while (std::getline(status, line)) {
      if (line.starts_with("Name:")) exec_done = line.find("syncd") != std::string::npos;
      if (line.starts_with("VmHWM:")) hwm = std::atol(line.c_str() + 6);
    }
    if (exec_done && hwm > peak_rss_kib_) peak_rss_kib_ = hwm;
  }
  // The frames received so far (of the first 8 MiB).
  std::vector<std::pair<MsgType, std::string>> Replies() {
    std::lock_guard lock(mu_);
    FrameReader reader;
    reader.Feed(kept_);
    std::vector<std::pair<MsgType, std::string>> out;
    while (auto f = reader.Next()) {
      if (!*f) break;
      out.emplace_back((*f)->type, std::string((*f)->payload));
    }
    return out;
  }
  // Waits until a reply of `type` has come (bounded only so that a hang fails the test).
  bool WaitFor(MsgType type) {
    return WaitUntil([&] {
      for (const auto& [t, payload] : Replies())
        if (t == type) return true;
      return false;
    }, std::chrono::seconds(30));
  }

 private:
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1;
  std::thread reader_;
  std::atomic<bool> stop_ = false;
  std::mutex mu_;
  std::string kept_;
  uint64_t received_ = 0;
  std::string tail_;  // The last bytes received.
  std::optional<int> status_;
  std::atomic<long> peak_rss_kib_ = 0;
};

std::string Hello(uint64_t caps = transport::kKnownCaps) {
  return Encoder(MsgType::kHello).U32(transport::kMagic).U16(transport::kProtocolVersion).U64(caps).Finish();
}
std::string Open(const std::string& dir, uint32_t flags = transport::kKeepPerms | transport::kKeepTimes) {
  return Encoder(MsgType::kOpen).U64(1).Str(dir).U32(flags).Finish();
}
// A complete PUT of `content` at `path`.
std::string Put(uint64_t seq, const std::string& path, const std::string& content, bool end = true) {
  std::string out = Encoder(MsgType::kPutBegin).U64(seq).Str(path).U64(content.size()).MetaField(Meta{0644, 0, 0, "", "", 1700000000, 0, {}}).Finish();
  out += Encoder(MsgType::kPutData).U64(seq).Raw(content).Finish();
  if (end) out += Encoder(MsgType::kPutEnd).U64(seq).U8(0).U64(0).U64(0).Finish();
  return out;
}

class HostileAgentTest : public ::testing::Test {
 protected:
  HostileAgentTest() : tmp_("hostile") {
    MakeDirs(root_);
    MakeDirs(outside_);
    WriteFile(outside_ + "/canary", "untouched");
  }
  ~HostileAgentTest() override {
    // Whatever a case did, nothing outside the root changed.
    EXPECT_EQ(ReadFile(outside_ + "/canary"), "untouched");
    EXPECT_EQ(std::distance(fs::directory_iterator(outside_), fs::directory_iterator()), 1);
  }
  TempDir tmp_;
  std::string root_ = tmp_ / "root";
  std::string outside_ = tmp_ / "outside";
};

// 1 GiB of frames packed into one small ZSTD frame: refused with FATAL once a frame unpacks
// past the bound, and the agent's memory stays far below the bomb's size.
TEST_F(HostileAgentTest, ZstdBombEndsTheSessionWithBoundedMemory) {
  // The same frame (FILTER with no rules, which has no answer) again and again: it packs
  // down to almost nothing.
  std::string commits;
  while (commits.size() < (4u << 20)) commits += Encoder(MsgType::kFilter).U32(0).Finish();
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  std::string packed(8u << 20, '\0');  // Small: the agent is forked from this process.
  ZSTD_outBuffer o{packed.data(), packed.size(), 0};
  for (int i = 0; i < 256; ++i) {  // 256 x 4 MiB = 1 GiB.
    ZSTD_inBuffer in{commits.data(), commits.size(), 0};
    while (in.pos < in.size) ZSTD_compressStream2(cctx, &o, &in, ZSTD_e_continue);
  }
  ZSTD_inBuffer none{nullptr, 0, 0};
  while (ZSTD_compressStream2(cctx, &o, &none, ZSTD_e_flush) != 0) {}
  ZSTD_freeCCtx(cctx);
  packed.resize(o.pos);
  packed.shrink_to_fit();
  std::string().swap(commits);
  ASSERT_LT(packed.size(), transport::kMaxFrame);
  Agent agent(root_);
  agent.Send(Hello() + Open(root_) + Encoder(MsgType::kZstd).Raw(packed).Finish());
  EXPECT_TRUE(agent.WaitFor(MsgType::kFatal));
  agent.CloseInput();
  auto status = agent.Wait();
  ASSERT_TRUE(status.has_value()) << "the agent hangs";
  EXPECT_EQ(*status, 2);
  std::cout << "zstd bomb: " << packed.size() << " bytes unpacking to 1 GiB; agent peak RSS "
            << agent.peak_rss_kib() / 1024 << " MiB\n";
  EXPECT_LT(agent.peak_rss_kib(), 64 * 1024);
}

// A ZSTD frame within the bound whose 24 MiB of frames each have an answer: the answers go
// out as they pile up, not all at once after the frame.
TEST_F(HostileAgentTest, AnswersToAPackedFrameDoNotPileUp) {
  std::string commits;
  while (commits.size() < (24u << 20)) commits += Encoder(MsgType::kCommit).U64(2).Finish();
  std::string packed(ZSTD_compressBound(commits.size()), '\0');
  packed.resize(ZSTD_compress(packed.data(), packed.size(), commits.data(), commits.size(), 1));
  std::string().swap(commits);
  Agent agent(root_);
  agent.Send(Hello() + Open(root_) + Encoder(MsgType::kZstd).Raw(packed).Finish() +
             Encoder(MsgType::kCommit).U64(3).Finish());
  // Every answer read (the last COMMITTED is seq 3), the agent still running: its peak is known.
  std::string last = Encoder(MsgType::kCommitted).U64(3).Finish();
  ASSERT_TRUE(WaitUntil([&] { return agent.EndsWith(last); }, std::chrono::seconds(60)));
  long peak = agent.peak_rss_kib();
  agent.CloseInput();
  EXPECT_EQ(agent.Wait(), 0);
  std::cout << "24 MiB of answers to one packed frame; agent peak RSS " << peak / 1024 << " MiB\n";
  EXPECT_LT(peak, 40 * 1024);
}

// SIGNATURE and PATCH_BEGIN on a FIFO (and a device) are refused at once; nothing is opened.
TEST_F(HostileAgentTest, FifoOrDeviceAsTheOldCopyIsRefusedNotWaitedOn) {
  ASSERT_EQ(::mkfifo((root_ + "/fifo").c_str(), 0644), 0);
  ASSERT_EQ(::mknod((root_ + "/null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  Agent agent(root_);
  agent.Send(Hello() + Open(root_) + Encoder(MsgType::kSignature).U64(2).Str("fifo").Finish() +
             Encoder(MsgType::kPatchBegin).U64(3).Str("fifo").U64(1).MetaField(Meta{}).Finish() +
             Encoder(MsgType::kPutEnd).U64(3).U8(1).U64(0).U64(0).Finish() +
             Encoder(MsgType::kSignature).U64(4).Str("null").Finish() +
             Encoder(MsgType::kCommit).U64(5).Finish());
  ASSERT_TRUE(agent.WaitFor(MsgType::kCommitted)) << "the agent is stuck on the FIFO";
  int failed = 0;
  for (const auto& [type, payload] : agent.Replies()) failed += type == MsgType::kFailed;
  EXPECT_EQ(failed, 3);
  agent.CloseInput();
  EXPECT_EQ(agent.Wait(), 0);
}

std::vector<std::string> Temporaries(const std::string& root) { return TempFiles(root); }

// However the session ends, no temporary file stays: EOF between PUT_END and COMMIT, EOF in
// the middle of a PUT, FATAL after PUT_END, and a client that stops reading (EPIPE).
TEST_F(HostileAgentTest, NoTemporaryFileOutlivesTheSession) {
  {
    Agent agent(root_);
    agent.Send(Hello() + Open(root_) + Put(2, "a", "finished, never committed") + Put(3, "b", "cut", false));
    agent.CloseInput();
    EXPECT_EQ(agent.Wait(), 0);
    EXPECT_EQ(Temporaries(root_), std::vector<std::string>{});
  }
  {
    Agent agent(root_);
    agent.Send(Hello() + Open(root_) + Put(2, "a", "finished") +
               Encoder(MsgType::kPutEnd).U64(99).U8(0).U64(0).U64(0).Finish());  // No PUT: FATAL.
    EXPECT_TRUE(agent.WaitFor(MsgType::kFatal));
    EXPECT_EQ(agent.Wait(), 2);
    EXPECT_EQ(Temporaries(root_), std::vector<std::string>{});
  }
  {
    for (int i = 0; i < 2000; ++i) WriteFile(root_ + "/many" + std::to_string(i), "x");
    Agent agent(root_);
    agent.Send(Hello() + Open(root_) + Put(2, "a", "finished"));
    agent.CloseOutput();
    // A LIST answer of 2,000 entries cannot be written: EPIPE ends the session.
    agent.Send(Encoder(MsgType::kList).U64(3).Finish());
    auto status = agent.Wait();
    ASSERT_TRUE(status.has_value());
    EXPECT_NE(*status, 128 + SIGPIPE) << "killed by SIGPIPE";
    EXPECT_EQ(Temporaries(root_), std::vector<std::string>{});
  }
}

// With few descriptors allowed, a LIST of a wide tree lists every entry or fails: it never
// ends as if complete with entries missing.
TEST_F(HostileAgentTest, ListWithFewDescriptorsIsCompleteOrFails) {
  for (int d = 0; d < 1000; ++d) {
    MakeDirs(root_ + "/d" + std::to_string(d));
    for (int f = 0; f < 3; ++f) WriteFile(root_ + "/d" + std::to_string(d) + "/f" + std::to_string(f), "x");
  }
  Agent agent(root_, Agent::Limits{rlim_t{32}, std::nullopt});
  agent.Send(Hello() + Open(root_) + Encoder(MsgType::kList).U64(2).Finish());
  ASSERT_TRUE(WaitUntil([&] {
    for (const auto& [type, payload] : agent.Replies())
      if (type == MsgType::kListEnd || type == MsgType::kFailed) return true;
    return false;
  }, std::chrono::seconds(60)));
  uint64_t listed = 0;
  bool ended = false;
  for (const auto& [type, payload] : agent.Replies()) {
    if (type == MsgType::kListChunk) {
      Decoder d(payload);
      d.U64();
      listed += d.U32();
    }
    ended = ended || type == MsgType::kListEnd;
  }
  if (ended) {
    EXPECT_EQ(listed, 1u + 1000u + 3000u);
  }
  agent.CloseInput();
  EXPECT_EQ(agent.Wait(), 0);
}

// A tree made on the standby with paths longer than the protocol carries: LIST lists the
// rest and says what it left out; a RENAME that would make such paths is refused; deleting a
// tree 19,000 levels deep does not recurse, even on a 1 MiB stack.
TEST_F(HostileAgentTest, PathsBeyondTheLimitAreReportedAndNeverMade) {
  std::string name(200, 'n');
  int fd = ::open(root_.c_str(), O_DIRECTORY | O_RDONLY);
  ASSERT_GE(fd, 0);
  ::mkdirat(fd, "long", 0755);
  int cur = ::openat(fd, "long", O_DIRECTORY | O_RDONLY);
  for (int i = 0; i < 30; ++i) {  // 30 x 201 bytes: past 4096.
    ASSERT_EQ(::mkdirat(cur, name.c_str(), 0755), 0);
    int next = ::openat(cur, name.c_str(), O_DIRECTORY | O_RDONLY);
    ::close(cur);
    cur = next;
  }
  ::close(cur);
  ::mkdirat(fd, "deep", 0755);
  cur = ::openat(fd, "deep", O_DIRECTORY | O_RDONLY);
  for (int i = 0; i < 19000; ++i) {
    ASSERT_EQ(::mkdirat(cur, "d", 0755), 0);
    int next = ::openat(cur, "d", O_DIRECTORY | O_RDONLY);
    ::close(cur);
    cur = next;
  }
  ::close(cur);
  MakeDirs(root_ + "/short/x/" + std::string(200, 'y'));
  WriteFile(root_ + "/plain", "plain");
  ::close(fd);
  Agent agent(root_, Agent::Limits{std::nullopt, rlim_t{1 << 20}});
  std::string long_target = "r";
  for (int i = 0; i < 20; ++i) long_target += "/" + name;  // 4,021 bytes.
  agent.Send(Hello() + Open(root_) + Encoder(MsgType::kList).U64(2).Finish());
  ASSERT_TRUE(agent.WaitFor(MsgType::kListEnd));
  bool noticed = false, plain = false;
  for (const auto& [type, payload] : agent.Replies()) {
    if (type == MsgType::kNotice) noticed = payload.find("longer than 4096") != std::string::npos;
    if (type == MsgType::kListChunk) plain = plain || payload.find("plain") != std::string::npos;
  }
  EXPECT_TRUE(noticed);
  EXPECT_TRUE(plain);
  // Make a chain of long names, then move "short" beneath it: "short/x/yyy..." would end
  // 4,124 bytes long there.
  std::string mk;
  std::string at = "r";
  mk += Encoder(MsgType::kMkdir).U64(3).Str(at).MetaField(Meta{0755, 0, 0, "", "", 0, 0, {}}).Finish();
  uint64_t seq = 4;
  for (int i = 0; i < 19; ++i) {
    at += "/" + name;
    mk += Encoder(MsgType::kMkdir).U64(seq++).Str(at).MetaField(Meta{0755, 0, 0, "", "", 0, 0, {}}).Finish();
  }
  uint64_t rename_seq = seq++;
  mk += Encoder(MsgType::kRename).U64(rename_seq).Str("short").Str(at + "/" + std::string(100, 's')).Finish();
  mk += Encoder(MsgType::kDelete).U64(seq++).Str("deep").Finish();
  mk += Encoder(MsgType::kCommit).U64(seq++).Finish();
  agent.Send(mk);
  ASSERT_TRUE(agent.WaitFor(MsgType::kCommitted));
  bool refused = false;
  for (const auto& [type, payload] : agent.Replies()) {
    if (type != MsgType::kFailed) continue;
    Decoder d(payload);
    uint64_t s = d.U64();
    uint32_t err = d.U32();
    if (s == rename_seq) refused = err == ENAMETOOLONG;
  }
  EXPECT_TRUE(refused);
  EXPECT_TRUE(fs::is_directory(root_ + "/short/x/" + std::string(200, 'y')));
  EXPECT_FALSE(fs::exists(root_ + "/deep"));
  agent.CloseInput();
  EXPECT_EQ(agent.Wait(), 0);
}

// Strict answers to small protocol holes.
TEST_F(HostileAgentTest, UndefinedStatusRefusedPathsAndCutFramesGetStrictAnswers) {
  {
    Agent agent(root_);
    agent.Send(Hello() + Open(root_) + Put(2, "a", "x", false) +
               Encoder(MsgType::kPutEnd).U64(2).U8(7).U64(0).U64(0).Finish());
    EXPECT_TRUE(agent.WaitFor(MsgType::kFatal));
    EXPECT_EQ(agent.Wait(), 2);
    EXPECT_FALSE(fs::exists(root_ + "/a"));
  }
  {
    Agent agent(root_);
    agent.Send(Hello() + Open(root_) + Encoder(MsgType::kDelete).U64(2).Str("../outside/canary").Finish() +
               Encoder(MsgType::kCommit).U64(3).Finish());
    ASSERT_TRUE(agent.WaitFor(MsgType::kCommitted));
    for (const auto& [type, payload] : agent.Replies()) {
      if (type != MsgType::kFailed) continue;
      Decoder d(payload);
      d.U64();
      EXPECT_EQ(d.U32(), static_cast<uint32_t>(EINVAL));
    }
    agent.CloseInput();
    EXPECT_EQ(agent.Wait(), 0);
  }
  {
    Agent agent(root_);
    std::string frame = Encoder(MsgType::kCommit).U64(2).Finish();
    agent.Send(Hello() + Open(root_) + frame.substr(0, frame.size() - 3));
    agent.CloseInput();
    EXPECT_EQ(agent.Wait(), 2) << "a stream cut inside a frame is not a clean end";
  }
}

}  // namespace
}  // namespace syncd::itest
