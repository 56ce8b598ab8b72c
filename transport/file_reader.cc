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

void FileReader::EncodeDelta(std::string signature) {
  signature_ = std::move(signature);
  delta_mode_ = true;
}

void FileReader::KeepSignature() { sig_builder_ = std::make_unique<SignatureBuilder>(size_); }

void FileReader::Encode(std::string_view data, bool last, std::deque<std::string>& out) {
  auto sink = [&](std::string_view bytes) {
    encoded_work_ += bytes.size();
    pending_out_.append(bytes);
    if (pending_out_.size() < chunk_) return;
    size_t whole = pending_out_.size() / chunk_ * chunk_;
    for (size_t at = 0; at < whole; at += chunk_) out.push_back(pending_out_.substr(at, chunk_));
    pending_out_.erase(0, whole);
  };
  auto r = delta_->Update(data, sink);
  if (r && last) r = delta_->Finish(sink);
  if (!r) {
    delta_error_ = r.error();
    failed_ = true;
    return;
  }
  if (last && !pending_out_.empty()) out.push_back(std::exchange(pending_out_, {}));
}

void FileReader::ReadSome(uint64_t max_bytes, std::deque<std::string>& out) {
  if (delta_mode_ && !delta_ && !failed_) {
    auto d = DeltaEncoder::Make(signature_);
    if (!d) {
      delta_error_ = d.error();
      failed_ = true;
      return;
    }
    delta_ = std::move(*d);
    signature_.clear();
  }
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
    if (sig_builder_) sig_builder_->Update(data);
    offset_ += static_cast<uint64_t>(n);
    read += static_cast<uint64_t>(n);
    if (delta_mode_)
      Encode(data, offset_ == size_, out);
    else
      out.push_back(std::move(data));
  }
  if (sig_builder_ && offset_ == size_ && !failed_) {
    new_signature_ = sig_builder_->Finish();
    sig_builder_.reset();
  }
}

void FileReader::Published() {
  consumed_ = offset_;
  encoded_ = encoded_work_;
  if (delta_) matched_ = delta_->matched_bytes();
}

bool FileReader::Next(std::string& chunk) {
  if (!loop_ && ready_.empty()) {
    // A delta may take in several chunks of content before it puts anything out.
    while (ready_.empty() && offset_ < size_ && !failed_) ReadSome(chunk_, ready_);
    Published();
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
        self->Published();
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
