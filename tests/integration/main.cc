// Integration tests run as root in a network namespace of their own, so that a throwaway sshd
// can listen on 127.0.0.1:22 without touching the machine's own services.
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (::testing::GTEST_FLAG(list_tests)) return RUN_ALL_TESTS();
  if (geteuid() != 0) {
    std::fprintf(stderr, "The integration tests need root (they start sshd, change file owners "
                         "and create a network namespace). Run them as root.\n");
    return 1;
  }
  if (unshare(CLONE_NEWNET) != 0) {
    std::fprintf(stderr, "unshare(CLONE_NEWNET): %s\n", std::strerror(errno));
    return 1;
  }
  if (std::system("ip link set lo up") != 0) {
    std::fprintf(stderr, "cannot bring up the loopback interface (is iproute2 installed?)\n");
    return 1;
  }
  // Every syncd a test starts keeps its history here (SYNCD_STATE_DIR, inherited), not in
  // this machine's /var/lib/syncd; agents started by a test's sshd are given theirs.
  char state[] = "/tmp/syncd-state.XXXXXX";
  if (!::mkdtemp(state)) {
    std::fprintf(stderr, "mkdtemp: %s\n", std::strerror(errno));
    return 1;
  }
  ::setenv("SYNCD_STATE_DIR", state, 1);
  int status = RUN_ALL_TESTS();
  std::error_code ec;
  std::filesystem::remove_all(state, ec);
  return status;
}
