#include "transport/rsync_delta.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <thread>
#include <vector>

namespace syncd::transport {
namespace {

constexpr size_t kOutBytes = 256 * 1024;

// Runs `job` over `in` until it has taken all of it (and, at `eof`, until it is done), handing
// what it writes to `sink`. Returns whether the job is done; then `*left` is how much of `in`
// it did not take.
Result<bool> Run(rs_job_t* job, std::string_view in, bool eof, const Sink& sink, const char* what,
                 size_t* left = nullptr) {
  thread_local std::vector<char> out(kOutBytes);
  rs_buffers_t b{};
  b.next_in = const_cast<char*>(in.data());
  b.avail_in = in.size();
  b.eof_in = eof ? 1 : 0;
  for (;;) {
    b.next_out = out.data();
    b.avail_out = out.size();
    size_t in_before = b.avail_in;
    rs_result r = rs_job_iter(job, &b);
    size_t produced = out.size() - b.avail_out;
    if (produced) sink(std::string_view(out.data(), produced));
    if (r == RS_DONE) {
      if (left) *left = b.avail_in;
      return true;
    }
    if (r != RS_BLOCKED)
      return Fail(std::string(what) + ": " + rs_strerror(r), r == RS_IO_ERROR ? EIO : EBADMSG);
    bool progressed = produced || b.avail_in != in_before;
    if (b.avail_in == 0 && !eof && !produced) return false;
    if (!progressed) {
      if (!eof) return false;
      return Fail(std::string(what) + ": input ended early", EBADMSG);
    }
  }
}

}  // namespace

std::pair<size_t, size_t> SignatureBuilder::Lengths(uint64_t file_size) {
  rs_magic_number magic = RS_RK_BLAKE2_SIG_MAGIC;
  size_t block_len = 0;
  size_t strong_len = static_cast<size_t>(-1);  // The shortest that is safe for this size.
  rs_sig_args(static_cast<rs_long_t>(file_size), &magic, &block_len, &strong_len);
  return {block_len, strong_len};
}

SignatureBuilder::SignatureBuilder(uint64_t file_size)
    : SignatureBuilder(Lengths(file_size).first, Lengths(file_size).second) {}

SignatureBuilder::SignatureBuilder(size_t block_len, size_t strong_len)
    : job_(rs_sig_begin(block_len, strong_len, RS_RK_BLAKE2_SIG_MAGIC)) {}

SignatureBuilder::~SignatureBuilder() { rs_job_free(job_); }

void SignatureBuilder::Update(std::string_view data) {
  // Signature generation cannot fail on its input.
  (void)Run(job_, data, false, [this](std::string_view s) { out_.append(s); }, "signature");
}

std::string SignatureBuilder::Finish() {
  (void)Run(job_, {}, true, [this](std::string_view s) { out_.append(s); }, "signature");
  return std::move(out_);
}

namespace {

// The signature of bytes [from, to) of `fd`, as blocks of a file of `file_size` bytes.
Result<std::string> SignRange(int fd, uint64_t file_size, uint64_t from, uint64_t to,
                              const std::function<bool()>& give_up) {
  auto [block_len, strong_len] = SignatureBuilder::Lengths(file_size);
  SignatureBuilder sig(block_len, strong_len);
  std::string buf(1 << 20, '\0');
  for (uint64_t offset = from; offset < to;) {
    if (give_up && give_up()) return Fail("signature: given up", ECANCELED);
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), to - offset));
    ssize_t n = ::pread(fd, buf.data(), want, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return FailErrno("read for signature");
    if (n == 0) break;  // Shrunk meanwhile: the content hash of the result catches it.
    sig.Update(std::string_view(buf.data(), static_cast<size_t>(n)));
    offset += static_cast<uint64_t>(n);
  }
  return sig.Finish();
}

}  // namespace

uint64_t SignatureBlockLength(std::string_view signature) {
  if (signature.size() < 12) return 0;
  uint64_t n = 0;
  for (size_t i = 4; i < 8; ++i) n = n << 8 | static_cast<uint8_t>(signature[i]);  // Big-endian.
  return n;
}

