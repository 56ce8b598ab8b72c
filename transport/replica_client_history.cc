// ReplicaClient, continued: generations. HISTORY asks what the peer's tree holds; Fetch copies
// an entry of the peer's tree here (GET), for `syncd adopt`.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "syncd/log.h"
#include "transport/replica_client.h"

namespace syncd::transport {
namespace {

// What an adopted entry keeps: everything the peer listed; owners only where they can be set.
MetaPolicy AdoptPolicy() {
  MetaPolicy p;
  p.perms = p.times = true;
  p.owner = p.group = ::geteuid() == 0;
  return p;
}

}  // namespace

void ReplicaClient::History(std::function<void(Result<PeerHistory>)> done) {
  if (!connected_) return done(syncd::Fail("not connected", ENOTCONN));
  if (!(caps_ & kCapHistory))
    return done(syncd::Fail(fmt::format("the peer ({}) keeps no history (an older syncd)", peer_version_),
                            ENOTSUP));
  history_done_ = std::move(done);
  history_seq_ = next_seq_++;
  Send(Encoder(MsgType::kHistory).U64(history_seq_).Finish());
}

void ReplicaClient::Fetch(const Entry& entry, const std::string& local_root,
                          std::function<void(Result<void>)> done) {
  if (!connected_) return done(syncd::Fail("not connected", ECONNABORTED));
  if (!(caps_ & kCapHistory))
    return done(syncd::Fail(fmt::format("the peer ({}) cannot send files (an older syncd)", peer_version_),
                            ENOTSUP));
  auto dir = TargetDir::Open(local_root);
  if (!dir) return done(std::unexpected(dir.error()));
  std::string name;
  auto parent = dir->OpenParent(entry.path, &name);
  if (!parent) return done(std::unexpected(parent.error()));
  if (name.empty()) return done(syncd::Fail("the root itself is not fetched", EINVAL));
  std::string local = local_root + "/" + entry.path;
  MetaPolicy policy = AdoptPolicy();
  switch (entry.type) {
    case FileType::kDir: {
      if (::mkdirat(parent->get(), name.c_str(), 0700) != 0 && errno != EEXIST)
        return done(FailErrno("mkdir " + local));
      struct stat st;
      if (::fstatat(parent->get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode))
        return done(syncd::Fail(local + ": not a directory here; left as it is", ENOTDIR));
      return done(dir->ApplyMeta(parent->get(), name, entry.meta, policy));
    }
    case FileType::kSymlink: {
      std::string temp = TargetDir::NewTempName();
      if (::symlinkat(entry.link_target.c_str(), parent->get(), temp.c_str()) != 0)
        return done(FailErrno("symlink " + local));
      if (::renameat(parent->get(), temp.c_str(), parent->get(), name.c_str()) != 0) {
        int err = errno;
        ::unlinkat(parent->get(), temp.c_str(), 0);
        return done(FailErrno("rename " + local, err));
      }
      return done(dir->ApplyMeta(parent->get(), name, entry.meta, policy));
    }
    case FileType::kFile:
      break;
    default:
      return done(syncd::Fail(local + ": special files are not fetched", ENOTSUP));
  }
  Fetching f;
  f.entry = entry;
  f.local = local;
  f.name = name;
  f.temp = TargetDir::NewTempName();
  f.fd = UniqueFd(::openat(parent->get(), f.temp.c_str(),
                           O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!f.fd.valid()) return done(FailErrno("create a temporary file beside " + local));
  f.parent = std::move(*parent);
  f.dir = std::move(*dir);
  f.hash = NewXxhState();
  f.done = std::move(done);
  f.seq = next_seq_++;
  fetch_ = std::move(f);
  Send(Encoder(MsgType::kGet).U64(fetch_->seq).Str(entry.path).Finish());
}

void ReplicaClient::FinishFetch(Result<void> result) {
  Fetching f = std::move(*fetch_);
  fetch_.reset();
  if (!result || f.error) ::unlinkat(f.parent.get(), f.temp.c_str(), 0);
  if (result && f.error) result = std::unexpected(*f.error);
  f.done(std::move(result));
}

bool ReplicaClient::HistoryFailed(uint64_t seq, int code, const std::string& message) {
  if (seq == history_seq_ && history_done_) {
    auto done = std::move(history_done_);
    done(std::unexpected(Error{"peer cannot tell its history: " + message, code}));
    return true;
  }
  if (fetch_ && fetch_->seq == seq) {
    FinishFetch(std::unexpected(Error{"peer cannot send " + fetch_->entry.path + ": " + message, code}));
    return true;
  }
  return false;
}

void ReplicaClient::HandleHistoryFrame(MsgType type, Decoder& d) {
  uint64_t seq = d.U64();
  if (type == MsgType::kHistoryData) {
    PeerHistory h;
    uint8_t state = d.U8();
    h.node = d.Str(64);
    h.detail = d.Str(64 * 1024);
    h.lineage = d.EpochsField();
    if (!d.done() || state > static_cast<uint8_t>(PeerHistory::State::kUnusable) ||
        seq != history_seq_ || !history_done_ || !ValidLineage(h.lineage))
      return Fail(Error{"unexpected or malformed HISTORY_DATA", EPROTO});
    h.state = static_cast<PeerHistory::State>(state);
    auto done = std::move(history_done_);
    return done(std::move(h));
  }
  if (!fetch_ || fetch_->seq != seq) return Fail(Error{"unexpected GET answer", EPROTO});
  Fetching& f = *fetch_;
  if (type == MsgType::kGetData) {
    std::string_view data = d.Rest();
    if (!d.ok()) return Fail(Error{"malformed GET_DATA", EPROTO});
    if (f.error) return;
    XXH3_128bits_update(f.hash.get(), data.data(), data.size());
    f.size += data.size();
    while (!data.empty()) {
      ssize_t n = ::write(f.fd.get(), data.data(), data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        f.error = Error::FromErrno("write " + f.local);
        return;
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return;
  }
  uint64_t size = d.U64();
  XXH128_hash_t want{};
  want.high64 = d.U64();
  want.low64 = d.U64();
  if (!d.done()) return Fail(Error{"malformed GET_END", EPROTO});
  if (f.error) return FinishFetch({});
  XXH128_hash_t got = XXH3_128bits_digest(f.hash.get());
  if (size != f.size || !XXH128_isEqual(got, want))
    return FinishFetch(syncd::Fail(f.local + ": the copy from the peer is damaged (size or hash)", EIO));
  if (::fdatasync(f.fd.get()) != 0) return FinishFetch(FailErrno("fdatasync " + f.local));
  if (auto r = f.dir->ApplyMetaFd(f.fd.get(), f.entry.meta, AdoptPolicy()); !r)
    return FinishFetch(std::unexpected(r.error()));
  if (::renameat(f.parent.get(), f.temp.c_str(), f.parent.get(), f.name.c_str()) != 0)
    return FinishFetch(FailErrno("rename " + f.local));
  f.fd.Reset();
  FinishFetch({});
}

}  // namespace syncd::transport
