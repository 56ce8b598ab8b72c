// FileReader reads one source file for upload and hashes it (xxh3-128) as it goes. Small files
// are read on the loop thread, one chunk at a time, as the channel takes them; large ones are
// read ahead in libuv's thread pool, so that the loop thread spends its time encrypting and
// sending while a worker reads the disk and hashes. Given the signature of the peer's copy, it
// hands out a librsync delta instead of the content, computed by the workers; it can also
// compute the signature of the content, for the next delta of the same file.
#pragma once

#include <uv.h>
#include <xxhash.h>

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "syncd/unique_fd.h"
#include "transport/rsync_delta.h"

namespace syncd::transport {

class FileReader : public std::enable_shared_from_this<FileReader> {
 public:
  // Files of this size or more are read in the thread pool (when there is a loop): below it,
  // the hop to a worker and back costs more than the read.
  static constexpr uint64_t kThreadedBytes = 1 << 20;
  // What one worker run reads, and how far the workers read ahead of the channel.
  static constexpr uint64_t kWorkBytes = 1 << 20;
  static constexpr uint64_t kReadAheadBytes = 4 << 20;

  // `loop` may be null: everything is then read on the calling thread. `ready` is called on the
  // loop thread when a worker has produced chunks (or hit the end, or failed).
  static std::shared_ptr<FileReader> Make(uv_loop_t* loop, UniqueFd fd, uint64_t size,
                                          size_t chunk, std::function<void()> ready);
  ~FileReader();
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;

  // Before the first Next(): hand out a delta against `signature` instead of the content. The
  // work is always done in the thread pool (when there is a loop).
  void EncodeDelta(std::string signature);
  // Before the first Next(): also compute the content's own signature (see signature()).
  void KeepSignature();

  // Starts reading ahead in the thread pool before the first Next().
  void Prefetch() {
    if (loop_) StartWork();
  }

  // The next chunk in file order, if one is ready. On the inline path it is read now.
  bool Next(std::string& chunk);
  // All `size` bytes were handed out, or the file ended early or failed to read.
  bool finished() const { return ready_.empty() && !busy_ && (offset_ == size_ || failed_); }
  // The file ended before `size` bytes, or a read failed: the upload must be aborted.
  bool failed() const { return failed_; }
  // Stops any read ahead; a worker still running finishes into nothing.
  void Abandon();
  // xxh3-128 of everything handed out; only once finished().
  XXH128_hash_t Digest() const { return XXH3_128bits_digest(hash_); }
  // Delta mode: content read and delta bytes made from it so far (updated as workers finish),
  // and how much content the peer's copy was found to hold (librsync reports a run of matches
  // only when it ends: this lags). Only between worker runs.
  uint64_t consumed() const { return consumed_; }
  uint64_t encoded() const { return encoded_; }
  uint64_t matched() const { return matched_; }
  // Delta mode: the signature could not be used or the delta failed.
  const std::optional<Error>& delta_error() const { return delta_error_; }
  // The content's signature, once finished(), if KeepSignature() asked for it.
  std::string TakeSignature() { return std::move(new_signature_); }
  int fd() const { return fd_.get(); }

 private:
  FileReader(uv_loop_t* loop, UniqueFd fd, uint64_t size, size_t chunk, std::function<void()> ready);
  // Reads up to `max_bytes` more, in chunks, into `out`; hashes them. Any thread, one at a time.
  void ReadSome(uint64_t max_bytes, std::deque<std::string>& out);
  void StartWork();
  // Makes the worker's progress figures visible to the loop thread; on the loop thread.
  void Published();

  // Delta mode: turns content into delta chunks in `out`. The worker's while busy_.
  void Encode(std::string_view data, bool last, std::deque<std::string>& out);

  uv_loop_t* loop_;
  UniqueFd fd_;
  uint64_t size_;
  size_t chunk_;
  std::function<void()> ready_cb_;
  XXH3_state_t* hash_;
  uint64_t offset_ = 0;  // Next byte to read; the worker's while busy_.
  bool failed_ = false;  // The worker's while busy_.
  bool busy_ = false;
  bool abandoned_ = false;
  uint64_t ready_bytes_ = 0;
  std::deque<std::string> ready_;     // Loop thread only.
  std::deque<std::string> produced_;  // The worker's while busy_.
  uv_work_t work_{};
  std::string signature_;                   // Delta mode, until the first worker parses it.
  std::unique_ptr<DeltaEncoder> delta_;     // The worker's while busy_.
  std::optional<Error> delta_error_;        // The worker's while busy_.
  std::string pending_out_;                 // Delta bytes not yet a full chunk; the worker's.
  bool delta_mode_ = false;
  uint64_t consumed_ = 0;
  uint64_t encoded_ = 0;
  uint64_t matched_ = 0;
  uint64_t encoded_work_ = 0;  // The worker's while busy_.
  std::unique_ptr<SignatureBuilder> sig_builder_;  // The worker's while busy_.
  std::string new_signature_;
  std::shared_ptr<FileReader> self_;  // Keeps this alive while a worker runs.
};

}  // namespace syncd::transport
