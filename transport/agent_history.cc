// Agent, continued: generations. HISTORY answers with what this node's target tree holds (the
// epochs stamped by the active nodes it received from, and its own epochs from when it was
// active itself); STAMP records, at the next COMMIT, what the batch brought the tree to; GET
// reads a file of the tree for the client (`syncd adopt`).
#include <sys/stat.h>
#include <unistd.h>

#include "syncd/log.h"
#include "transport/agent.h"

namespace syncd::transport {

bool Agent::LoadHistory() {
  if (history_) return true;
  if (history_error_) return false;
  if (state_dir_.empty()) {
    history_error_ = Error{"this agent keeps no history (no state directory)"};
    return false;
  }
  auto state = StateDir::Open(state_dir_);
  if (!state) {
    history_error_ = state.error();
    return false;
  }
  auto history = TreeHistory::Load(*state, tree_);
  if (!history) {
    history_error_ = history.error();
    return false;
  }
  struct stat a, b;
  history_same_fs_ = ::stat(state->path().c_str(), &a) == 0 && ::fstat(target_->root_fd(), &b) == 0 &&
                     a.st_dev == b.st_dev;
  state_ = std::move(*state);
  history_ = std::move(*history);
  return true;
}

bool Agent::OnHistory(Decoder& d) {
  uint64_t seq = d.U64();
  if (!d.done()) return Fatal("malformed HISTORY");
  PeerHistory::State state = PeerHistory::State::kPresent;
  std::string detail;
  Lineage lineage;
  if (!LoadHistory()) {
    state = PeerHistory::State::kUnusable;
    detail = history_error_->message;
    LogWarn("agent: history of {}: {}", tree_, detail);
  } else if (!history_->found()) {
    state = state_->new_node() ? PeerHistory::State::kNewNode : PeerHistory::State::kNoRecord;
  } else {
    lineage = history_->lineage();
  }
  out_ += Encoder(MsgType::kHistoryData).U64(seq).U8(static_cast<uint8_t>(state))
              .Str(state_ ? state_->node_id() : "").Str(detail).EpochsField(lineage).Finish();
  return true;
}

bool Agent::OnStamp(Decoder& d) {
  HistoryStamp stamp;
  uint8_t replace = d.U8();
  stamp.epochs = d.EpochsField();
  if (!d.done() || replace > 1 || !ValidLineage(stamp.epochs)) return Fatal("malformed STAMP");
  stamp.replace = replace == 1;
  if (!stamp_ || stamp.replace) {
    stamp_ = std::move(stamp);
  } else {  // Two stamps before one COMMIT: the later one of each epoch wins.
    for (EpochRecord& e : stamp.epochs) stamp_->epochs.push_back(std::move(e));
  }
  return true;
}

void Agent::RecordStamp(bool synced_after) {
  if (!LoadHistory()) {
    stamp_.reset();
    return;
  }
  if (synced_after && !history_same_fs_) return;  // Recorded after the sync, on its own.
  history_->Apply(*stamp_);
  stamp_.reset();
  // On the target's file system, the COMMIT's own syncfs() makes the record durable with
  // the batch; elsewhere it is synced on its own.
  if (auto r = history_->Save(!synced_after); !r) {
    LogError("agent: recording the history of {}: {}", tree_, r.error().message);
    if (caps_ & kCapNotice)
      out_ += Encoder(MsgType::kNotice).U64(0)
                  .Str("the standby could not record what it holds: " + r.error().message)
                  .Finish();
  }
}

bool Agent::OnGet(Decoder& d) {
  uint64_t seq = d.U64();
  std::string path = d.Str(kMaxPath);
  if (!d.done()) return Fatal("malformed GET");
  if (auto v = ValidateRelativePath(path); !v) return Failed(seq, v.error(), path), true;
  auto fd = OpenBasis(path);
  if (!fd) return Failed(seq, fd.error(), path), true;
  XxhState hash = NewXxhState();
  std::string chunk(kDataChunk, '\0');
  uint64_t size = 0;
  for (;;) {
    ssize_t n = ::read(fd->get(), chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Failed(seq, Error::FromErrno("read " + path), path), true;
    if (n == 0) break;
    std::string_view data(chunk.data(), static_cast<size_t>(n));
    XXH3_128bits_update(hash.get(), data.data(), data.size());
    size += data.size();
    out_ += Encoder(MsgType::kGetData).U64(seq).Raw(data).Finish();
    if (out_.size() > (1 << 20) && sink_ && !sink_()) return false;
  }
  XXH128_hash_t h = XXH3_128bits_digest(hash.get());
  out_ += Encoder(MsgType::kGetEnd).U64(seq).U64(size).U64(h.high64).U64(h.low64).Finish();
  return true;
}

}  // namespace syncd::transport
