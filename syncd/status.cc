#include "syncd/status.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include <fmt/format.h>

#include "syncd/log.h"

namespace syncd {
namespace {

using SystemClock = std::chrono::system_clock;

std::string LocalTime(SystemClock::time_point t) {
  std::time_t tt = SystemClock::to_time_t(t);
  std::tm tm;
  localtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a %b %e %H:%M:%S %Y", &tm);
  return buf;
}

double UnixSeconds(SystemClock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      out += fmt::format("\\u{:04x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// A label value in the Prometheus text format.
std::string Label(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string Size(double bytes) {
  if (bytes >= 1024.0 * 1024 * 1024) return fmt::format("{:.1f} GiB", bytes / (1024.0 * 1024 * 1024));
  if (bytes >= 1024.0 * 1024) return fmt::format("{:.0f} MiB", bytes / (1024.0 * 1024));
  return fmt::format("{:.0f} KiB", bytes / 1024.0);
}

}  // namespace

std::string ProgressLine(const std::vector<SyncStatus>& syncs, int* percent) {
  SyncStatus::Progress sum;
  bool any = false;
  for (const SyncStatus& s : syncs) {
    if (!s.progress) continue;
    any = true;
    sum.ops_done += s.progress->ops_done;
    sum.ops_total += s.progress->ops_total;
    sum.bytes_done += s.progress->bytes_done;
    sum.bytes_total += s.progress->bytes_total;
    sum.seconds = std::max(sum.seconds, s.progress->seconds);
  }
  if (!any) return {};
  // Bytes measure the work when there are any; a tree of empty files is counted in files.
  double done = static_cast<double>(sum.bytes_total > 0 ? sum.bytes_done : sum.ops_done);
  double total = static_cast<double>(sum.bytes_total > 0 ? sum.bytes_total : sum.ops_total);
  double share = total > 0 ? std::min(1.0, done / total) : 1.0;
  if (percent) *percent = static_cast<int>(share * 100);
  std::string line = fmt::format("reconciling: {}/{} files, {}/{}", sum.ops_done, sum.ops_total,
                                 Size(static_cast<double>(sum.bytes_done)),
                                 Size(static_cast<double>(sum.bytes_total)));
  if (sum.seconds >= 1 && sum.bytes_done > 0) {
    double rate = static_cast<double>(sum.bytes_done) / sum.seconds;
    line += fmt::format(", {}/s", Size(rate));
    if (share > 0 && share < 1)
      line += fmt::format(", about {:.0f} s left", sum.seconds * (1 - share) / share);
  }
  return line;
}

std::string StatusText(const std::vector<SyncStatus>& syncs, SystemClock::time_point now) {
  std::string out = fmt::format("syncd status report at {}\n", LocalTime(now));
  uint64_t watches = 0;
  for (const SyncStatus& s : syncs) {
    watches += s.watches;
    out += fmt::format("\n{} source={}/ target={}\n", s.name, s.source, s.target);
    out += fmt::format("State: {}\n", s.state);
    out += fmt::format("There are {} delays\n", s.pending);
    out += fmt::format("Lag: {:.3f} s\n", s.lag_seconds);
    out += fmt::format("Last success: {}\n", s.last_success ? LocalTime(*s.last_success) : "never");
    out += fmt::format("Sent: {} operations, {} bytes; refused: {}; reconnects: {}\n", s.operations,
                       s.bytes, s.failures, s.reconnects);
    if (s.failing > 0) {
      out += fmt::format("Failing: {} paths, retried until they go over:\n", s.failing);
      for (const std::string& p : s.failing_paths) out += fmt::format("  {}\n", EscapeControl(p));
    }
    out += "Filtering:\n";
    if (s.filter_rules.empty()) out += "  nothing.\n";
    for (const std::string& rule : s.filter_rules) {
      // "- X" and "+ X" read as lsyncd's words; other rules as rsync writes them.
      if (rule.starts_with("- ")) out += fmt::format("  exclude {}\n", rule.substr(2));
      else if (rule.starts_with("+ ")) out += fmt::format("  include {}\n", rule.substr(2));
      else out += fmt::format("  {}\n", rule);
    }
  }
  // lsyncd lists every watched directory here; on a large tree that made the file huge.
  out += fmt::format("\nInotify watching {} directories\n", watches);
  return out;
}

std::string StatusJson(const std::vector<SyncStatus>& syncs, SystemClock::time_point now) {
  std::string out = fmt::format("{{\"time\": {:.3f}, \"syncs\": [", UnixSeconds(now));
  for (size_t i = 0; i < syncs.size(); ++i) {
    const SyncStatus& s = syncs[i];
    std::string failing;
    for (const std::string& p : s.failing_paths) failing += (failing.empty() ? "" : ", ") + JsonString(p);
    out += fmt::format(
        "{}\n  {{\"name\": {}, \"source\": {}, \"target\": {}, \"state\": {}, \"pending\": {}, "
        "\"lag_seconds\": {:.3f}, \"last_success\": {}, \"operations\": {}, \"bytes\": {}, "
        "\"failures\": {}, \"reconnects\": {}, \"watches\": {}, \"failing\": {}, "
        "\"failing_paths\": [{}]}}",
        i ? "," : "", JsonString(s.name), JsonString(s.source), JsonString(s.target),
        JsonString(s.state), s.pending, s.lag_seconds,
        s.last_success ? fmt::format("{:.3f}", UnixSeconds(*s.last_success)) : "null", s.operations,
        s.bytes, s.failures, s.reconnects, s.watches, s.failing, failing);
  }
  return out + "\n]}\n";
}

std::string StatusPrometheus(const std::vector<SyncStatus>& syncs) {
  struct Metric {
    const char* name;
    const char* type;
    const char* help;
    double (*value)(const SyncStatus&);
  };
  static const Metric kMetrics[] = {
      {"syncd_in_sync", "gauge", "1 when everything changed is durable on the peer",
       [](const SyncStatus& s) { return s.state == "in sync" ? 1.0 : 0.0; }},
      {"syncd_diverged", "gauge",
       "1 when the standby holds changes this node never received and is left untouched",
       [](const SyncStatus& s) { return s.state == "diverged" ? 1.0 : 0.0; }},
      {"syncd_pending_changes", "gauge", "Changed paths not yet durable on the peer",
       [](const SyncStatus& s) { return static_cast<double>(s.pending); }},
      {"syncd_lag_seconds", "gauge", "Age of the oldest change not yet durable on the peer",
       [](const SyncStatus& s) { return s.lag_seconds; }},
      {"syncd_last_success_timestamp_seconds", "gauge", "When the peer last made a batch durable",
       [](const SyncStatus& s) { return s.last_success ? UnixSeconds(*s.last_success) : 0.0; }},
      {"syncd_operations_total", "counter", "Operations made durable on the peer",
       [](const SyncStatus& s) { return static_cast<double>(s.operations); }},
      {"syncd_bytes_total", "counter", "File content bytes made durable on the peer",
       [](const SyncStatus& s) { return static_cast<double>(s.bytes); }},
      {"syncd_failures_total", "counter", "Operations the peer refused (each is retried)",
       [](const SyncStatus& s) { return static_cast<double>(s.failures); }},
      {"syncd_failing_paths", "gauge", "Paths failing now, retried until they go over",
       [](const SyncStatus& s) { return static_cast<double>(s.failing); }},
      {"syncd_reconnects_total", "counter", "Connections to the peer lost and made again",
       [](const SyncStatus& s) { return static_cast<double>(s.reconnects); }},
      {"syncd_watches", "gauge", "Directories watched with inotify",
       [](const SyncStatus& s) { return static_cast<double>(s.watches); }},
  };
  std::string out;
  for (const Metric& m : kMetrics) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", m.name, m.help, m.name, m.type);
    for (const SyncStatus& s : syncs)
      out += fmt::format("{}{{sync=\"{}\",source=\"{}\",target=\"{}\"}} {}\n", m.name, Label(s.name),
                         Label(s.source), Label(s.target), m.value(s));
  }
  return out;
}

bool WriteFileAtomically(const std::string& path, const std::string& content, std::string* error) {
  std::string temp = path + ".tmp";
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) {
    *error = fmt::format("{}: {}", temp, std::strerror(errno));
    return false;
  }
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *error = fmt::format("{}: {}", temp, std::strerror(errno));
      ::close(fd);
      ::unlink(temp.c_str());
      return false;
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    *error = fmt::format("{}: {}", path, std::strerror(errno));
    ::unlink(temp.c_str());
    return false;
  }
  return true;
}

}  // namespace syncd
