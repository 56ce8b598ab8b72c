#include "transport/replica_client.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "syncd/log.h"

namespace syncd::transport {
namespace {

// How the runner goes on with a path the agent refused.
Retry RetryForRefusal(int code, bool rename) {
  // The file changed while it was read, or a delta did not apply: its current state, now.
  if (code == EAGAIN) return Retry::kNow;
  // A rename whose origin the peer does not hold: the new name is sent as it is.
  if (rename && code == ENOENT) return Retry::kNow;
  // A full or read-only disk, permissions, a name the peer cannot hold: after a pause.
  return Retry::kBackOff;
}

// Frames are handed to the channel in runs of about this size: one SSH packet and one system
// call carry many small files' frames, not one frame each.
constexpr size_t kQueueBytes = 64 * 1024;
constexpr uint64_t kMaxSignatureBytes = 256 << 20;
// zstd level 1: ~500 MB/s on one core, ahead of a gigabit link; higher levels gain little on
// session files and cost the loop thread time.
constexpr int kZstdLevel = 1;

}  // namespace

ReplicaClient::ReplicaClient(uv_loop_t* loop, std::string description, std::string target_dir,
                             uint32_t open_flags, ChannelFactory factory, ClientOptions options)
    : loop_(loop),
      description_(std::move(description)),
      target_dir_(std::move(target_dir)),
      open_flags_(open_flags),
      factory_(std::move(factory)),
      options_(options) {}

ReplicaClient::~ReplicaClient() {
  *alive_ = false;
  Close();
}

void ReplicaClient::Close() {
  if (upload_ && upload_->reader) upload_->reader->Abandon();
  zstd_.reset();
  caps_ = 0;
  upload_.reset();
  queued_.clear();
  if (channel_) channel_->Close();
  channel_.reset();
  reader_ = FrameReader();
  connected_ = hello_ok_ = filter_pending_ = false;
  connect_done_ = nullptr;
  list_done_ = nullptr;
  history_done_ = nullptr;
  if (fetch_ && fetch_->fd.valid()) ::unlinkat(fetch_->parent.get(), fetch_->temp.c_str(), 0);
  fetch_.reset();
  batches_.clear();
}

uint64_t ReplicaClient::NeededCaps() const {
  uint64_t caps = 0;
  if (open_flags_ & (kKeepXattrs | kKeepAcls)) caps |= kCapXattrs;
  if (open_flags_ & (kOmitDirTimes | kOmitLinkTimes)) caps |= kCapOmitTimes;
  if (options_.backup) caps |= kCapBackup;
  return caps;
}

void ReplicaClient::Connect(std::function<void(Result<void>)> done) {
  Close();
  connect_done_ = std::move(done);
  channel_ = factory_();
  std::weak_ptr<bool> alive = alive_;
  Channel::Callbacks callbacks;
  callbacks.on_data = [this](std::string_view bytes) { OnData(bytes); };
  callbacks.on_closed = [this](const Error& e) { Fail(e); };
  callbacks.on_drain = [this] { PumpWrites(); };
  channel_->Open(std::move(callbacks), [this, alive](Result<void> r) {
    if (!(alive.lock() && *alive.lock())) return;
    if (!r) return Fail(r.error());
    open_seq_ = next_seq_++;
    uint64_t caps = (options_.delta ? kCapDelta | kCapDeltaChain : 0) |
                    (options_.compress ? kCapZstd : 0) | kCapFilter | kCapSpecials |
                    kCapHardLinks | kCapNotice | kCapHistory | NeededCaps();
    channel_->Write(Encoder(MsgType::kHello).U32(kMagic).U16(kProtocolVersion).U64(caps).Finish());
    channel_->Write(
        Encoder(MsgType::kOpen).U64(open_seq_).Str(target_dir_).U32(open_flags_).Finish());
  });
}

void ReplicaClient::List(std::function<void(Result<Listing>)> done) {
  if (!connected_) return done(syncd::Fail("not connected", ENOTCONN));
  list_done_ = std::move(done);
  listing_.clear();
  list_seq_ = next_seq_++;
  Send(Encoder(MsgType::kList).U64(list_seq_).Finish());
}

void ReplicaClient::Apply(SharedBatch batch, std::function<void(BatchResult)> done) {
  if (!connected_) return done(BatchResult{syncd::Fail("not connected", ENOTCONN), {}, {}, {}});
  InFlight flight;
  flight.batch = std::move(batch);
  flight.done = std::move(done);
  batches_.push_back(std::move(flight));
  PumpWrites();
}

void ReplicaClient::SetProtectRules(std::vector<std::string> rules) {
  options_.protect_rules = std::move(rules);
  // Between two operations: never inside the frames of a PUT.
  filter_pending_ = connected_ && (caps_ & kCapFilter);
  PumpWrites();
}

std::string ReplicaClient::FilterFrame() const {
  Encoder e(MsgType::kFilter);
  e.U32(static_cast<uint32_t>(options_.protect_rules.size()));
  for (const std::string& rule : options_.protect_rules) e.Str(rule);
  return e.Finish();
}

void ReplicaClient::Fail(const Error& error) {
  auto connect_done = std::move(connect_done_);
  auto list_done = std::move(list_done_);
  auto history_done = std::move(history_done_);
  std::optional<Fetching> fetch = std::move(fetch_);
  fetch_.reset();
  std::deque<InFlight> batches = std::move(batches_);
  bool had_work = connect_done || list_done || history_done || fetch || !batches.empty();
  Close();
  std::weak_ptr<bool> alive = alive_;
  if (connect_done) connect_done(std::unexpected(error));
  if (list_done && alive.lock() && *alive.lock()) list_done(std::unexpected(error));
  if (history_done && alive.lock() && *alive.lock()) history_done(std::unexpected(error));
  if (fetch) {
    if (fetch->fd.valid()) ::unlinkat(fetch->parent.get(), fetch->temp.c_str(), 0);
    if (alive.lock() && *alive.lock()) fetch->done(std::unexpected(Error{error.message, ECONNABORTED}));
  }
  for (InFlight& b : batches) {
    if (!(alive.lock() && *alive.lock())) return;
    b.done(BatchResult{std::unexpected(error), {}, {}, {}});
  }
  if (!had_work && on_lost_ && alive.lock() && *alive.lock()) on_lost_(error);
}

void ReplicaClient::OnData(std::string_view bytes) {
  reader_.Feed(bytes);
  std::weak_ptr<bool> alive = alive_;
  while (channel_) {
    auto frame = reader_.Next();
    if (!frame) return Fail(Error{"from peer: " + frame.error().message, EPROTO});
    if (!*frame) return;
    HandleFrame((*frame)->type, (*frame)->payload);
    if (!(alive.lock() && *alive.lock())) return;
  }
}

void ReplicaClient::HandleFrame(MsgType type, std::string_view payload) {
  Decoder d(payload);
  switch (type) {
    case MsgType::kHelloOk: {
      uint32_t magic = d.U32();
      uint16_t version = d.U16();
      uint64_t caps = d.U64();
      peer_version_ = d.Str(1024);
      if (!d.done() || magic != kMagic || version < 1)
        return Fail(Error{"peer is not a syncd agent (bad hello)", EPROTO, true});
      hello_ok_ = true;
      caps_ = version >= 2 ? caps & kKnownCaps : 0;
      if (uint64_t missing = NeededCaps() & ~caps_)
        return Fail(Error{fmt::format("the peer ({}) cannot do what this sync asks ({}); upgrade "
                                      "syncd on the peer",
                                      peer_version_,
                                      missing & kCapXattrs    ? "rsync.xattrs, rsync.acls"
                                      : missing & kCapBackup  ? "rsync.backup"
                                                              : "rsync.omit_dir_times, omit_link_times"),
                          ENOTSUP, true});
      if (caps_ & kCapZstd) {
        zstd_.reset(ZSTD_createCCtx());
        ZSTD_CCtx_setParameter(zstd_.get(), ZSTD_c_compressionLevel, kZstdLevel);
        LogDebug("Transport", "{}: the stream to the peer is compressed (zstd)", description_);
      }
      if (options_.compress && !(caps_ & kCapZstd))
        LogWarn("{}: the peer ({}) cannot take a compressed stream; sending it plain",
                description_, peer_version_);
      LogDebug("Transport", "{}: peer is {}", description_, peer_version_);
      if (options_.backup)
        Send(Encoder(MsgType::kBackup).Str(options_.backup->suffix).Str(options_.backup->dir).Finish());
      if (caps_ & kCapFilter) {
        Send(FilterFrame());  // Before any operation: the OPEN's answer has not come yet.
      } else if (!options_.protect_rules.empty()) {
        LogWarn("{}: the peer ({}) is an older syncd: it deletes a directory with the excluded "
                "entries inside it; upgrade syncd on the peer to keep them",
                description_, peer_version_);
      }
      return;
    }
    case MsgType::kOk: {
      uint64_t seq = d.U64();
      if (!d.done() || !hello_ok_ || seq != open_seq_) return Fail(Error{"unexpected OK", EPROTO});
      connected_ = true;
      if (auto done = std::move(connect_done_)) done({});
      return;
    }
    case MsgType::kFailed: {
      uint64_t seq = d.U64();
      int code = static_cast<int>(d.U32());
      std::string message = d.Str(64 * 1024);
      if (!d.done()) return Fail(Error{"malformed FAILED from peer", EPROTO});
      if (upload_ && upload_->sig_seq == seq) {
        upload_->sig_seq = 0;
        SendWhole(*upload_, "the peer could not read its copy: " + message);
        return PumpWrites();
      }
      if (seq == open_seq_ && !connected_) {
        auto done = std::move(connect_done_);
        Close();
        if (done) done(std::unexpected(Error{"peer cannot open " + target_dir_ + ": " + message, code, true}));
        return;
      }
      if (HistoryFailed(seq, code, message)) return;
      if (seq == list_seq_ && list_done_) {
        auto done = std::move(list_done_);
        return done(std::unexpected(Error{"peer cannot list " + target_dir_ + ": " + message, code}));
      }
      for (InFlight& b : batches_) {
        auto it = b.op_paths.find(seq);
        if (it == b.op_paths.end()) continue;
        if (b.patch_seqs.contains(seq)) {
          // The old copy on the peer was not what the delta was made against, or the result
          // did not match: the old file stays, and the whole file goes at once.
          LogWarn("{}: {}: the delta did not apply ({}); sending the whole file", description_,
                  it->second, message);
          whole_next_.insert(it->second);
          code = EAGAIN;
        }
        if (auto read = b.read_errors.find(seq); read != b.read_errors.end()) {
          // The upload was dropped because the source could not be read.
          bool vanished = read->second.code == ENOENT || read->second.code == EAGAIN;
          b.failures.push_back(OpFailure{it->second, read->second, /*reached_peer=*/false,
                                         vanished ? Retry::kNow : Retry::kBackOff});
          return;
        }
        bool rename = std::any_of(b.batch->ops.begin(), b.batch->ops.end(), [&](const Op& op) {
          return op.kind == OpKind::kRename && op.entry.path == it->second;
        });
        b.failures.push_back(OpFailure{it->second, Error{message, code}, true, RetryForRefusal(code, rename)});
        return;
      }
      return Fail(Error{"FAILED for an unknown request", EPROTO});
    }
    case MsgType::kListChunk: {
      uint64_t seq = d.U64();
      uint32_t count = d.U32();
      if (seq != list_seq_ || !list_done_) return Fail(Error{"unexpected LIST_CHUNK", EPROTO});
      for (uint32_t i = 0; i < count && d.ok(); ++i) listing_.push_back(d.EntryField(options_.xattrs.any()));
      if (!d.done()) return Fail(Error{"malformed LIST_CHUNK from peer", EPROTO});
      return;
    }
    case MsgType::kListEnd: {
      uint64_t seq = d.U64();
      if (!d.done() || seq != list_seq_ || !list_done_)
        return Fail(Error{"unexpected LIST_END", EPROTO});
      auto done = std::move(list_done_);
      return done(std::move(listing_));
    }
    case MsgType::kCommitted: {
      uint64_t seq = d.U64();
      if (!d.done() || batches_.empty() || batches_.front().commit_seq != seq)
        return Fail(Error{"unexpected COMMITTED", EPROTO});
      InFlight b = std::move(batches_.front());
      batches_.pop_front();
      b.done(BatchResult{{}, std::move(b.failures), std::move(b.sent_hashes), std::move(b.kept)});
      return;
    }
    case MsgType::kNotice: {
      d.U64();
      std::string message = d.Str(64 * 1024);
      if (!d.done()) return Fail(Error{"malformed NOTICE from peer", EPROTO});
      LogError("{}: {}", description_, message);
      return;
    }
    case MsgType::kKept: {
      uint64_t seq = d.U64();
      std::string path = d.Str(kMaxPath);
      uint64_t count = d.U64();
      std::string first = d.Str(kMaxPath);
      if (!d.done()) return Fail(Error{"malformed KEPT from peer", EPROTO});
      for (InFlight& b : batches_) {
        if (!b.op_paths.contains(seq)) continue;
        // rsync says "cannot delete non-empty directory" in this case.
        LogWarn("{}: {} stays on the peer: {} entr{} inside {} protected by the filter "
                "(first: {})",
                description_, path, count, count == 1 ? "y" : "ies", count == 1 ? "is" : "are",
                first);
        b.kept.push_back(std::move(path));
        return;
      }
      return Fail(Error{"KEPT for an unknown request", EPROTO});
    }
    case MsgType::kSigData: {
      uint64_t seq = d.U64();
      std::string_view bytes = d.Rest();
      if (!d.ok() || !upload_ || upload_->sig_seq != seq) return Fail(Error{"unexpected SIG_DATA", EPROTO});
      if (upload_->signature.size() + bytes.size() > kMaxSignatureBytes)
        return Fail(Error{"signature from peer is too large", EPROTO});
      upload_->signature.append(bytes);
      return;
    }
    case MsgType::kSigEnd: {
      uint64_t seq = d.U64();
      d.U64();  // The size of the peer's copy.
      if (!d.done() || !upload_ || upload_->sig_seq != seq) return Fail(Error{"unexpected SIG_END", EPROTO});
      upload_->sig_seq = 0;
      StartReader(*upload_, std::exchange(upload_->signature, {}));
      return PumpWrites();
    }
    case MsgType::kHistoryData:
    case MsgType::kGetData:
    case MsgType::kGetEnd:
      return HandleHistoryFrame(type, d);
    case MsgType::kFatal: {
      d.U32();
      std::string message = d.Str(64 * 1024);
      return Fail(Error{"peer refused the session: " + message, EPROTO});
    }
    default:
      return Fail(Error{fmt::format("unexpected message {:#04x} from peer",
                                    static_cast<unsigned>(type)),
                        EPROTO});
  }
}

void ReplicaClient::Queue(std::string frame) {
  if (queued_.empty() && frame.size() >= kQueueBytes) return Send(std::move(frame));
  queued_ += frame;
  if (queued_.size() >= kQueueBytes) FlushQueued();
}

void ReplicaClient::FlushQueued() {
  if (queued_.empty() || !channel_) return;
  std::string out;
  out.swap(queued_);
  Send(std::move(out));
}

void ReplicaClient::Send(std::string bytes) {
  if (!zstd_) return channel_->Write(std::move(bytes));
  // One ZSTD frame per run, flushed, so the agent can act on every frame it carries at once.
  std::string out(ZSTD_compressBound(bytes.size()) + 64, '\0');
  ZSTD_inBuffer in{bytes.data(), bytes.size(), 0};
  ZSTD_outBuffer o{out.data(), out.size(), 0};
  size_t left;
  do left = ZSTD_compressStream2(zstd_.get(), &o, &in, ZSTD_e_flush);
  while (!ZSTD_isError(left) && left != 0 && o.pos < o.size);
  if (ZSTD_isError(left) || left != 0) return Fail(Error{"zstd: cannot compress", EIO});
  out.resize(o.pos);
  channel_->Write(Encoder(MsgType::kZstd).Raw(out).Finish());
}

Replica::Sent ReplicaClient::InFlightSent() const {
  Sent sent;
  for (const InFlight& b : batches_) {
    sent.ops += b.next_op;
    sent.bytes += b.bytes_started;
  }
  return sent;
}

size_t ReplicaClient::Buffered() const { return channel_->buffered() + queued_.size(); }

void ReplicaClient::PumpWrites() {
  if (pumping_) return;
  pumping_ = true;
  std::weak_ptr<bool> alive = alive_;
  while (channel_ && connected_ && Buffered() < kHighWater) {
    if (upload_) {
      ContinueUpload();
      if (upload_) break;  // Waiting for the channel to drain.
      continue;
    }
    if (std::exchange(filter_pending_, false)) Queue(FilterFrame());
    InFlight* next = nullptr;
    for (InFlight& b : batches_) {
      if (b.commit_seq == 0) {
        next = &b;
        break;
      }
    }
    if (!next) break;
    if (next->next_op < next->batch->ops.size()) {
      const Op& op = next->batch->ops[next->next_op++];
      if (op.kind == OpKind::kPut) next->bytes_started += op.entry.size;
      StartOp(*next, op);
      continue;
    }
    next->commit_seq = next_seq_++;
    if (const HistoryStamp* stamp = next->batch->stamp.get(); stamp && (caps_ & kCapHistory))
      Queue(Encoder(MsgType::kStamp).U8(stamp->replace ? 1 : 0).EpochsField(stamp->epochs).Finish());
    Queue(Encoder(MsgType::kCommit).U64(next->commit_seq).Finish());
  }
  if (!(alive.lock() && *alive.lock())) return;
  FlushQueued();
  pumping_ = false;
}

}  // namespace syncd::transport