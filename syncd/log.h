// Logging: timestamped lines to stderr (foreground) or a log file, with lsyncd-style
// debug categories enabled by `-log CATEGORY` / `-log all`.
#pragma once

#include <fmt/format.h>

#include <set>
#include <string>
#include <string_view>

namespace syncd {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

// `text` with control characters written out (`\n`, `\t`, `\r`, `\xNN`), so that a file name
// holding a newline cannot split or forge a log line. Every log line goes through it.
std::string EscapeControl(std::string_view text);

class Log {
 public:
  // Lines go to `path` (opened per line, so logrotate needs no signal), and to stderr too when
  // `also_stderr` is set. An empty path means stderr only.
  static void SetFile(const std::string& path, bool also_stderr = false);
  // Lines go to syslog with this ident and facility ("user", "daemon", "local0".."local7").
  static void UseSyslog(const std::string& ident, const std::string& facility);
  static void EnableCategory(std::string_view category);  // "all" enables every one.
  static void SetQuiet(bool quiet);                       // Errors and warnings only.
  static bool Enabled(std::string_view category);
  static void Write(LogLevel level, std::string_view category, std::string_view text);
  // On a terminal: a line kept at the bottom of stderr, redrawn below each log line (empty
  // removes it). Elsewhere it does nothing; returns whether stderr is a terminal.
  static bool SetProgress(const std::string& line);
};

template <typename... Args>
void LogInfo(fmt::format_string<Args...> f, Args&&... args) {
  Log::Write(LogLevel::kInfo, "Normal", fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void LogWarn(fmt::format_string<Args...> f, Args&&... args) {
  Log::Write(LogLevel::kWarning, "Warn", fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void LogError(fmt::format_string<Args...> f, Args&&... args) {
  Log::Write(LogLevel::kError, "Error", fmt::format(f, std::forward<Args>(args)...));
}
// Debug line in a category (Inotify, Delay, Exec, Transport, ...), shown only when enabled.
template <typename... Args>
void LogDebug(std::string_view category, fmt::format_string<Args...> f, Args&&... args) {
  if (Log::Enabled(category))
    Log::Write(LogLevel::kDebug, category, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace syncd
