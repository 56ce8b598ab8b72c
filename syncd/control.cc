#include "syncd/control.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "syncd/active_mark.h"
#include "syncd/unique_fd.h"

namespace syncd {

std::string ControlSocketPath(const std::string& config_path) {
  char real[PATH_MAX];
  std::string path = ::realpath(config_path.c_str(), real) ? real : config_path;
  uint64_t h = 1469598103934665603ull;  // FNV-1a of the canonical path.
  for (unsigned char c : path) h = (h ^ c) * 1099511628211ull;
  return fmt::format("{}/ctl-{:016x}.sock", ActiveMarkDir(), h);
}

namespace {

// Sends `request` to the syncd running `config_path` and waits up to `timeout` for its
// answer line. 0 with the answer; 1 after saying on stderr why there is none; 2 on timeout.
int Ask(const std::string& config_path, const std::string& request, std::chrono::seconds timeout,
        std::string* answer) {
  std::string path = ControlSocketPath(config_path);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (!fd.valid() ||
      ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::fprintf(stderr, "syncd: no syncd is running %s here (%s: %s)\n", config_path.c_str(),
                 path.c_str(), std::strerror(errno));
    return 1;
  }
  std::string line = request + "\n";
  if (::write(fd.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    std::fprintf(stderr, "syncd: %s: %s\n", path.c_str(), std::strerror(errno));
    return 1;
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  // The answer is all the daemon writes before it closes the connection.
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd.get(), POLLIN, 0};
    int r = left.count() > 0 ? ::poll(&p, 1, static_cast<int>(left.count())) : 0;
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) return 2;
    char buf[512];
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    answer->append(buf, static_cast<size_t>(n));
  }
  if (answer->empty() || answer->back() != '\n') {
    std::fprintf(stderr, "syncd: the running syncd closed the request without an answer\n");
    return 1;
  }
  answer->pop_back();
  return 0;
}

}  // namespace

int RequestFlush(const std::string& config_path, std::chrono::seconds timeout) {
  std::string answer;
  int r = Ask(config_path, "flush", timeout, &answer);
  if (r == 2)
    std::fprintf(stderr, "syncd: not flushed within %lld s: the standby is unreachable or slow\n",
                 static_cast<long long>(timeout.count()));
  if (r != 0) return 1;
  if (answer == "ok") {
    std::printf("flushed: every change made before now is durable on the standby\n");
    return 0;
  }
  std::fprintf(stderr, "syncd: %s\n", answer.c_str());
  return 1;
}

int RequestResolution(const std::string& config_path, const std::string& choice,
                      std::chrono::seconds timeout) {
  std::string answer;
  int r = Ask(config_path, choice, timeout, &answer);
  if (r == 2)
    std::fprintf(stderr,
                 "syncd: %s is under way but not done within %lld s; `syncd status %s` shows "
                 "how it goes\n",
                 choice.c_str(), static_cast<long long>(timeout.count()), config_path.c_str());
  if (r != 0) return 1;
  if (answer.starts_with("ok")) {
    std::printf("%s\n", answer.size() > 4 ? answer.substr(4).c_str() : "done");
    return 0;
  }
  std::fprintf(stderr, "syncd: %s\n", answer.c_str());
  return 1;
}

}  // namespace syncd
