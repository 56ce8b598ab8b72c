#include "syncd/daemon.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <ctime>

#include "syncd/log.h"
#include "syncd/reload_plan.h"
#include "syncd/status.h"

namespace syncd {
namespace {


}  // namespace

Daemon::Daemon(Config config, ReplicaMaker make_replica, Loader loader)
    : config_(std::move(config)), make_replica_(std::move(make_replica)), loader_(std::move(loader)) {
  uv_loop_init(&loop_);
  LoopMonitor::Enable(&loop_);
}

Daemon::~Daemon() {
  slots_.clear();
  flushes_.clear();
  control_.reset();
  signals_.clear();
  watchdog_timer_.Reset();
  loop_monitor_.reset();
  status_timer_.Reset();
  stop_timer_.Reset();
  progress_timer_.Reset();
  Log::SetProgress("");
  // Let close callbacks run before the loop goes away.
  uv_run(&loop_, UV_RUN_DEFAULT);
  uv_loop_close(&loop_);
}

int Daemon::Run() {
  for (int signum : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) {
    auto* s = new uv_signal_t;
    uv_signal_init(&loop_, s);
    s->data = this;
    signals_.emplace_back(s);
    uv_signal_start(
        s,
        [](uv_signal_t* h, int sig) {
          auto* self = static_cast<Daemon*>(h->data);
          if (sig == SIGUSR1) {
            // logrotate's habit; the log file is opened for every line, so nothing to do.
            LogInfo("SIGUSR1: the log file is reopened for every line already");
            return;
          }
          if (sig == SIGHUP) return self->Reload();
          self->Stop(sig == SIGTERM ? "SIGTERM" : "SIGINT");
        },
        signum);
  }
  std::signal(SIGPIPE, SIG_IGN);
  notifier_.Send(fmt::format("STATUS=comparing {} sync(s) with the peer", config_.syncs.size()));
  if (auto interval = notifier_.watchdog_interval()) {
    watchdog_timer_ = MakeTimer(&loop_, this);
    auto ms = static_cast<uint64_t>(std::max<int64_t>(interval->count(), 1));
    uv_timer_start(
        watchdog_timer_.get(),
        [](uv_timer_t* t) { static_cast<Daemon*>(t->data)->notifier_.Send("WATCHDOG=1"); }, ms, ms);
  }
  loop_monitor_ = std::make_unique<LoopMonitor>(&loop_, std::chrono::seconds(1));
  StartControl();
  for (const SyncConfig& sync : config_.syncs) slots_.push_back(MakeSlot(sync));
  for (auto& slot : slots_) {
    if (stopping_) break;
    slot->runner->Start();
  }
  const Settings& settings = config_.settings;
  ScheduleStatus();
  if (settings.ready_when_watching && !finished_ && !stopping_)
    NotifyReady(fmt::format("watching; comparing {} sync(s) with the peer", slots_.size()));
  progress_timer_ = MakeTimer(&loop_, this);
  uv_timer_start(
      progress_timer_.get(), [](uv_timer_t* t) { static_cast<Daemon*>(t->data)->ShowProgress(); }, 1000,
      1000);
  uv_run(&loop_, UV_RUN_DEFAULT);
  Log::SetProgress("");
  WriteStatus();  // The final state: stopped, and what was left pending.
  return status_;
}

void Daemon::ScheduleStatus() {
  const Settings& settings = config_.settings;
  if (!settings.status_file && !settings.metrics_file) {
    if (status_timer_) uv_timer_stop(status_timer_.get());
    return;
  }
  // Rewritten on a timer, idle or not, so a stale file means a stuck daemon.
  if (!status_timer_) status_timer_ = MakeTimer(&loop_, this);
  auto ms = static_cast<uint64_t>(std::max(settings.status_interval, 1)) * 1000;
  uv_timer_start(
      status_timer_.get(), [](uv_timer_t* t) { static_cast<Daemon*>(t->data)->WriteStatus(); }, 0, ms);
}

void Daemon::WriteStatus() {
  const Settings& settings = config_.settings;
  if (!settings.status_file && !settings.metrics_file) return;
  auto now = Clock::now();
  auto wall = std::chrono::system_clock::now();
  std::vector<SyncStatus> syncs;
  for (const auto& slot : slots_) {
    syncs.push_back(slot->runner->Status(now));
    if (finished_ || !slot->running) syncs.back().state = "stopped";
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

void Daemon::NotifyReady(const std::string& status) {
  notified_ready_ = true;
  notifier_.Send("READY=1\nSTATUS=" + status);
}

void Daemon::ShowProgress() {
  if (stopping_) return;
  auto now = Clock::now();
  std::vector<SyncStatus> syncs;
  for (const auto& slot : slots_) syncs.push_back(slot->runner->Status(now));
  int percent = 0;
  std::string line = ProgressLine(syncs, &percent);
  if (line.empty()) {
    if (progress_shown_) Log::SetProgress("");
    progress_shown_ = false;
    return;
  }
  progress_shown_ = true;
  notifier_.Send(fmt::format("STATUS=reconciling {}%", percent));
  // On a terminal the line stays at the bottom; elsewhere (the journal) it is logged now and
  // then.
  if (Log::SetProgress(line)) return;
  if (now - progress_logged_ < std::chrono::seconds(5)) return;
  progress_logged_ = now;
  LogInfo("{}", line);
}

void Daemon::OnFatal(Slot* slot, const Error& error) {
  slot->running = false;
  if (finished_) return;  // Syncs sharing a session all report its failure; once is enough.
  LogError("{}", error.message);
  // Before everything is up, a broken sync is a broken configuration: stop with an error.
  // Later (a reload included), one sync's failure never stops the others.
  bool any = std::any_of(slots_.begin(), slots_.end(), [](const auto& s) { return s->running; });
  if (!ready_ || !any) {
    status_ = 1;
    Finish(1);
  }
}

std::unique_ptr<Daemon::Slot> Daemon::MakeSlot(const SyncConfig& sync) {
  auto slot = std::make_unique<Slot>();
  slot->config = sync;
  Slot* s = slot.get();
  // The split-brain guard: an agent on this host refuses to write over this source.
  char real[PATH_MAX];
  std::string source = ::realpath(sync.source.c_str(), real) ? real : sync.source;
  if (auto mark = ActiveMark::Take(source))
    slot->mark.emplace(std::move(*mark));
  else if (mark.error().code == EBUSY)
    LogWarn("{}: {}", sync.name, mark.error().message);
  else
    LogDebug("Transport", "{}: no split-brain mark in {}: {}", sync.name, ActiveMarkDir(),
             mark.error().message);
  SyncEngine::Hooks hooks;
  hooks.on_fatal = [this, s](const Error& e) {
    OnFatal(s, e);
    if (!flushes_.empty()) CheckFlushes();
    if (!resolutions_.empty()) CheckResolutions();
  };
  hooks.on_progress = [this] {
    if (!flushes_.empty()) CheckFlushes();
    if (!resolutions_.empty()) CheckResolutions();
  };
  hooks.on_in_sync = [this, s] {
    s->in_sync = true;
    Settled();
  };
  hooks.on_diverged = [this, s] {
    // Settled too: the sync waits for the operator, and the cluster must not take the start
    // for a failure (the status, `syncd status` and the metrics say diverged).
    s->diverged = true;
    Settled();
  };
  hooks.on_status = [this](const std::string& status) {
    if (!stopping_) notifier_.Send("STATUS=" + status);
  };
  PeerConnector make = [this, s] { return make_replica_(&loop_, s->config); };
  if (sync.layers)
    slot->runner = sync.layers->Make(&loop_, sync, std::move(hooks), config_.settings.insist, std::move(make));
  else
    slot->runner = std::make_unique<SyncRunner>(&loop_, sync, config_.settings.insist,
                                                std::move(make), std::move(hooks));
  return slot;
}

void Daemon::Settled() {
  if (ready_) return;
  if (!std::all_of(slots_.begin(), slots_.end(), [](const auto& x) { return x->in_sync || x->diverged; }))
    return;
  ready_ = true;
  size_t diverged = static_cast<size_t>(
      std::count_if(slots_.begin(), slots_.end(), [](const auto& x) { return x->diverged && !x->in_sync; }));
  std::string status = diverged == 0
                           ? fmt::format("in sync ({} syncs)", slots_.size())
                           : fmt::format("{} of {} syncs diverged: run syncd adopt or syncd overwrite",
                                         diverged, slots_.size());
  if (diverged == 0) LogInfo("all {} syncs are in sync", slots_.size());
  // Ready once every startup comparison is durable on the peer (or waits for the operator).
  if (!notified_ready_)
    NotifyReady(status);
  else
    notifier_.Send("STATUS=" + status);
}

void Daemon::Reload() {
  if (stopping_) return;
  if (!loader_) {
    LogWarn("SIGHUP: this daemon was started without a configuration file to reload");
    return;
  }
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  notifier_.Send(fmt::format("RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading {}",
                             now.tv_sec * 1000000LL + now.tv_nsec / 1000, config_.path));
  auto fresh = loader_();
  if (!fresh) {
    LogError("reload: {}; the running configuration stays", fresh.error().message);
    notifier_.Send("READY=1\nSTATUS=reload failed; running the previous configuration");
    return;
  }
  for (const std::string& w : fresh->warnings) LogWarn("{}", w);
  std::vector<SyncConfig> running;
  std::vector<bool> running_ok;
  for (const auto& slot : slots_) {
    running.push_back(slot->config);
    running_ok.push_back(slot->running);
  }
  ReloadPlan plan = PlanReload(running, running_ok, fresh->syncs);
  std::vector<std::unique_ptr<Slot>> next;
  std::vector<std::unique_ptr<Slot>> gone;
  size_t kept = 0, excludes = 0, restarted = 0, added = 0;
  for (size_t i = 0; i < slots_.size(); ++i) {
    std::unique_ptr<Slot>& slot = slots_[i];
    const ReloadPlan::Step step = plan.running[i];
    switch (step.action) {
      case ReloadPlan::Action::kStop:
        LogInfo("reload: {} ({} -> {}) is gone from the configuration; stopping it",
                slot->config.name, slot->config.source, slot->config.target_dir);
        gone.push_back(std::move(slot));
        break;
      case ReloadPlan::Action::kRestart: {
        const SyncConfig& want = fresh->syncs[step.wanted];
        LogInfo("reload: {} changed; restarting it", want.name);
        gone.push_back(std::move(slot));
        next.push_back(MakeSlot(want));
        next.back()->in_sync = true;  // READY was sent already; a restart does not withdraw it.
        next.back()->runner->Start();
        ++restarted;
        break;
      }
      case ReloadPlan::Action::kNewFilter:
      case ReloadPlan::Action::kKeep: {
        const SyncConfig& want = fresh->syncs[step.wanted];
        if (step.action == ReloadPlan::Action::kNewFilter) {
          LogInfo("reload: {}: new excludes; comparing the tree again", want.name);
          slot->runner->SetFilterRules(want.filter_rules);
          ++excludes;
        } else {
          ++kept;
        }
        slot->config.filter_rules = want.filter_rules;
        next.push_back(std::move(slot));
        break;
      }
    }
  }
  for (size_t j : plan.added) {
    LogInfo("reload: {} ({} -> {}) is new; starting it", fresh->syncs[j].name,
            fresh->syncs[j].source, fresh->syncs[j].target_dir);
    next.push_back(MakeSlot(fresh->syncs[j]));
    next.back()->in_sync = true;
    next.back()->runner->Start();
    ++added;
  }
  slots_ = std::move(next);
  gone.clear();  // Stops the removed and the replaced syncs.
  if (fresh->settings.logfile != config_.settings.logfile ||
      fresh->settings.pidfile != config_.settings.pidfile)
    LogWarn("reload: logfile and pidfile changes take effect at the next start");
  fresh->settings.logfile = config_.settings.logfile;
  fresh->settings.pidfile = config_.settings.pidfile;
  config_.settings = fresh->settings;
  config_.syncs = fresh->syncs;
  ScheduleStatus();  // statusFile, metricsFile or statusInterval may be new.
  LogInfo("reload: {} syncs unchanged, {} with new excludes, {} restarted, {} added",
          kept, excludes, restarted, added);
  notifier_.Send(fmt::format("READY=1\nSTATUS=reloaded: {} syncs", slots_.size()));
}

void Daemon::Stop(const char* why) {
  if (stopping_) {
    LogWarn("{} again: exiting without waiting for the peer", why);
    return Finish(status_);
  }
  stopping_ = true;
  LogInfo("{}: sending pending changes, then exiting", why);
  notifier_.Send("STOPPING=1\nSTATUS=sending pending changes, then exiting");
  auto remaining = std::make_shared<size_t>(slots_.size());
  stop_timer_ = MakeTimer(&loop_, this);
  uv_timer_start(
      stop_timer_.get(),
      [](uv_timer_t* t) {
        auto* self = static_cast<Daemon*>(t->data);
        LogError("stop: peer did not acknowledge pending changes within {} s; exiting",
                 self->config_.settings.stop_timeout_s);
        self->Finish(1);
      },
      static_cast<uint64_t>(config_.settings.stop_timeout_s) * 1000, 0);
  if (slots_.empty()) return Finish(status_);
  for (auto& slot : slots_) {
    slot->runner->Drain([this, remaining](bool delivered) {
      if (!delivered) status_ = 1;  // Changes were left behind: the stop did not do its job.
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