Result<std::string> SignatureOfFile(int fd, uint64_t size, const std::function<bool()>& give_up) {
  constexpr uint64_t kSplitBytes = 16 << 20;
  constexpr size_t kHeaderBytes = 12;  // magic, block length, strong sum length.
  if (size < kSplitBytes || std::thread::hardware_concurrency() < 2)
    return SignRange(fd, size, 0, size, give_up);
  uint64_t block = SignatureBuilder::Lengths(size).first;
  uint64_t mid = size / 2 / block * block;
  Result<std::string> second;
  std::thread worker([&] { second = SignRange(fd, size, mid, size, give_up); });
  Result<std::string> first = SignRange(fd, size, 0, mid, give_up);
  worker.join();
  if (!first) return first;
  if (!second) return second;
  if (second->size() < kHeaderBytes) return Fail("signature: short second half", EIO);
  return *first + second->substr(kHeaderBytes);
}

Result<std::unique_ptr<DeltaEncoder>> DeltaEncoder::Make(std::string_view signature) {
  std::unique_ptr<DeltaEncoder> d(new DeltaEncoder());
  rs_job_t* load = rs_loadsig_begin(&d->signature_);
  auto loaded = Run(load, signature, true, [](std::string_view) {}, "signature");
  rs_job_free(load);
  if (!loaded) return std::unexpected(loaded.error());
  if (rs_result r = rs_build_hash_table(d->signature_); r != RS_DONE)
    return Fail(std::string("signature: ") + rs_strerror(r), EBADMSG);
  d->job_ = rs_delta_begin(d->signature_);
  return d;
}

DeltaEncoder::~DeltaEncoder() {
  if (job_) rs_job_free(job_);
  if (signature_) rs_free_sumset(signature_);
}

Result<void> DeltaEncoder::Update(std::string_view data, const Sink& sink) {
  SYNCD_TRY(Run(job_, data, false, sink, "delta"));
  return {};
}

Result<void> DeltaEncoder::Finish(const Sink& sink) {
  SYNCD_TRY(Run(job_, {}, true, sink, "delta"));
  return {};
}

void DeltaEncoder::Restart() {
  rs_job_free(job_);
  job_ = rs_delta_begin(signature_);
}

uint64_t DeltaEncoder::literal_bytes() const {
  return static_cast<uint64_t>(rs_job_statistics(job_)->lit_bytes);
}

uint64_t DeltaEncoder::matched_bytes() const {
  return static_cast<uint64_t>(rs_job_statistics(job_)->copy_bytes);
}

PatchApplier::PatchApplier(int basis_fd, bool chained)
    : basis_fd_(basis_fd), chained_(chained), job_(rs_patch_begin(&PatchApplier::Copy, this)) {}

PatchApplier::~PatchApplier() { rs_job_free(job_); }

rs_result PatchApplier::Copy(void* self, rs_long_t pos, size_t* len, void** buf) {
  auto* p = static_cast<PatchApplier*>(self);
  if (pos < 0) return RS_CORRUPT;
  ssize_t n;
  do n = ::pread(p->basis_fd_, *buf, *len, static_cast<off_t>(pos));
  while (n < 0 && errno == EINTR);
  if (n < 0) return RS_IO_ERROR;
  if (n == 0) return RS_INPUT_ENDED;  // A copy beyond the end of the old copy.
  *len = static_cast<size_t>(n);
  return RS_DONE;
}

Result<void> PatchApplier::Update(std::string_view delta, const Sink& sink) {
  for (;;) {
    if (done_) {
      if (delta.empty()) return {};
      if (!chained_) return Fail("data after the end of the delta", EBADMSG);
      rs_job_free(job_);  // The next delta of the chain.
      job_ = rs_patch_begin(&PatchApplier::Copy, this);
      done_ = false;
    }
    size_t left = 0;
    auto r = Run(job_, delta, false, sink, "patch", &left);
    if (!r) return std::unexpected(r.error());
    done_ = *r;
    if (!done_) return {};
    delta.remove_prefix(delta.size() - left);
  }
}

Result<void> PatchApplier::Finish(const Sink& sink) {
  if (done_) return {};
  auto r = Run(job_, {}, true, sink, "patch");
  if (!r) return std::unexpected(r.error());
  done_ = *r;
  return {};
}

}  // namespace syncd::transport
