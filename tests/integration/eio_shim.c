// A fault injector for tests, preloaded into syncd: while the file named by SYNCD_EIO_FLAG
// exists, reading a file whose path contains "unreadable" fails with EIO, as a bad disk does;
// while the one named by SYNCD_STALL_FLAG exists, looking up a name with "stall" in it waits.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int Failing(int fd) {
  const char* flag = getenv("SYNCD_EIO_FLAG");
  struct stat st;
  if (!flag || stat(flag, &st) != 0) return 0;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
  char link[64], path[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  if (n <= 0) return 0;
  path[n] = '\0';
  return strstr(path, "unreadable") != NULL;
}

ssize_t pread(int fd, void* buf, size_t count, off_t offset) {
  static ssize_t (*real)(int, void*, size_t, off_t);
  if (!real) real = (ssize_t(*)(int, void*, size_t, off_t))dlsym(RTLD_NEXT, "pread");
  if (Failing(fd)) {
    errno = EIO;
    return -1;
  }
  return real(fd, buf, count, offset);
}

ssize_t pread64(int fd, void* buf, size_t count, off_t offset) {
  static ssize_t (*real)(int, void*, size_t, off_t);
  if (!real) real = (ssize_t(*)(int, void*, size_t, off_t))dlsym(RTLD_NEXT, "pread64");
  if (Failing(fd)) {
    errno = EIO;
    return -1;
  }
  return real(fd, buf, count, offset);
}

// While the file named by SYNCD_STALL_FLAG exists, looking up a name that contains "stall"
// (fstatat, as a scan of the source does) waits, as on a hung disk. FLAG.stalled is made when
// the first such lookup starts waiting.
int fstatat(int dirfd, const char* path, struct stat* st, int flags) {
  static int (*real)(int, const char*, struct stat*, int);
  if (!real) real = (int (*)(int, const char*, struct stat*, int))dlsym(RTLD_NEXT, "fstatat");
  const char* flag = getenv("SYNCD_STALL_FLAG");
  if (flag && path && strstr(path, "stall")) {
    char marker[4096];
    snprintf(marker, sizeof marker, "%s.stalled", flag);
    struct stat seen;
    int marked = 0;
    while (real(AT_FDCWD, flag, &seen, 0) == 0) {
      if (!marked) {
        int fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0) close(fd);
        marked = 1;
      }
      usleep(10000);
    }
  }
  return real(dirfd, path, st, flags);
}
