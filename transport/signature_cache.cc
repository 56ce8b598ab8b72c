#include "transport/signature_cache.h"

#include <sched.h>
#include <sys/stat.h>

#include <algorithm>

#include "transport/rsync_delta.h"

namespace syncd::transport {

SignatureCache::~SignatureCache() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    queue_.clear();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::optional<SignatureCache::Identity> SignatureCache::IdentityOf(int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  return Identity{st.st_dev, st.st_ino, st.st_size,
                  st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec,
                  st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec};
}

void SignatureCache::Add(UniqueFd fd) {
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= kMaxQueued) queue_.pop_front();
    queue_.push_back(std::move(fd));
    if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
  }
  cv_.notify_all();
}

bool SignatureCache::Quiet() const {
  auto busy = std::chrono::steady_clock::duration(last_busy_ns_.load(std::memory_order_relaxed));
  return std::chrono::steady_clock::now().time_since_epoch() - busy >= kQuiet;
}

void SignatureCache::Run() {
  // Only on otherwise idle CPU: never at the expense of the transfers that write the files
  // (a startup copy of 400 MiB ran 50% longer when signing competed with it on two cores).
  // The threads that SignatureOfFile() starts inherit the policy.
  sched_param idle{};
  ::sched_setscheduler(0, SCHED_IDLE, &idle);
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    while (!stop_ && !Quiet()) cv_.wait_for(lock, kQuiet / 2);
    if (stop_) return;
    UniqueFd fd = std::move(queue_.front());
    queue_.pop_front();
    std::optional<Identity> before = IdentityOf(fd.get());
    if (!before) continue;
    signing_ = true;
    lock.unlock();
    auto sig = SignatureOfFile(fd.get(), static_cast<uint64_t>(before->size),
                               [this] { return stop_ || !Quiet(); });
    std::optional<Identity> after = IdentityOf(fd.get());
    lock.lock();
    signing_ = false;
    if (!sig && sig.error().code == ECANCELED && !stop_)
      queue_.push_back(std::move(fd));  // The agent got busy: later.
    else if (sig && after == before)
      Store(*before, std::move(*sig));
    cv_.notify_all();
  }
}

void SignatureCache::Store(const Identity& id, std::string signature) {
  if (signature.size() > kMaxBytes / 4) return;
  if (auto it = entries_.find(id.key()); it != entries_.end()) {
    bytes_ -= it->second.signature.size();
    entries_.erase(it);
    order_.erase(std::find(order_.begin(), order_.end(), id.key()));
  }
  bytes_ += signature.size();
  entries_.emplace(id.key(), Entry{id, std::move(signature)});
  order_.push_back(id.key());
  while (bytes_ > kMaxBytes) {
    auto it = entries_.find(order_.front());
    bytes_ -= it->second.signature.size();
    entries_.erase(it);
    order_.pop_front();
  }
}

void SignatureCache::WaitIdle() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return queue_.empty() && !signing_; });
}

std::optional<std::string> SignatureCache::Find(int fd) {
  std::optional<Identity> id = IdentityOf(fd);
  if (!id) return std::nullopt;
  std::lock_guard lock(mu_);
  auto it = entries_.find(id->key());
  if (it == entries_.end() || !(it->second.id == *id)) return std::nullopt;
  ++hits_;
  return it->second.signature;
}

}  // namespace syncd::transport
