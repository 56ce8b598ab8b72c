// ReplicaClient, continued: starting each operation of a batch, and reading a file's content
// (whole, or as a delta against the peer's copy) into PUT or PATCH frames without tearing it.
#include "transport/replica_client.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "syncd/log.h"

namespace syncd::transport {
namespace {

// A delta is sent only if, over its first 4 MiB of content (or all of a smaller file), it is
// at most 7/8 of that content: a delta of new data costs ~10x a plain copy.
constexpr uint64_t kDeltaProbeBytes = 4 << 20;

bool SameFile(const struct stat& a, const struct stat& b) {
  return a.st_size == b.st_size && a.st_ino == b.st_ino &&
         a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec &&
         a.st_ctim.tv_sec == b.st_ctim.tv_sec && a.st_ctim.tv_nsec == b.st_ctim.tv_nsec;
}

}  // namespace

bool ReplicaClient::StartOp(InFlight& batch, const Op& op) {
  uint64_t seq = next_seq_++;
  const Entry& e = op.entry;
  batch.op_paths.emplace(seq, e.path);
  switch (op.kind) {
    case OpKind::kPut: {
      UniqueFd fd(::open(op.source_path.c_str(),
                         O_RDONLY | O_CLOEXEC | O_NOCTTY | (options_.follow_links ? 0 : O_NOFOLLOW)));
      struct stat st;
      if (!fd.valid() || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
        // Gone or changed type since it was planned: the watcher reports it again.
        int err = fd.valid() ? EAGAIN : errno;
        batch.failures.push_back(OpFailure{
            e.path, Error{"source changed before it could be read", err == ENOENT ? ENOENT : EAGAIN},
            /*reached_peer=*/false, Retry::kNow});
        batch.op_paths.erase(seq);
        return true;
      }
      // A writer that locks the file (PHP's session handler takes LOCK_EX while it rewrites
      // in place) is not read mid-write: syncd takes a shared lock, never waiting for it, and
      // holds it while it reads. A busy file is tried again once its writer is done.
      if (::flock(fd.get(), LOCK_SH | LOCK_NB) != 0) {
        batch.failures.push_back(OpFailure{e.path, Error{"source is locked by a writer", EBUSY},
                                           /*reached_peer=*/false, Retry::kWhenWriterDone});
        batch.op_paths.erase(seq);
        return true;
      }
      Upload u;
      u.seq = seq;
      u.path = e.path;
      u.now = EntryFromStat(e.path, st, names_);
      if (auto x = ReadXattrsFd(fd.get(), options_.xattrs)) u.now.meta.xattrs = std::move(*x);
      options_.meta_mapping.Apply(u.now);
      u.fd = std::move(fd);
      u.before = st;
      u.batch = &batch;
      bool delta = (caps_ & kCapDelta) && op.basis_size > 0 && u.now.size >= kDeltaMinBytes &&
                   !whole_next_.erase(e.path);
      upload_ = std::move(u);
      if (delta) {
        // The agent signs its copy (or has the signature of what it last wrote at hand).
        upload_->sig_seq = next_seq_++;
        Queue(Encoder(MsgType::kSignature).U64(upload_->sig_seq).Str(e.path).Finish());
        return true;
      }
      StartReader(*upload_, std::nullopt);
      ContinueUpload();
      return true;
    }
    case OpKind::kMkdir:
      Queue(Encoder(MsgType::kMkdir).U64(seq).Str(e.path).MetaField(e.meta, options_.xattrs.any()).Finish());
      return true;
    case OpKind::kSymlink:
      Queue(Encoder(MsgType::kSymlink)
                .U64(seq)
                .Str(e.path)
                .Str(e.link_target)
                .MetaField(e.meta, options_.xattrs.any())
                .Finish());
      return true;
    case OpKind::kLink:
      if (!(caps_ & kCapHardLinks)) {
        // An older peer: the name gets a copy of its own, as without hard_links.
        batch.op_paths.erase(seq);
        Op put = op;
        put.kind = OpKind::kPut;
        return StartOp(batch, put);
      }
      Queue(Encoder(MsgType::kLink).U64(seq).Str(e.path).Str(op.from).Finish());
      return true;
    case OpKind::kMknod:
      if (!(caps_ & kCapSpecials)) {
        batch.failures.push_back(OpFailure{
            e.path, Error{"the peer runs an older syncd that cannot make FIFOs, sockets or "
                          "devices; upgrade syncd on the peer", ENOTSUP},
            /*reached_peer=*/false, Retry::kWhenChanged});
        batch.op_paths.erase(seq);
        return true;
      }
      Queue(Encoder(MsgType::kMknod)
                .U64(seq)
                .Str(e.path)
                .U8(static_cast<uint8_t>(e.type))
                .U64(e.rdev)
                .MetaField(e.meta, options_.xattrs.any())
                .Finish());
      return true;
    case OpKind::kDelete:
      Queue(Encoder(MsgType::kDelete).U64(seq).Str(e.path).Finish());
      return true;
    case OpKind::kRename:
      Queue(Encoder(MsgType::kRename).U64(seq).Str(op.from).Str(e.path).Finish());
      return true;
    case OpKind::kSetMeta:
      Queue(Encoder(MsgType::kSetMeta)
                .U64(seq)
                .Str(e.path)
                .U8(static_cast<uint8_t>(e.type))
                .MetaField(e.meta, options_.xattrs.any())
                .Finish());
      return true;
  }
  return true;
}

void ReplicaClient::StartReader(Upload& u, std::optional<std::string> signature) {
  // A small file is read on this thread by the reader alone: it takes the descriptor, and the
  // lock with it. Workers read a large one, or a delta's, on a descriptor of their own.
  bool inline_read = !signature && u.now.size < FileReader::kThreadedBytes;
  UniqueFd fd = inline_read ? std::move(u.fd) : UniqueFd(::fcntl(u.fd.get(), F_DUPFD_CLOEXEC, 0));
  u.reader = FileReader::Make(loop_, std::move(fd), u.now.size, kDataChunk, [this] { PumpWrites(); });
  u.delta = signature.has_value();
  if (u.delta) {
    u.reader->EncodeDelta(std::move(*signature), (caps_ & kCapDeltaChain) != 0);
    u.reader->Prefetch();  // Nothing goes out before the probe says whether it pays.
    return;
  }
  Queue(Encoder(MsgType::kPutBegin).U64(u.seq).Str(u.path).U64(u.now.size).MetaField(u.now.meta, options_.xattrs.any()).Finish());
  u.begun = true;
}

void ReplicaClient::SendWhole(Upload& u, std::string_view why) {
  LogDebug("Transport", "{}: {}: sending the whole file: {}", description_, u.path, why);
  if (u.reader) u.reader->Abandon();
  u.reader.reset();
  StartReader(u, std::nullopt);
}

void ReplicaClient::ContinueUpload() {
  std::string data;
  while (upload_ && channel_ && Buffered() < kHighWater) {
    Upload& u = *upload_;
    if (u.sig_seq) return;  // The signature is on its way.
    FileReader& r = *u.reader;
    if (u.delta && !u.begun) {
      if (r.delta_error()) {
        SendWhole(u, r.delta_error()->message);
        continue;
      }
      bool probed = r.finished() || r.consumed() >= std::min(u.now.size, kDeltaProbeBytes);
      if (!probed) return;  // A worker calls PumpWrites() when it has done more.
      if (r.encoded() * 8 > r.consumed() * 7) {
        SendWhole(u, fmt::format("the delta of the first {} bytes takes {}: new data",
                                 r.consumed(), r.encoded()));
        continue;
      }
      Queue(Encoder(MsgType::kPatchBegin).U64(u.seq).Str(u.path).U64(u.now.size).MetaField(u.now.meta, options_.xattrs.any()).Finish());
      u.begun = true;
      u.batch->patch_seqs.insert(u.seq);
    }
    if (r.finished()) {
      if (r.delta_error()) {
        LogWarn("{}: {}: delta failed: {}", description_, u.path, r.delta_error()->message);
        whole_next_.insert(u.path);
      }
      return FinishUpload(r.failed());
    }
    if (!r.Next(data)) {
      if (r.finished()) continue;  // That was the last of it.
      return;  // A worker is reading; it calls PumpWrites() when it has more.
    }
    Encoder enc(MsgType::kPutData);
    enc.U64(upload_->seq).Raw(data);
    upload_->sent += data.size();
    Queue(enc.Finish());
  }
}

void ReplicaClient::FinishUpload(bool abort) {
  Upload& u = *upload_;
  struct stat after;
  // A file that changed while it was read is not shipped torn: the agent drops it and the
  // change notice that the writer caused sends it again.
  if (!abort && (::fstat(u.reader->fd(), &after) != 0 || !SameFile(u.before, after))) abort = true;
  XXH128_hash_t h = u.reader->Digest();
  if (int err = u.reader->read_errno(); abort && err != 0)
    u.batch->read_errors.emplace(u.seq, Error::FromErrno("cannot read the source file", err));
  if (!abort) {
    ContentHash sent{h.high64, h.low64};
    u.batch->sent_hashes.emplace_back(u.path, sent);
    if (u.delta)
      LogDebug("Transport", "{}: {}: delta of {} bytes for {} ({} found on the peer, in {} segments)",
               description_, u.path, u.sent, u.now.size, u.reader->matched(),
               u.reader->segments());
  }
  Queue(Encoder(MsgType::kPutEnd)
            .U64(u.seq)
            .U8(abort ? kPutAbort : kPutComplete)
            .U64(h.high64)
            .U64(h.low64)
            .Finish());
  upload_.reset();
}

}  // namespace syncd::transport
