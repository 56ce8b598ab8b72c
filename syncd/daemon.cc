#include "syncd/daemon.h"

#include <algorithm>
#include <climits>
#include <csignal>
#include <cstdlib>

#include "syncd/log.h"
#include "syncd/status.h"

namespace syncd {
namespace {

template <typename T>
void CloseAndFree(T* handle) {
  uv_close(reinterpret_cast<uv_handle_t*>(handle),
           [](uv_handle_t* h) { delete reinterpret_cast<T*>(h); });
}

}  // namespace

Daemon::Daemon(Config config, ReplicaFactory factory)
    : config_(std::move(config)), factory_(std::move(factory)) {
  uv_loop_init(&loop_);
}

Daemon::~Daemon() {
  runners_.clear();
  for (uv_signal_t* s : signals_) CloseAndFree(s);
  if (watchdog_timer_) CloseAndFree(watchdog_timer_);
  if (status_timer_) CloseAndFree(status_timer_);
  if (stop_timer_) CloseAndFree(stop_timer_);
  // Let close callbacks run before the loop goes away.
  uv_run(&loop_, UV_RUN_DEFAULT);
  uv_loop_close(&loop_);
}

int Daemon::Run() {
  for (int signum : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) {
    auto* s = new uv_signal_t;
    uv_signal_init(&loop_, s);
    s->data = this;
    uv_signal_start(
        s,
        [](uv_signal_t* h, int sig) {
          auto* self = static_cast<Daemon*>(h->data);
          if (sig == SIGUSR1) {
            // logrotate's habit; the log file is opened for every line, so nothing to do.
            LogInfo("SIGUSR1: the log file is reopened for every line already");
            return;
          }
          if (sig == SIGHUP) {
            LogWarn("SIGHUP: reloading the configuration is not supported yet; restart syncd "
                    "to apply changes");
            return;
          }
          self->Stop(sig == SIGTERM ? "SIGTERM" : "SIGINT");
        },
        signum);
    signals_.push_back(s);
  }
  std::signal(SIGPIPE, SIG_IGN);
  notifier_.Send(fmt::format("STATUS=comparing {} sync(s) with the peer", config_.syncs.size()));
  if (auto interval = notifier_.watchdog_interval()) {
    watchdog_timer_ = new uv_timer_t;
    uv_timer_init(&loop_, watchdog_timer_);
    watchdog_timer_->data = this;
    auto ms = static_cast<uint64_t>(std::max<int64_t>(interval->count(), 1));
    uv_timer_start(
        watchdog_timer_,
        [](uv_timer_t* t) { static_cast<Daemon*>(t->data)->notifier_.Send("WATCHDOG=1"); }, ms, ms);
  }
  running_.assign(config_.syncs.size(), true);
  for (const SyncConfig& sync : config_.syncs) {
    // The split-brain guard: an agent on this host refuses to write over these sources.
    char real[PATH_MAX];
    std::string source = ::realpath(sync.source.c_str(), real) ? real : sync.source;
    auto mark = ActiveMark::Take(source);
    if (mark)
      marks_.push_back(std::move(*mark));
    else if (mark.error().code == EBUSY)
      LogWarn("{}: {}", sync.name, mark.error().message);
    else
      LogDebug("Transport", "{}: no split-brain mark in {}: {}", sync.name, ActiveMarkDir(),
               mark.error().message);
  }
  for (size_t i = 0; i < config_.syncs.size(); ++i) {
    const SyncConfig& sync = config_.syncs[i];
    SyncRunner::Hooks hooks;
    hooks.on_fatal = [this, i](const Error& e) { OnFatal(i, e); };
    hooks.on_in_sync = [this] {
      if (++in_sync_ == runners_.size()) {
        LogInfo("all {} syncs are in sync", runners_.size());
        // Ready once every startup comparison is durable on the peer.
        notifier_.Send(fmt::format("READY=1\nSTATUS=in sync ({} syncs)", runners_.size()));
      }
    };
    hooks.on_status = [this](const std::string& status) {
      if (!stopping_) notifier_.Send("STATUS=" + status);
    };
    SyncRunner::ReplicaFactory make = [this, &sync] { return factory_(&loop_, sync); };
    runners_.push_back(std::make_unique<SyncRunner>(&loop_, sync, config_.settings.insist,
                                                    std::move(make), std::move(hooks)));
  }
  for (auto& r : runners_) {
    if (stopping_) break;
    r->Start();
  }
  const Settings& settings = config_.settings;
  if (settings.status_file || settings.metrics_file) {
    // Rewritten on a timer, idle or not, so a stale file means a stuck daemon.
    status_timer_ = new uv_timer_t;
    uv_timer_init(&loop_, status_timer_);
    status_timer_->data = this;
    auto ms = static_cast<uint64_t>(std::max(settings.status_interval, 1)) * 1000;
    uv_timer_start(
        status_timer_, [](uv_timer_t* t) { static_cast<Daemon*>(t->data)->WriteStatus(); }, 0, ms);
  }
  uv_run(&loop_, UV_RUN_DEFAULT);
  WriteStatus();  // The final state: stopped, and what was left pending.
  return status_;
}

void Daemon::WriteStatus() {
  const Settings& settings = config_.settings;
  if (!settings.status_file && !settings.metrics_file) return;
  auto now = Clock::now();
  auto wall = std::chrono::system_clock::now();
  std::vector<SyncStatus> syncs;
  for (size_t i = 0; i < runners_.size(); ++i) {
    syncs.push_back(runners_[i]->Status(now));
    if (finished_ || !running_[i]) syncs.back().state = "stopped";
  }
  std::string error;
  bool ok = true;
  if (settings.status_file) {
    ok = WriteFileAtomically(*settings.status_file, StatusText(syncs, wall), &error) &&
         WriteFileAtomically(*settings.status_file + ".json", StatusJson(syncs, wall), &error);
  }
  if (ok && settings.metrics_file)
    ok = WriteFileAtomically(*settings.metrics_file, StatusPrometheus(syncs), &error);
  if (!ok && !status_error_logged_) LogError("status: cannot write {}", error);
  status_error_logged_ = !ok;
}

void Daemon::OnFatal(size_t index, const Error& error) {
  running_[index] = false;
  if (finished_) return;  // Syncs sharing a session all report its failure; once is enough.
  LogError("{}", error.message);
  // Before everything is up, a broken sync is a broken configuration: stop with an error.
  // Later, one sync's failure never stops the others.
  bool any = std::find(running_.begin(), running_.end(), true) != running_.end();
  if (in_sync_ < runners_.size() || !any) {
    status_ = 1;
    Finish(1);
  }
}

void Daemon::Stop(const char* why) {
  if (stopping_) {
    LogWarn("{} again: exiting without waiting for the peer", why);
    return Finish(status_);
  }
  stopping_ = true;
  LogInfo("{}: sending pending changes, then exiting", why);
  notifier_.Send("STOPPING=1\nSTATUS=sending pending changes, then exiting");
  auto remaining = std::make_shared<size_t>(runners_.size());
  stop_timer_ = new uv_timer_t;
  uv_timer_init(&loop_, stop_timer_);
  stop_timer_->data = this;
  uv_timer_start(
      stop_timer_,
      [](uv_timer_t* t) {
        auto* self = static_cast<Daemon*>(t->data);
        LogError("stop: peer did not acknowledge pending changes within {} s; exiting",
                 kStopTimeoutMs / 1000);
        self->Finish(1);
      },
      kStopTimeoutMs, 0);
  if (runners_.empty()) return Finish(status_);
  for (auto& r : runners_) {
    r->Drain([this, remaining] {
      if (--*remaining == 0) Finish(status_);
    });
  }
}

void Daemon::Finish(int status) {
  finished_ = true;
  status_ = status;
  uv_stop(&loop_);
}

}  // namespace syncd
