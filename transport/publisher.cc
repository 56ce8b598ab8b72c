#include "transport/publisher.h"

#include <fcntl.h>
#include <unistd.h>

namespace syncd::transport {

Publisher::~Publisher() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Publisher::Outcome Publisher::PublishNow(int root_fd, std::vector<Item>& group,
                                         uint64_t reopen_bytes, const Keep& keep) {
  Outcome out;
  if (group.empty()) return out;
  // File data first, then the renames that make it visible.
  ::syncfs(root_fd);
  for (Item& r : group) {
    int dir = r.dir->get();
    if (keep) {
      if (auto kept = keep(dir, r.name, r.path); !kept) {
        out.failed.push_back({r.seq, kept.error(), r.path});
        ::unlinkat(dir, r.temp.c_str(), 0);
        continue;
      }
    }
    if (::renameat(dir, r.temp.c_str(), dir, r.name.c_str()) != 0) {
      if (errno == EISDIR || errno == ENOTEMPTY || errno == EEXIST)
        out.failed.push_back({r.seq, Error{"could not make way for the new file: " + r.path +
                                               " is a directory here that holds entries the "
                                               "filter protects", errno}, r.path});
      else
        out.failed.push_back({r.seq, Error::FromErrno("rename into place " + r.path), r.path});
      ::unlinkat(dir, r.temp.c_str(), 0);
      continue;
    }
    if (r.size >= reopen_bytes) {
      UniqueFd fd(::openat(dir, r.name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY));
      if (fd.valid()) out.published.push_back(std::move(fd));
    }
  }
  group.clear();
  return out;
}

Publisher::Outcome Publisher::Start(int root_fd, std::vector<Item> group, uint64_t reopen_bytes) {
  if (group.empty()) return Finish();
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return jobs_.size() < kMaxWaiting; });
  jobs_.push_back(Job{root_fd, std::move(group), reopen_bytes});
  if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
  cv_.notify_all();
  return std::exchange(outcome_, {});
}

Publisher::Outcome Publisher::Finish() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return jobs_.empty() && !running_; });
  return std::exchange(outcome_, {});
}

void Publisher::Run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // Stopping, with nothing left to do.
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    running_ = true;
    cv_.notify_all();  // Room for the next group.
    lock.unlock();
    Outcome done = PublishNow(job.root_fd, job.group, job.reopen_bytes);
    lock.lock();
    outcome_.failed.insert(outcome_.failed.end(), std::make_move_iterator(done.failed.begin()),
                           std::make_move_iterator(done.failed.end()));
    for (UniqueFd& fd : done.published) outcome_.published.push_back(std::move(fd));
    running_ = false;
    cv_.notify_all();
  }
}

}  // namespace syncd::transport
