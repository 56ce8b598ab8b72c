// libFuzzer target: any byte stream after a valid HELLO and OPEN, fed to the agent as it comes
// off the wire. The agent must never crash, leak or touch anything outside its target, and
// whenever it ends the session it must have said why with a FATAL reply.
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "syncd/log.h"
#include "transport/agent.h"
#include "transport/codec.h"

namespace {

namespace fs = std::filesystem;
using syncd::transport::Agent;
using syncd::transport::Encoder;
using syncd::transport::FrameReader;
using syncd::transport::MsgType;

// A target on tmpfs when there is one: the agent's syncfs() is free there.
const std::string& Target() {
  static const std::string dir = [] {
    std::string base = fs::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
    std::string tmpl = base + "/syncd-fuzz.XXXXXX";
    std::string made = mkdtemp(tmpl.data());
    return made + "/target";
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Agent agent;
  FrameReader in;
  in.Feed(Encoder(MsgType::kHello).U32(syncd::transport::kMagic).U16(syncd::transport::kProtocolVersion)
              .U64(syncd::transport::kKnownCaps).Finish() +
          Encoder(MsgType::kOpen).U64(1).Str(Target()).U32(0xF).Finish());
  in.Feed(std::string_view(reinterpret_cast<const char*>(data), size));
  bool alive = true;
  while (alive) {
    auto frame = in.Next();
    if (!frame) break;  // RunAgent answers a broken stream with FATAL itself.
    if (!*frame) break;
    alive = agent.Handle((*frame)->type, (*frame)->payload);
  }
  // Every reply is a well-formed frame; a session the agent ended closes with FATAL.
  FrameReader out;
  out.Feed(agent.TakeOutput());
  MsgType last = MsgType::kOk;
  for (;;) {
    auto frame = out.Next();
    if (!frame) abort();
    if (!*frame) break;
    last = (*frame)->type;
  }
  if (out.buffered() != 0) abort();
  if (!alive && last != MsgType::kFatal) abort();
  // Start every input from an empty target.
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(Target(), ec)) fs::remove_all(e.path(), ec);
  return 0;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // The agent looks for active syncds' marks at every OPEN: an empty directory of its own.
  std::string run_dir = (fs::is_directory("/dev/shm") ? "/dev/shm" : "/tmp") + std::string("/syncd-fuzz-run.XXXXXX");
  setenv("SYNCD_RUN_DIR", mkdtemp(run_dir.data()), 1);
  syncd::Log::SetFile("/dev/null");  // The agent reports refusals to the log too.
  return 0;
}
