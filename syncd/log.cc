#include "syncd/log.h"

#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <syslog.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>

#include "syncd/error.h"

namespace syncd {
namespace {

struct LogState {
  std::mutex mu;
  std::string file;
  bool also_stderr = false;
  bool syslog = false;
  std::string ident;
  std::set<std::string, std::less<>> categories;
  bool all = false;
  bool quiet = false;
  std::string progress;  // Shown last on a terminal's stderr.
};

LogState& State() {
  static LogState* state = new LogState();
  return *state;
}

// Whether stderr is the journal's stream (systemd sets JOURNAL_STREAM to its device:inode):
// then lines carry their priority as a "<N>" prefix and no timestamp, which journald adds.
bool StderrIsJournal() {
  static const bool journal = [] {
    const char* stream = std::getenv("JOURNAL_STREAM");
    unsigned long long dev = 0, ino = 0;
    struct stat st;
    if (!stream || std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2) return false;
    if (::fstat(STDERR_FILENO, &st) != 0) return false;
    return st.st_dev == static_cast<dev_t>(dev) && st.st_ino == static_cast<ino_t>(ino);
  }();
  return journal;
}

}  // namespace

void CheckFailed(const char* cond, const char* file, int line) {
  std::fprintf(stderr, "syncd: internal error: %s at %s:%d\n", cond, file, line);
  std::abort();
}

void Log::SetFile(const std::string& path, bool also_stderr) {
  std::lock_guard lock(State().mu);
  State().file = path;
  State().also_stderr = also_stderr;
}

void Log::UseSyslog(const std::string& ident, const std::string& facility) {
  static const std::pair<const char*, int> kFacilities[] = {
      {"user", LOG_USER},     {"daemon", LOG_DAEMON}, {"local0", LOG_LOCAL0},
      {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2}, {"local3", LOG_LOCAL3},
      {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5}, {"local6", LOG_LOCAL6},
      {"local7", LOG_LOCAL7}, {"syslog", LOG_SYSLOG}};
  int fac = LOG_USER;
  for (const auto& [name, value] : kFacilities)
    if (facility == name) fac = value;
  if (!facility.empty() && std::isdigit(static_cast<unsigned char>(facility[0])))
    fac = std::atoi(facility.c_str()) << 3;
  std::lock_guard lock(State().mu);
  State().ident = ident;  // openlog keeps the pointer.
  ::openlog(State().ident.c_str(), LOG_PID, fac);
  State().syslog = true;
}

void Log::EnableCategory(std::string_view category) {
  std::lock_guard lock(State().mu);
  if (category == "all")
    State().all = true;
  else if (category == "scarce")
    State().quiet = true;
  else
    State().categories.emplace(category);
}

void Log::SetQuiet(bool quiet) {
  std::lock_guard lock(State().mu);
  State().quiet = quiet;
}

bool Log::Enabled(std::string_view category) {
  LogState& s = State();
  std::lock_guard lock(s.mu);
  return s.all || s.categories.contains(category);
}

std::string EscapeControl(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte != 0x7f) {
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else {
      out += fmt::format("\\x{:02x}", byte);
    }
  }
  return out;
}

void Log::Write(LogLevel level, std::string_view category, std::string_view raw) {
  std::string escaped = EscapeControl(raw);
  std::string_view text = escaped;
  LogState& s = State();
  std::lock_guard lock(s.mu);
  if (s.quiet && level < LogLevel::kWarning) return;
  timeval tv;
  gettimeofday(&tv, nullptr);
  tm local;
  localtime_r(&tv.tv_sec, &local);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &local);
  std::string line = fmt::format("{}.{:03d} {}: {}\n", stamp, static_cast<int>(tv.tv_usec / 1000),
                                 category, text);
  if (s.syslog) {
    int priority = level == LogLevel::kError     ? LOG_ERR
                   : level == LogLevel::kWarning ? LOG_WARNING
                   : level == LogLevel::kInfo    ? LOG_INFO
                                                 : LOG_DEBUG;
    ::syslog(priority, "%.*s: %.*s", static_cast<int>(category.size()), category.data(),
             static_cast<int>(text.size()), text.data());
    return;
  }
  // The log file is opened per line, as lsyncd does, so logrotate needs no signal.
  bool to_stderr = s.file.empty() || s.also_stderr;
  if (!s.file.empty()) {
    if (FILE* f = std::fopen(s.file.c_str(), "ae")) {
      std::fwrite(line.data(), 1, line.size(), f);
      std::fclose(f);
    } else {
      to_stderr = true;
    }
  }
  if (to_stderr) {
    if (StderrIsJournal()) {
      int priority = level == LogLevel::kError     ? 3
                     : level == LogLevel::kWarning ? 4
                     : level == LogLevel::kInfo    ? 6
                                                   : 7;
      line = fmt::format("<{}>{}: {}\n", priority, category, text);
    }
    if (!s.progress.empty()) line = "\r\033[K" + line + s.progress;
    [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
  }
}

bool Log::SetProgress(const std::string& line) {
  static const bool tty = ::isatty(STDERR_FILENO) == 1;
  if (!tty) return false;
  LogState& s = State();
  std::lock_guard lock(s.mu);
  if (s.progress.empty() && line.empty()) return true;
  s.progress = line;
  std::string out = "\r\033[K" + line;
  [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, out.data(), out.size());
  return true;
}

}  // namespace syncd
