// Service-manager notifications (the sd_notify protocol: one datagram to $NOTIFY_SOCKET), so
// a Type=notify unit knows when syncd is ready, what it is doing, and that it is stopping.
// Without NOTIFY_SOCKET every call does nothing.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace syncd {

class ServiceNotifier {
 public:
  ServiceNotifier();  // Reads NOTIFY_SOCKET and WATCHDOG_USEC from the environment.
  // Sends e.g. "READY=1\nSTATUS=in sync"; returns false if there is no socket or it failed.
  bool Send(const std::string& state) const;
  bool enabled() const { return !socket_.empty(); }
  // Half the watchdog interval the unit asked for, if it asked for one.
  std::optional<std::chrono::milliseconds> watchdog_interval() const { return watchdog_; }

 private:
  std::string socket_;
  std::optional<std::chrono::milliseconds> watchdog_;
};

}  // namespace syncd
