#include "transport/signature_cache.h"

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

void SignatureCache::Run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    UniqueFd fd = std::move(queue_.front());
    queue_.pop_front();
    std::optional<Identity> before = IdentityOf(fd.get());
    if (!before) continue;
    working_ = before;
    lock.unlock();
    auto sig = SignatureOfFile(fd.get(), static_cast<uint64_t>(before->size), &stop_);
    std::optional<Identity> after = IdentityOf(fd.get());
    lock.lock();
    working_.reset();
    if (sig && after == before) Store(*before, std::move(*sig));
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

std::optional<std::string> SignatureCache::Find(int fd) {
  std::optional<Identity> id = IdentityOf(fd);
  if (!id) return std::nullopt;
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !working_ || working_->key() != id->key(); });
  auto it = entries_.find(id->key());
  if (it == entries_.end() || !(it->second.id == *id)) return std::nullopt;
  ++hits_;
  return it->second.signature;
}

}  // namespace syncd::transport
