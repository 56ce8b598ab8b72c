#include "transport/file_reader.h"

#include <unistd.h>

#include <algorithm>
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
      hash_(NewXxhState()) {
  work_.data = this;
}

FileReader::~FileReader() = default;

void FileReader::EncodeDelta(std::string signature, bool segments) {
  delta_mode_ = true;
  signature_ = std::move(signature);
  uint64_t step = std::max<uint64_t>(size_, 1);
  if (uint64_t block = SignatureBlockLength(signature_); segments && block > 0)
    step = std::max(block, kSegmentBytes / block * block);  // Unmoved content matches at once.
  uint64_t at = 0;
  do {
    Segment s;
    s.begin = s.offset = s.seen_offset = at;
    s.end = std::min(size_, at + step);
    segments_.push_back(std::move(s));
    at += step;
  } while (at < size_);
  for (Worker& w : workers_) {
    w.owner = this;
    w.work.data = &w;
  }
}

bool FileReader::finished() const {
  if (!delta_mode_) return ready_.empty() && !busy_ && (offset_ == size_ || failed_);
  if (running_ > 0) return false;
  return failed_ || (emit_segment_ == segments_.size() && offset_ == size_);
}

uint64_t FileReader::consumed() const {
  uint64_t n = 0;
  for (const Segment& s : segments_) n += s.seen_offset - s.begin;
  return n;
}

uint64_t FileReader::encoded() const {
  uint64_t n = 0;
  for (const Segment& s : segments_) n += s.seen_encoded;
  return n;
}

uint64_t FileReader::matched() const {
  uint64_t n = 0;
  for (const Segment& s : segments_) n += s.seen_matched;
  return n;
}

void FileReader::ReadSome(uint64_t max_bytes, std::deque<std::string>& out) {
  uint64_t read = 0;
  while (read < max_bytes && offset_ < size_ && !read_failed_) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(chunk_, size_ - offset_));
    std::string data;
    ssize_t n = 0;
    data.resize_and_overwrite(want, [&](char* p, size_t len) {
      do n = ::pread(fd_.get(), p, len, static_cast<off_t>(offset_));
      while (n < 0 && errno == EINTR);
      return n > 0 ? static_cast<size_t>(n) : 0;
    });
    if (n <= 0) {
      read_failed_ = true;  // Shrunk or unreadable while we read it.
      if (n < 0) read_errno_ = errno;
      return;
    }
    XXH3_128bits_update(hash_.get(), data.data(), data.size());
    offset_ += static_cast<uint64_t>(n);
    read += static_cast<uint64_t>(n);
    if (!delta_mode_) out.push_back(std::move(data));  // A delta's content is only hashed here.
  }
}

bool FileReader::Next(std::string& chunk) {
  if (delta_mode_) return DeltaNext(chunk);
  if (!loop_ && ready_.empty()) {
    ReadSome(chunk_, ready_);
    failed_ = failed_ || read_failed_;
  }
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

void FileReader::WorkerStarted() {
  if (running_++ == 0) self_ = shared_from_this();
}

std::shared_ptr<FileReader> FileReader::WorkerDone() {
  std::shared_ptr<FileReader> keep = self_;
  if (--running_ == 0) self_.reset();
  return keep;  // The caller's until it returns: it may hold the last reference.
}

void FileReader::StartWork() {
  if (busy_ || abandoned_ || failed_ || offset_ == size_ || ready_bytes_ >= kReadAheadBytes) return;
  busy_ = true;
  WorkerStarted();
  uv_queue_work(
      loop_, &work_,
      [](uv_work_t* w) {
        auto* self = static_cast<FileReader*>(w->data);
        self->ReadSome(kWorkBytes, self->produced_);
      },
      [](uv_work_t* w, int) {
        auto* self = static_cast<FileReader*>(w->data);
        std::shared_ptr<FileReader> keep = self->WorkerDone();
        self->busy_ = false;
        self->failed_ = self->failed_ || self->read_failed_;
        for (std::string& c : self->produced_) {
          self->ready_bytes_ += c.size();
          self->ready_.push_back(std::move(c));
        }
        self->produced_.clear();
        if (!self->abandoned_) {
          if (self->delta_mode_)
            self->ScheduleDelta();
          else
            self->StartWork();
          self->ready_cb_();
        }
      });
}

void FileReader::EncodeSome(Worker& w) {
  if (!w.encoder) {
    auto d = DeltaEncoder::Make(signature_);
    if (!d) {
      w.error = d.error();
      return;
    }
    w.encoder = std::move(*d);
  }
  Segment& s = segments_[w.segment];
  auto sink = [&](std::string_view bytes) {
    s.encoded += bytes.size();
    w.pending.append(bytes);
    if (w.pending.size() < chunk_) return;
    size_t whole = w.pending.size() / chunk_ * chunk_;
    for (size_t at = 0; at < whole; at += chunk_) w.produced.push_back(w.pending.substr(at, chunk_));
    w.pending.erase(0, whole);
  };
  uint64_t stop = std::min(s.end, s.offset + kWorkBytes);
  std::string data;
  while (s.offset < stop) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(chunk_, stop - s.offset));
    ssize_t n = 0;
    data.resize_and_overwrite(want, [&](char* p, size_t len) {
      do n = ::pread(fd_.get(), p, len, static_cast<off_t>(s.offset));
      while (n < 0 && errno == EINTR);
      return n > 0 ? static_cast<size_t>(n) : 0;
    });
    if (n <= 0) {
      w.read_failed = true;  // Shrunk or unreadable while we read it.
      if (n < 0) w.read_errno = errno;
      return;
    }
    if (auto r = w.encoder->Update(data, sink); !r) {
      w.error = r.error();
      return;
    }
    s.offset += static_cast<uint64_t>(n);
  }
  if (s.offset == s.end) {
    if (auto r = w.encoder->Finish(sink); !r) {
      w.error = r.error();
      return;
    }
    if (!w.pending.empty()) w.produced.push_back(std::exchange(w.pending, {}));
  }
  s.matched = w.encoder->matched_bytes();
  if (s.offset == s.end) w.encoder->Restart();  // For the worker's next segment.
}

