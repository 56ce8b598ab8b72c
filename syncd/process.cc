#include "syncd/process.h"

#include <unistd.h>

#include <climits>
#include <fstream>

#include "syncd/log.h"

namespace syncd {

Result<void> PrepareProcess(Config& config) {
  Settings& s = config.settings;
  // daemon() changes to "/"; relative paths must be made absolute first.
  char cwd[PATH_MAX];
  if (::getcwd(cwd, sizeof cwd)) {
    for (std::optional<std::string>* p : {&s.pidfile, &s.logfile})
      if (*p && !(*p)->empty() && (**p)[0] != '/') **p = std::string(cwd) + "/" + **p;
  }
  if (s.logfile) {
    Log::SetFile(*s.logfile, /*also_stderr=*/s.nodaemon);
  }
  if (!s.nodaemon) {
    if (!s.logfile) Log::UseSyslog(s.log_ident, s.log_facility);
    if (::daemon(0, 0) != 0) return FailErrno("daemon");
  }
  if (s.pidfile) {
    std::ofstream pid(*s.pidfile, std::ios::trunc);
    if (!pid) return FailErrno("pidfile " + *s.pidfile);
    pid << ::getpid() << "\n";
  }
  return {};
}

void FinishProcess(const Config& config) {
  if (config.settings.pidfile) ::unlink(config.settings.pidfile->c_str());
}

std::string SelfExecutable(const char* argv0) {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n > 0) return std::string(buf, static_cast<size_t>(n));
  return argv0;
}

}  // namespace syncd
