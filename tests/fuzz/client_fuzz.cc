// libFuzzer target for the client's side of the protocol: a ReplicaClient drives a real Agent
// through connect, list, a batch of new files, a delta and a delete, while the fuzzer edits the
// agent's answers on their way back (bytes changed, inserted, cut, frames added). The client
// must never crash or read out of bounds, and each of its completion callbacks must run at
// most once, whatever the peer answers.
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "syncd/file_system.h"
#include "syncd/log.h"
#include "transport/codec.h"
#include "transport/replica_client.h"
#include "tests/fakes/agent_channel.h"

namespace {

namespace fs = std::filesystem;
using namespace syncd;
using namespace syncd::transport;

struct Dirs {
  std::string source, target;
};

const Dirs& Places() {
  static const Dirs dirs = [] {
    std::string base = fs::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
    std::string tmpl = base + "/syncd-client-fuzz.XXXXXX";
    std::string made = mkdtemp(tmpl.data());
    Dirs d{made + "/src", made + "/dst"};
    fs::create_directories(d.source + "/d");
    std::ofstream(d.source + "/d/f") << std::string(1000, 'f');
    std::string big(kDeltaMinBytes + 4096, '\0');
    for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 2654435761u) >> 13);
    std::ofstream(d.source + "/big", std::ios::binary) << big;
    fs::create_symlink("d/f", d.source + "/l");
    return d;
  }();
  return dirs;
}

// The fuzzer's input as a stream of edits, applied to the agent's answers in order.
class Edits {
 public:
  Edits(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return at_ >= size_; }
  void Apply(std::string& out) {
    if (out.empty() || empty()) return;
    uint8_t op = Take();
    size_t pos = (static_cast<size_t>(Take()) << 8 | Take()) % (out.size() + 1);
    uint8_t value = Take();
    switch (op % 6) {
      case 0: if (pos < out.size()) out[pos] = static_cast<char>(out[pos] ^ (value | 1)); break;
      case 1: out.insert(pos, 1, static_cast<char>(value)); break;
      case 2: out.resize(pos); break;
      case 3: if (pos < out.size()) out.erase(pos, value % 16 + 1); break;
      case 4: {  // A frame of the fuzzer's making, appended: the rest of the input.
        out.append(reinterpret_cast<const char*>(data_ + at_), size_ - at_);
        at_ = size_;
        break;
      }
      default: break;  // This answer goes through as it is.
    }
  }

 private:
  uint8_t Take() { return at_ < size_ ? data_[at_++] : 0; }
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
};

// A callback that must run at most once.
template <typename T>
std::function<void(T)> Once(int& calls) {
  return [&calls](T) {
    if (++calls > 1) abort();
  };
}

Op PutOf(const std::string& rel, OpKind kind = OpKind::kPut) {
  PosixFileSystem posix;
  auto e = posix.Stat(Places().source, rel);
  if (!e) abort();
  return MakeOp(kind, *e, Places().source + "/" + rel);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Edits edits(data, size);
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    ReplicaClient client(&loop, "fuzz", Places().target, kKeepPerms | kKeepTimes, [&] {
      return std::make_unique<syncd::testing::AgentChannel>(
          &loop, nullptr, [&edits](std::string& answers) { edits.Apply(answers); });
    });
    bool lost = false;
    client.OnLost([&](const Error&) { lost = true; });
    int connected = 0, listed = 0, applied = 0, again = 0, removed = 0;
    bool ok = false;
    client.Connect([&](Result<void> r) {
      if (++connected > 1) abort();
      ok = r.has_value();
    });
    uv_run(&loop, UV_RUN_DEFAULT);
    if (ok && !lost) {
      client.List(Once<Result<Listing>>(listed));
      uv_run(&loop, UV_RUN_DEFAULT);
      ChangeBatch batch;
      batch.id = 1;
      batch.ops.push_back(PutOf("d", OpKind::kMkdir));
      batch.ops.push_back(PutOf("d/f"));
      batch.ops.push_back(PutOf("l", OpKind::kSymlink));
      batch.ops.push_back(PutOf("big"));
      client.Apply(std::make_shared<const ChangeBatch>(batch), Once<BatchResult>(applied));
      uv_run(&loop, UV_RUN_DEFAULT);
      // The same file again against the copy now on the peer: a signature and a delta.
      ChangeBatch delta;
      delta.id = 2;
      delta.ops.push_back(PutOf("big"));
      delta.ops.back().basis_size = delta.ops.back().entry.size;
      client.Apply(std::make_shared<const ChangeBatch>(delta), Once<BatchResult>(again));
      uv_run(&loop, UV_RUN_DEFAULT);
      ChangeBatch gone;
      gone.id = 3;
      Entry d;
      d.path = "d";
      d.type = FileType::kDir;
      gone.ops.push_back(MakeOp(OpKind::kDelete, d));
      client.Apply(std::make_shared<const ChangeBatch>(gone), Once<BatchResult>(removed));
      uv_run(&loop, UV_RUN_DEFAULT);
    }
    client.Close();
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0) abort();  // A handle left open.
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(Places().target, ec)) fs::remove_all(e.path(), ec);
  return 0;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // The agent looks for active syncds' marks at every OPEN: an empty directory of its own.
  std::string run_dir = (fs::is_directory("/dev/shm") ? "/dev/shm" : "/tmp") + std::string("/syncd-fuzz-run.XXXXXX");
  setenv("SYNCD_RUN_DIR", mkdtemp(run_dir.data()), 1);
  syncd::Log::SetFile("/dev/null");
  return 0;
}