void FileReader::Collect(Worker& w) {
  Segment& s = segments_[w.segment];
  s.seen_offset = s.offset;
  s.seen_encoded = s.encoded;
  s.seen_matched = s.matched;
  for (std::string& c : w.produced) {
    s.out_bytes += c.size();
    s.out.push_back(std::move(c));
  }
  w.produced.clear();
  if (w.error) {
    delta_error_ = std::exchange(w.error, std::nullopt);
    failed_ = true;
  }
  if (w.read_failed) failed_ = true;
  if (w.read_errno) read_errno_ = w.read_errno;
  if (s.offset == s.end && !failed_) {
    s.done = true;
    w.assigned = false;
  }
}

void FileReader::ScheduleDelta() {
  if (abandoned_ || failed_) return;
  StartWork();  // The in-order hash.
  for (Worker& w : workers_) {
    if (w.busy) continue;
    if (!w.assigned) {
      if (next_segment_ >= segments_.size() || next_segment_ >= emit_segment_ + kSegmentsAhead)
        continue;
      w.segment = next_segment_++;
      w.assigned = true;
    }
    // The segment going out waits for the channel; those ahead of it wait for their turn.
    if (segments_[w.segment].out_bytes >= kReadAheadBytes) continue;
    w.busy = true;
    WorkerStarted();
    uv_queue_work(
        loop_, &w.work,
        [](uv_work_t* r) {
          auto* worker = static_cast<Worker*>(r->data);
          worker->owner->EncodeSome(*worker);
        },
        [](uv_work_t* r, int) {
          auto* worker = static_cast<Worker*>(r->data);
          FileReader* self = worker->owner;
          std::shared_ptr<FileReader> keep = self->WorkerDone();
          worker->busy = false;
          self->Collect(*worker);
          if (!self->abandoned_) {
            self->ScheduleDelta();
            self->ready_cb_();
          }
        });
  }
}

bool FileReader::DeltaNext(std::string& chunk) {
  if (!loop_) {
    // Inline: hash everything, then encode the segments in order until one has output.
    while (offset_ < size_ && !read_failed_) ReadSome(kWorkBytes, produced_);
    failed_ = failed_ || read_failed_;
    Worker& w = workers_[0];
    while (!failed_ && emit_segment_ < segments_.size() && segments_[emit_segment_].out.empty() &&
           !segments_[emit_segment_].done) {
      if (!w.assigned) {
        w.segment = next_segment_++;
        w.assigned = true;
      }
      EncodeSome(w);
      Collect(w);
    }
  }
  while (emit_segment_ < segments_.size()) {
    Segment& s = segments_[emit_segment_];
    if (!s.out.empty()) {
      chunk = std::move(s.out.front());
      s.out.pop_front();
      s.out_bytes -= chunk.size();
      if (loop_) ScheduleDelta();
      return true;
    }
    if (!s.done) break;
    ++emit_segment_;
  }
  if (loop_) ScheduleDelta();
  return false;
}

void FileReader::Abandon() {
  abandoned_ = true;
  ready_.clear();
  for (Segment& s : segments_) s.out.clear();
  ready_cb_ = [] {};
}

}  // namespace syncd::transport
