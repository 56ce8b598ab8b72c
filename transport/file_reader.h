// FileReader reads one source file for upload and hashes it (xxh3-128). Small files are read on
// the loop thread, one chunk at a time, as the channel takes them; large ones are read ahead in
// libuv's thread pool, so that the loop thread spends its time encrypting and sending while a
// worker reads the disk and hashes.
//
// Given the signature of the peer's copy, it hands out a librsync delta instead of the content.
// A large file's delta can be cut into segments, each an independent delta of one stretch of
// the content against the whole signature: two workers encode segments side by side, the
// segments go out in order, and the agent applies them one after the other, so that it
// rebuilds the file while the rest is still being encoded. A third worker hashes the content
// in order meanwhile.
#pragma once

#include <uv.h>
#include <xxhash.h>

#include <array>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "syncd/unique_fd.h"
#include "transport/owned.h"
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
  // A delta in segments: about this much content each (whole blocks of the peer's signature),
  // and at most this many encoded ahead of the one going out.
  static constexpr uint64_t kSegmentBytes = 16 << 20;
  static constexpr size_t kSegmentsAhead = 3;

  // `loop` may be null: everything is then read on the calling thread. `ready` is called on the
  // loop thread when a worker has produced chunks (or hit the end, or failed).
  static std::shared_ptr<FileReader> Make(uv_loop_t* loop, UniqueFd fd, uint64_t size,
                                          size_t chunk, std::function<void()> ready);
  ~FileReader();
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;

  // Before the first Next(): hand out a delta against `signature` instead of the content, in
  // segments if `segments` (the peer applies chained deltas). The work is done in the thread
  // pool (when there is a loop).
  void EncodeDelta(std::string signature, bool segments);

  // Starts reading ahead in the thread pool before the first Next().
  void Prefetch() {
    if (loop_ && delta_mode_)
      ScheduleDelta();
    else if (loop_)
      StartWork();
  }

  // The next chunk in file order, if one is ready. On the inline path it is read now.
  bool Next(std::string& chunk);
  // All `size` bytes were handed out (as content or delta), or reading failed.
  bool finished() const;
  // The file ended before `size` bytes, a read failed, or the delta failed: the upload must
  // be aborted.
  bool failed() const { return failed_; }
  // The errno of a read that failed (EIO, ...), as opposed to a file that shrank: 0 if none.
  // Only once finished().
  int read_errno() const { return read_errno_; }
  // Stops any read ahead; a worker still running finishes into nothing.
  void Abandon();
  // xxh3-128 of the content; only once finished().
  XXH128_hash_t Digest() const { return XXH3_128bits_digest(hash_.get()); }
  // Delta mode: content encoded and delta bytes made from it so far (updated as workers
  // finish), and how much content the peer's copy was found to hold (librsync reports a run
  // of matches only when it ends: this lags).
  uint64_t consumed() const;
  uint64_t encoded() const;
  uint64_t matched() const;
  // Delta mode: the signature could not be used or the delta failed.
  const std::optional<Error>& delta_error() const { return delta_error_; }
  // Delta mode: how many segments the delta is cut into.
  size_t segments() const { return segments_.size(); }
  int fd() const { return fd_.get(); }

 private:
  FileReader(uv_loop_t* loop, UniqueFd fd, uint64_t size, size_t chunk, std::function<void()> ready);
  // Reads up to `max_bytes` more, in chunks, into `out`; hashes them. Any thread, one at a time.
  void ReadSome(uint64_t max_bytes, std::deque<std::string>& out);
  void StartWork();
  // Keep this alive while any worker runs; on the loop thread. WorkerDone() hands back a
  // reference for the rest of the worker's callback.
  void WorkerStarted();
  std::shared_ptr<FileReader> WorkerDone();

  // Delta mode.
  struct Segment {
    uint64_t begin = 0;
    uint64_t end = 0;
    // Its worker's while it runs: the next byte to encode, delta bytes made, content matched.
    uint64_t offset = 0;
    uint64_t encoded = 0;
    uint64_t matched = 0;
    // The loop thread's: the same figures as of the worker's last run, and the output.
    uint64_t seen_offset = 0;
    uint64_t seen_encoded = 0;
    uint64_t seen_matched = 0;
    bool done = false;
    std::deque<std::string> out;  // Delta chunks not yet handed out.
    uint64_t out_bytes = 0;
  };
  struct Worker {
    FileReader* owner = nullptr;
    uv_work_t work{};
    bool busy = false;
    size_t segment = 0;  // The segment it encodes, while it has one.
    bool assigned = false;
    std::unique_ptr<DeltaEncoder> encoder;  // Kept between segments: the signature is parsed once.
    std::string pending;                   // Delta bytes not yet a full chunk.
    std::deque<std::string> produced;
    std::optional<Error> error;
    bool read_failed = false;
    int read_errno = 0;
  };
  static constexpr size_t kDeltaWorkers = 2;
  // Encodes up to kWorkBytes more of the worker's segment. Any thread.
  void EncodeSome(Worker& w);
  // Hashes up to kWorkBytes more of the content, in order. Any thread.
  void HashSome();
  // Gives idle workers work and queues it; on the loop thread.
  void ScheduleDelta();
  // Takes in what a worker's run produced; on the loop thread.
  void Collect(Worker& w);
  bool DeltaNext(std::string& chunk);

  uv_loop_t* loop_;
  UniqueFd fd_;
  uint64_t size_;
  size_t chunk_;
  std::function<void()> ready_cb_;
  XxhState hash_;
  uint64_t offset_ = 0;  // Next byte to read (or, in delta mode, to hash); the worker's while busy_.
  bool failed_ = false;
  bool read_failed_ = false;  // The worker's while busy_.
  int read_errno_ = 0;        // Likewise.
  bool busy_ = false;
  bool abandoned_ = false;
  uint64_t ready_bytes_ = 0;
  std::deque<std::string> ready_;     // Loop thread only.
  std::deque<std::string> produced_;  // The worker's while busy_.
  uv_work_t work_{};
  int running_ = 0;                   // Workers in the thread pool.
  std::shared_ptr<FileReader> self_;  // Keeps this alive while a worker runs.

  bool delta_mode_ = false;
  std::string signature_;  // Read by the workers; never changed while they run.
  std::optional<Error> delta_error_;
  std::vector<Segment> segments_;
  size_t next_segment_ = 0;  // The first segment no worker has taken.
  size_t emit_segment_ = 0;  // The segment whose delta goes out now.
  std::array<Worker, kDeltaWorkers> workers_;
};

}  // namespace syncd::transport
