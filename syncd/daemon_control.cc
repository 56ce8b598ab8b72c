// Daemon, continued: the control socket's requests. `syncd flush` is answered once every
// change made before it is durable on the peer; `syncd adopt` and `syncd overwrite` resume the
// syncs whose standby diverged and are answered once those are in sync again.
#include <fmt/format.h>

#include "syncd/daemon.h"
#include "syncd/log.h"
#include "syncd/status.h"

namespace syncd {

void Daemon::StartControl() {
  if (control_path_.empty()) return;
  control_ = std::make_unique<ControlServer>(
      &loop_, control_path_,
      [this](uint64_t client, const std::string& request) { OnControlRequest(client, request); });
  if (auto r = control_->Listen(); !r) {
    LogWarn("no control socket (syncd flush will not reach this syncd): {}", r.error().message);
    control_.reset();
  }
}

void Daemon::OnControlRequest(uint64_t client, const std::string& request) {
  if (request == "adopt" || request == "overwrite") {
    ResolveRequest r{client, request, {}};
    for (auto& slot : slots_)
      if (slot->runner->Resolve(request == "adopt" ? SyncEngine::Resolution::kAdopt
                                                   : SyncEngine::Resolution::kOverwrite))
        r.syncs.push_back(slot->config.name);
    if (r.syncs.empty()) return control_->Answer(client, "error: no sync has found its standby diverged");
    resolutions_.push_back(std::move(r));
    return CheckResolutions();
  }
  if (request != "flush") return control_->Answer(client, "error: unknown request '" + request + "'");
  // What the kernel queued came before the request: take it in, then note the time.
  for (auto& slot : slots_) slot->runner->SendPendingNow();
  flushes_.push_back(FlushRequest{client, Clock::now()});
  LogInfo("flush requested: answering once every change made before it is durable on the peer");
  // Answered now if nothing was pending; otherwise as the syncs report progress.
  CheckFlushes();
}

void Daemon::CheckFlushes() {
  if (!control_) return;
  std::vector<FlushRequest> waiting;
  for (const FlushRequest& f : flushes_) {
    std::string stopped, diverged, failed;
    bool durable = true;
    for (const auto& slot : slots_) {
      if (!slot->running) stopped = slot->config.name;
      if (slot->runner->diverged()) diverged = slot->config.name;
      if (slot->runner->DurableBefore(f.since)) continue;
      durable = false;
      // Tried again since the request, and failed again: the answer is which, and why.
      auto paths = slot->runner->FailedSince(f.since);
      if (paths.empty()) continue;
      std::string list;
      for (size_t i = 0; i < paths.size() && i < 10; ++i) list += "\n  " + EscapeControl(paths[i]);
      if (paths.size() > 10) list += fmt::format("\n  ... and {} more", paths.size() - 10);
      failed += fmt::format("{}{}: {} path(s) keep failing, retried in the background:{}",
                            failed.empty() ? "" : "\n", slot->config.name, paths.size(), list);
    }
    if (!diverged.empty())
      control_->Answer(f.client, "error: " + diverged + " found its standby diverged and sends "
                       "nothing until `syncd adopt` or `syncd overwrite`");
    else if (!stopped.empty())
      control_->Answer(f.client, "error: " + stopped + " is stopped; its changes cannot reach the peer");
    else if (!durable && !failed.empty())
      control_->Answer(f.client, "error: " + failed);
    else if (durable)
      control_->Answer(f.client, "ok");
    else
      waiting.push_back(f);
  }
  flushes_ = std::move(waiting);
}

void Daemon::CheckResolutions() {
  if (!control_) return;
  std::vector<ResolveRequest> waiting;
  for (ResolveRequest& r : resolutions_) {
    std::string answer;
    bool settled = true;
    for (const std::string& name : r.syncs) {
      for (const auto& slot : slots_) {
        if (slot->config.name != name) continue;
        if (!slot->runner->Settled()) {
          settled = false;
        } else if (slot->runner->diverged()) {
          answer += fmt::format("{}{} diverged again", answer.empty() ? "" : "; ", name);
        } else if (!slot->running) {
          answer += fmt::format("{}{} stopped", answer.empty() ? "" : "; ", name);
        }
      }
    }
    if (!settled) {
      waiting.push_back(std::move(r));
      continue;
    }
    std::string names;
    for (const std::string& n : r.syncs) names += (names.empty() ? "" : ", ") + n;
    control_->Answer(r.client, answer.empty()
                                   ? fmt::format("ok: {} in sync ({})", names,
                                                 r.choice == "adopt" ? "the standby's newer files adopted"
                                                                     : "the standby overwritten")
                                   : "error: " + answer);
  }
  resolutions_ = std::move(waiting);
}

}  // namespace syncd
