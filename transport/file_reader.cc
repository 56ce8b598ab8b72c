#include "transport/file_reader.h"

#include <unistd.h>

#include <cerrno>

namespace syncd::transport {

std::shared_ptr<FileReader> FileReader::Make(uv_loop_t* loop, UniqueFd fd, uint64_t size,
                                             size_t chunk, std::function<void()> ready) {
  if (size < kThreadedBytes) loop = nullptr;
  return std::shared_ptr<FileReader>(new FileReader(loop, std::move(fd), size, chunk, std::move(ready)));
}

FileReader::FileReader(uv_loop_t* loop, UniqueFd fd, uint64_t size, size_t chunk,
                       std::function<void()> ready)
    : loop_(loop),
      fd_(std::move(fd)),
      size_(size),
      chunk_(chunk),
      ready_cb_(std::move(ready)),
      hash_(XXH3_createState()) {
  XXH3_128bits_reset(hash_);
  work_.data = this;
}

FileReader::~FileReader() { XXH3_freeState(hash_); }

void FileReader::ReadSome(uint64_t max_bytes, std::deque<std::string>& out) {
  uint64_t read = 0;
  while (read < max_bytes && offset_ < size_ && !failed_) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(chunk_, size_ - offset_));
    std::string data;
    ssize_t n = 0;
    data.resize_and_overwrite(want, [&](char* p, size_t len) {
      do n = ::pread(fd_.get(), p, len, static_cast<off_t>(offset_));
      while (n < 0 && errno == EINTR);
      return n > 0 ? static_cast<size_t>(n) : 0;
    });
    if (n <= 0) {
      failed_ = true;  // Shrunk or unreadable while we read it.
      return;
    }
    XXH3_128bits_update(hash_, data.data(), data.size());
    offset_ += static_cast<uint64_t>(n);
    read += static_cast<uint64_t>(n);
    out.push_back(std::move(data));
  }
}

bool FileReader::Next(std::string& chunk) {
  if (!loop_ && ready_.empty()) ReadSome(chunk_, ready_);
  if (ready_.empty()) {
    if (loop_) StartWork();
    return false;
  }
  chunk = std::move(ready_.front());
  ready_.pop_front();
  if (loop_) {
    ready_bytes_ -= chunk.size();
    StartWork();
  }
  return true;
}

void FileReader::StartWork() {
  if (busy_ || abandoned_ || failed_ || offset_ == size_ || ready_bytes_ >= kReadAheadBytes) return;
  busy_ = true;
  self_ = shared_from_this();
  uv_queue_work(
      loop_, &work_,
      [](uv_work_t* w) {
        auto* self = static_cast<FileReader*>(w->data);
        self->ReadSome(kWorkBytes, self->produced_);
      },
      [](uv_work_t* w, int) {
        auto* self = static_cast<FileReader*>(w->data);
        std::shared_ptr<FileReader> keep = std::move(self->self_);
        self->busy_ = false;
        for (std::string& c : self->produced_) {
          self->ready_bytes_ += c.size();
          self->ready_.push_back(std::move(c));
        }
        self->produced_.clear();
        if (self->abandoned_) return;
        self->StartWork();
        self->ready_cb_();
      });
}

void FileReader::Abandon() {
  abandoned_ = true;
  ready_.clear();
  ready_cb_ = [] {};
}

}  // namespace syncd::transport
