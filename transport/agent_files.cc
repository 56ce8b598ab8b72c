// Agent, continued: files coming in whole (PUT) or as deltas against the old copy (SIGNATURE,
// PATCH), and the zstd-compressed stream they may come in.
#include "transport/agent.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "syncd/change.h"
#include "syncd/log.h"

namespace syncd::transport {
namespace {

constexpr size_t kMaxWaitingFiles = 4096;   // Finished files waiting for COMMIT, at most.
constexpr uint64_t kWritebackBytes = 4 << 20;  // Writeback of a large file starts every 4 MiB.
constexpr int kZstdWindowLogMax = 24;            // 16 MiB: the client's level 1 uses far less.
constexpr size_t kMaxQueuedAnswers = 1 << 20;    // Answers are written out past 1 MiB.

}  // namespace

bool Agent::OnPutBegin(Decoder& d, bool patch) {
  Put p;
  p.seq = d.U64();
  p.path = d.Str(kMaxPath);
  p.size = d.U64();
  p.meta = d.MetaField(xattrs_);
  if (!d.done()) return Fatal(patch ? "malformed PATCH_BEGIN" : "malformed PUT_BEGIN");
  dirty_ = true;
  p.hash = NewXxhState();
  auto dir = ParentFor(p.path, &p.name);
  if (!dir) {
    p.error = dir.error();
  } else if (p.name.empty()) {
    p.error = Error{"cannot replace the target directory with a file", EISDIR};
  } else {
    p.dir = std::move(*dir);
    p.temp = TargetDir::NewTempName();
    // Without kept permissions, as rsync --no-perms: a new file gets the source's permission
    // bits less the umask (or the directory's default ACL, which the kernel applies at
    // creation), without set-id bits; a file that replaces one keeps the old file's mode.
    // With them, it is made with those bits too, and what the umask or an ACL took away is
    // set once its data is in (ApplyMetaFd compares with how it was made: an owner, group or
    // mode already right costs no call, each of which is a journal transaction).
    mode_t mode = p.meta.mode & 0777;
    p.fd.Reset(::openat(p.dir->get(), p.temp.c_str(),
                        O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
    struct stat made;
    if (p.fd.valid() && (policy_.perms || policy_.owner || policy_.group) &&
        ::fstat(p.fd.get(), &made) == 0)
      p.created = made;
    if (!p.fd.valid()) {
      p.error = Error::FromErrno("create temporary file for " + p.path);
    } else if (!policy_.perms) {
      struct stat old;
      if (::fstatat(p.dir->get(), p.name.c_str(), &old, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISREG(old.st_mode) && ::fchmod(p.fd.get(), old.st_mode & 07777) != 0)
        p.error = Error::FromErrno("chmod temporary file for " + p.path);
    }
  }
  p.delta = patch;
  if (patch && !p.error) {
    // The old copy must be there and a regular file; without it the delta means nothing.
    auto basis = OpenBasis(p.path);
    if (!basis) {
      p.error = basis.error();
      p.error->message = "no old copy to patch: " + p.error->message;
    } else {
      p.basis = std::move(*basis);
      p.patch = std::make_unique<PatchApplier>(p.basis.get(), (caps_ & kCapDeltaChain) != 0);
    }
  }
  put_ = std::move(p);
  return true;
}

bool Agent::OnPutData(Decoder& d) {
  uint64_t seq = d.U64();
  std::string_view data = d.Rest();
  if (!d.ok() || !put_ || put_->seq != seq) return Fatal("PUT_DATA without a matching PUT_BEGIN");
  Put& p = *put_;
  if (p.delta) {
    if (p.error) return true;  // Already failed: the delta is read and dropped.
    auto r = p.patch->Update(data, [&](std::string_view out) { WriteOut(p, out); });
    if (!r && !p.error) p.error = r.error();
    return true;
  }
  if (p.written + data.size() > p.size) return Fatal("PUT_DATA beyond the announced size");
  if (p.error) {
    p.written += data.size();  // Already failed: the data is read and dropped.
    return true;
  }
  WriteOut(p, data);
  return true;
}

void Agent::WriteOut(Put& p, std::string_view data) {
  if (p.error) return;
  if (p.written + data.size() > p.size) {
    p.error = Error{"the delta rebuilds more than the announced size", EBADMSG};
    return;
  }
  p.written += data.size();
  XXH3_128bits_update(p.hash.get(), data.data(), data.size());
  while (!data.empty()) {
    ssize_t n = ::write(p.fd.get(), data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      p.error = Error::FromErrno("write " + p.path);
      return;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  // Large files start going to disk while they arrive, so the syncfs() at COMMIT finds little
  // left to write (it cost ~1 s for 400 MiB when all of it waited for it). Starting writeback
  // does not wait for it.
  if (!p.error && p.written - p.flushed >= kWritebackBytes) {
    ::sync_file_range(p.fd.get(), static_cast<off_t>(p.flushed),
                      static_cast<off_t>(p.written - p.flushed), SYNC_FILE_RANGE_WRITE);
    p.flushed = p.written;
  }
}

Result<UniqueFd> Agent::OpenBasis(const std::string& path) {
  std::string name;
  auto dir = ParentFor(path, &name);
  if (!dir) return std::unexpected(dir.error());
  if (name.empty()) return Fail("the target itself is not a file", EISDIR);
  // Only a regular file is opened: opening a FIFO would wait for a writer, a device may act
  // on being opened. Non-blocking, and checked again on the descriptor, in case the name was
  // swapped for something else in between.
  struct stat st;
  if (::fstatat((*dir)->get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return FailErrno("stat " + path);
  if (!S_ISREG(st.st_mode)) return Fail(path + ": not a regular file", EINVAL);
  UniqueFd fd(::openat((*dir)->get(), name.c_str(),
                       O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd.valid()) return FailErrno("open " + path);
  if (::fstat(fd.get(), &st) != 0) return FailErrno("stat " + path);
  if (!S_ISREG(st.st_mode)) return Fail(path + ": not a regular file", EINVAL);
  return fd;
}

bool Agent::OnSignature(Decoder& d) {
  uint64_t seq = d.U64();
  std::string path = d.Str(kMaxPath);
  if (!d.done()) return Fatal("malformed SIGNATURE");
  auto fd = OpenBasis(path);
  if (!fd) return Failed(seq, fd.error(), path), true;
  struct stat st;
  if (::fstat(fd->get(), &st) != 0) return Failed(seq, Error::FromErrno("stat " + path), path), true;
  Result<std::string> sig = signatures_.Find(fd->get()).value_or(std::string());
  if (sig->empty()) sig = SignatureOfFile(fd->get(), static_cast<uint64_t>(st.st_size));
  if (!sig) return Failed(seq, sig.error(), path), true;
  std::string_view rest = *sig;
  while (!rest.empty()) {
    size_t n = std::min(rest.size(), kDataChunk);
    out_ += Encoder(MsgType::kSigData).U64(seq).Raw(rest.substr(0, n)).Finish();
    rest.remove_prefix(n);
  }
  out_ += Encoder(MsgType::kSigEnd).U64(seq).U64(static_cast<uint64_t>(st.st_size)).Finish();
  return true;
}

bool Agent::OnZstd(std::string_view payload) {
  if (!zstd_) {
    zstd_.reset(ZSTD_createDCtx());
    // The decoder's window is the sender's choice: bound what it may ask for.
    ZSTD_DCtx_setParameter(zstd_.get(), ZSTD_d_windowLogMax, kZstdWindowLogMax);
  }
  ZSTD_inBuffer in{payload.data(), payload.size(), 0};
  if (zstd_out_.empty()) zstd_out_.resize(kDataChunk);
  std::string& out = zstd_out_;
  uint64_t produced = 0;
  // A client compresses at most one queue of frames (or one frame) per ZSTD frame: more
  // output than that is a bomb, not a stream of ours.
  for (;;) {
    ZSTD_outBuffer o{out.data(), out.size(), 0};
    size_t before = in.pos;
    size_t r = ZSTD_decompressStream(zstd_.get(), &o, &in);
    if (ZSTD_isError(r)) return Fatal(std::string("ZSTD: ") + ZSTD_getErrorName(r));
    if (o.pos == 0) {
      if (in.pos == in.size) break;  // Input used up and nothing more held back.
      if (in.pos == before) return Fatal("ZSTD: no progress");
      continue;
    }
    produced += o.pos;
    if (produced > kMaxZstdOutput)
      return Fatal(fmt::format("ZSTD: a frame unpacks to more than {} bytes", kMaxZstdOutput));
    inner_.Feed(std::string_view(out.data(), o.pos));
    for (;;) {
      auto frame = inner_.Next();
      if (!frame) return Fatal("inside ZSTD: " + frame.error().message);
      if (!*frame) break;
      if ((*frame)->type == MsgType::kZstd) return Fatal("ZSTD inside ZSTD");
      if (!Handle((*frame)->type, (*frame)->payload)) return false;
      // Answers go out as they pile up, not once the whole ZSTD frame is handled.
      if (out_.size() > kMaxQueuedAnswers && sink_ && !sink_()) return false;
    }
  }
  return true;
}

void Agent::AbortPut() {
  if (!put_) return;
  if (put_->fd.valid()) {
    put_->fd.Reset();
    ::unlinkat(put_->dir->get(), put_->temp.c_str(), 0);
  }
  put_.reset();
}

bool Agent::OnPutEnd(Decoder& d) {
  uint64_t seq = d.U64();
  uint8_t status = d.U8();
  uint64_t hi = d.U64();
  uint64_t lo = d.U64();
  if (!d.done() || !put_ || put_->seq != seq) return Fatal("PUT_END without a matching PUT_BEGIN");
  if (status != kPutComplete && status != kPutAbort)
    return Fatal(fmt::format("PUT_END with an undefined status {}", status));
  Put& p = *put_;
  if (p.patch && !p.error && status != kPutAbort) {
    auto r = p.patch->Finish([&](std::string_view out) { WriteOut(p, out); });
    if (!r && !p.error) p.error = r.error();
  }
  std::optional<Error> error = p.error;
  if (!error && status == kPutAbort)
    error = Error{"source file changed while it was read; will resend", EAGAIN};
  if (!error && p.written != p.size)
    error = Error{fmt::format("short transfer: {} of {} bytes", p.written, p.size), EIO};
  if (!error) {
    XXH128_hash_t got = XXH3_128bits_digest(p.hash.get());
    if (got.high64 != hi || got.low64 != lo)
      error = Error{"content hash mismatch; the file was not replaced", EIO};
  }
  if (!error) {
    if (auto r = target_->ApplyMetaFd(p.fd.get(), p.meta, policy_, p.created ? &*p.created : nullptr); !r)
      error = r.error();
  }
  if (error) {
    Failed(seq, *error, p.path);
    AbortPut();
    return true;
  }
  p.fd.Reset();  // Data is made durable by the syncfs() at COMMIT.
  renames_.push_back(Publisher::Item{seq, p.path, p.dir, p.temp, p.name, p.size});
  put_.reset();
  if (renames_.size() >= kMaxWaitingFiles) PublishFiles(/*wait=*/false);
  return true;
}

}  // namespace syncd::transport
