// librsync, streamed: the block signature of the peer's copy of a file, the delta of the new
// content against it, and the patch that rebuilds the new content from the old copy and the
// delta. Each class drives one rs_job_t and hands its output to a sink as it is produced, so
// nothing holds a whole file in memory. None of them is tied to a thread; each is used by one
// thread at a time.
#pragma once

#include <librsync.h>


#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "syncd/error.h"

namespace syncd::transport {

using Sink = std::function<void(std::string_view)>;

// Builds the signature of a file of known size: RabinKarp rolling sums and BLAKE2 strong sums
// (librsync's recommended format), the block length librsync recommends for that size, and
// the shortest strong sum that is safe against accidental collisions for it (the end-to-end
// content hash catches the rest).
class SignatureBuilder {
 public:
  explicit SignatureBuilder(uint64_t file_size);
  // The block and strong sum lengths for a file of `file_size` bytes.
  static std::pair<size_t, size_t> Lengths(uint64_t file_size);
  SignatureBuilder(size_t block_len, size_t strong_len);
  ~SignatureBuilder();
  SignatureBuilder(const SignatureBuilder&) = delete;
  SignatureBuilder& operator=(const SignatureBuilder&) = delete;

  void Update(std::string_view data);
  // The signature of everything passed to Update().
  std::string Finish();

 private:
  rs_job_t* job_;
  std::string out_;
};

// The block length a signature was made with (from its header); 0 if it is too short.
uint64_t SignatureBlockLength(std::string_view signature);

// Computes the signature of the open file `fd` of `size` bytes. A large file is read in two
// halves by two threads, each on whole blocks; the halves' block sums are simply joined.
// It gives up (ECANCELED) once `give_up`, asked from both threads before each MiB, says so.
Result<std::string> SignatureOfFile(int fd, uint64_t size,
                                    const std::function<bool()>& give_up = {});

// Encodes new content as a delta against a signature.
class DeltaEncoder {
 public:
  // Parses `signature`; fails on a malformed one.
  static Result<std::unique_ptr<DeltaEncoder>> Make(std::string_view signature);
  ~DeltaEncoder();
  DeltaEncoder(const DeltaEncoder&) = delete;
  DeltaEncoder& operator=(const DeltaEncoder&) = delete;

  // Feeds new content; delta bytes go to `sink`, some of them only at a later call.
  Result<void> Update(std::string_view data, const Sink& sink);
  // Ends the content; the rest of the delta goes to `sink`.
  Result<void> Finish(const Sink& sink);
  // Starts a new delta, of other content, against the same signature.
  void Restart();
  // Bytes of new content sent as literal data so far, and found in the old copy.
  uint64_t literal_bytes() const;
  uint64_t matched_bytes() const;

 private:
  DeltaEncoder() = default;

  rs_signature_t* signature_ = nullptr;
  rs_job_t* job_ = nullptr;
};

// Rebuilds new content from the old copy (read from `basis_fd` with pread, not owned) and a
// delta streamed in through Update(). With `chained`, the delta may be several deltas one
// after the other (of consecutive stretches of the content, each against the whole old copy):
// their outputs follow each other.
class PatchApplier {
 public:
  explicit PatchApplier(int basis_fd, bool chained = false);
  ~PatchApplier();
  PatchApplier(const PatchApplier&) = delete;
  PatchApplier& operator=(const PatchApplier&) = delete;

  // Feeds delta bytes; rebuilt content goes to `sink`. Fails on a malformed delta.
  Result<void> Update(std::string_view delta, const Sink& sink);
  // The delta has ended: fails unless it was complete.
  Result<void> Finish(const Sink& sink);

 private:
  static rs_result Copy(void* self, rs_long_t pos, size_t* len, void** buf);

  int basis_fd_;
  bool chained_;
  rs_job_t* job_;
  bool done_ = false;
};

}  // namespace syncd::transport
