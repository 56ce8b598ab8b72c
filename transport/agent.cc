#include "transport/agent.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <csignal>
#include <cstring>

#include "syncd/active_mark.h"
#include "syncd/change.h"
#include "syncd/log.h"

namespace syncd::transport {
namespace {

constexpr size_t kListChunkEntries = 1024;
constexpr size_t kMaxCachedParents = 256;   // Directory descriptors kept for PUTs, at most.

std::string HostName() {
  char buf[256] = {};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

}  // namespace

Agent::Agent(std::vector<std::string> roots, std::string state_dir)
    : roots_(std::move(roots)), state_dir_(std::move(state_dir)) {}

Agent::~Agent() {
  // However the session ends (EOF, FATAL, a broken pipe), nothing half-done stays behind: the
  // file being received and the finished ones that a COMMIT never published.
  AbortPut();
  for (const Publisher::Item& r : renames_) ::unlinkat(r.dir->get(), r.temp.c_str(), 0);
}

bool Agent::Fatal(const std::string& message) {
  out_ += Encoder(MsgType::kFatal).U32(EPROTO).Str(message).Finish();
  return false;
}

void Agent::Ok(uint64_t seq) { out_ += Encoder(MsgType::kOk).U64(seq).Finish(); }

void Agent::Failed(uint64_t seq, const Error& error, const std::string& path) {
  std::string message = error.message;
  if (!path.empty() && message.find(path) == std::string::npos) message = path + ": " + message;
  out_ += Encoder(MsgType::kFailed).U64(seq).U32(static_cast<uint32_t>(error.code)).Str(message)
              .Finish();
}

bool Agent::Handle(MsgType type, std::string_view payload) {
  signatures_.Busy();
  Decoder d(payload);
  if (!hello_ && type != MsgType::kHello) return Fatal("expected HELLO first");
  if (type == MsgType::kZstd) {  // A wrapper: what it carries is checked frame by frame.
    if (!(caps_ & kCapZstd)) return Fatal("ZSTD without the zstd capability");
    return OnZstd(payload);
  }
  if (put_ && type != MsgType::kPutData && type != MsgType::kPutEnd)
    return Fatal(std::string(MsgTypeName(type)) + " inside an unfinished PUT");
  // Only what creates new entries runs while files are being renamed into place.
  if (type != MsgType::kPutBegin && type != MsgType::kPatchBegin && type != MsgType::kPutData &&
      type != MsgType::kPutEnd && type != MsgType::kMkdir)
    FinishPublishing();
  if (!target_ && type != MsgType::kHello && type != MsgType::kOpen && type != MsgType::kFilter)
    return Fatal(std::string(MsgTypeName(type)) + " before OPEN");
  switch (type) {
    case MsgType::kHello: return OnHello(d);
    case MsgType::kOpen: return OnOpen(d);
    case MsgType::kList: return OnList(d);
    case MsgType::kBackup: return OnBackup(d);
    case MsgType::kHistory:
    case MsgType::kStamp:
    case MsgType::kGet:
      if (!(caps_ & kCapHistory))
        return Fatal(std::string(MsgTypeName(type)) + " without the history capability");
      return type == MsgType::kHistory ? OnHistory(d) : type == MsgType::kStamp ? OnStamp(d) : OnGet(d);
    case MsgType::kFilter:
      if (!(caps_ & kCapFilter)) return Fatal("FILTER without the filter capability");
      return OnFilter(d);
    case MsgType::kPutBegin: return OnPutBegin(d, false);
    case MsgType::kPatchBegin:
      if (!(caps_ & kCapDelta)) return Fatal("PATCH_BEGIN without the delta capability");
      return OnPutBegin(d, true);
    case MsgType::kSignature:
      if (!(caps_ & kCapDelta)) return Fatal("SIGNATURE without the delta capability");
      return OnSignature(d);

    case MsgType::kPutData: return OnPutData(d);
    case MsgType::kPutEnd: return OnPutEnd(d);
    case MsgType::kMkdir: return OnMkdir(d);
    case MsgType::kSymlink: return OnSymlink(d);
    case MsgType::kLink:
      if (!(caps_ & kCapHardLinks)) return Fatal("LINK without the hard-links capability");
      return OnLink(d);
    case MsgType::kMknod:
      if (!(caps_ & kCapSpecials)) return Fatal("MKNOD without the specials capability");
      return OnMknod(d);
    case MsgType::kDelete: return OnDelete(d);
    case MsgType::kSetMeta: return OnSetMeta(d);
    case MsgType::kRename: return OnRename(d);
    case MsgType::kCommit: return OnCommit(d);
    default:
      return Fatal(fmt::format("unknown message type {:#04x}", static_cast<unsigned>(type)));
  }
}

bool Agent::OnHello(Decoder& d) {
  uint32_t magic = d.U32();
  uint16_t version = d.U16();
  uint64_t caps = d.U64();
  if (!d.ok() || magic != kMagic) return Fatal("not a syncd client (bad HELLO)");
  if (hello_) return Fatal("second HELLO");
  if (version < 1) return Fatal(fmt::format("unsupported protocol version {}", version));
  hello_ = true;
  // Both sides speak the lower of the two versions, and use the capabilities both have.
  uint16_t agreed = std::min(version, kProtocolVersion);
  caps_ = agreed >= 2 ? caps & kKnownCaps : 0;
  out_ += Encoder(MsgType::kHelloOk).U32(kMagic).U16(agreed).U64(caps_)
              .Str(fmt::format("syncd {} on {}", SYNCD_VERSION, HostName()))
              .Finish();
  return true;
}

bool Agent::OnOpen(Decoder& d) {
  uint64_t seq = d.U64();
  std::string dir = d.Str(kMaxPath);
  uint32_t flags = d.U32();
  if (!d.done()) return Fatal("malformed OPEN");
  if (target_) return Fatal("second OPEN");
  if (dir.empty() || dir.find('\0') != std::string::npos) {
    Failed(seq, Error{"no valid target directory given", EINVAL}, "");
    return true;
  }
  if (dir.front() != '/') {  // As rsync's host:dir, relative to the login directory.
    char cwd[PATH_MAX];
    if (!::getcwd(cwd, sizeof cwd)) return Failed(seq, Error::FromErrno("getcwd"), ""), true;
    dir = std::string(cwd) + "/" + dir;
  }
  // The split-brain guard: this host's own active syncd replicates the target (both nodes
  // believe they are active). Writing would overwrite the files it is replicating.
  char real[PATH_MAX];
  std::string resolved = ::realpath(dir.c_str(), real) ? real : dir;
  if (auto active = ActiveSyncdOver(resolved, static_cast<int>(::getppid()))) {
    char host[256] = "";
    ::gethostname(host, sizeof host - 1);
    std::string message = fmt::format(
        "refusing to write to {}: this node ({}) is active too, its {}; only one node of the "
        "pair may replicate", dir, host, *active);
    LogError("agent: {}", message);
    Failed(seq, Error{message, EBUSY}, "");
    return true;
  }
  auto t = TargetDir::OpenWithin(roots_, dir);
  if (!t) {
    Failed(seq, t.error(), "");
    return true;
  }
  target_ = std::move(*t);
  tree_ = ::realpath(dir.c_str(), real) ? real : dir;
  policy_ = MetaPolicy{(flags & kKeepPerms) != 0, (flags & kKeepOwner) != 0,
                       (flags & kKeepGroup) != 0, (flags & kKeepTimes) != 0,
                       XattrScope{(flags & kKeepXattrs) != 0, (flags & kKeepAcls) != 0,
                                  /*user_only=*/::geteuid() != 0},
                       (flags & kOmitDirTimes) == 0, (flags & kOmitLinkTimes) == 0};
  xattrs_ = policy_.xattrs.any();
  Ok(seq);
  return true;
}

bool Agent::OnList(Decoder& d) {
  uint64_t seq = d.U64();
  if (!d.done()) return Fatal("malformed LIST");
  std::vector<Entry> chunk;
  bool specials = caps_ & kCapSpecials;
  bool hard_links = caps_ & kCapHardLinks;
  auto flush = [&] {
    Encoder e(MsgType::kListChunk);
    e.U64(seq).U32(static_cast<uint32_t>(chunk.size()));
    for (Entry& entry : chunk) {
      // A client without the capability knows special files only as "other".
      if (!specials && (IsSpecial(entry.type) || IsDevice(entry.type))) entry.type = FileType::kOther;
      // Which file a multiply-linked name is: names with the same token are one file.
      if (hard_links && entry.type == FileType::kFile && entry.nlink > 1)
        entry.link_target = fmt::format("inode:{}:{}", entry.dev, entry.ino);
      e.EntryField(entry, xattrs_);
    }
    out_ += e.Finish();
    chunk.clear();
  };
  auto r = target_->List(
      [&](Entry e) {
        chunk.push_back(std::move(e));
        if (chunk.size() >= kListChunkEntries) flush();
      },
      policy_.xattrs);
  if (!chunk.empty()) flush();
  if (!r) {
    Failed(seq, r.error(), "");
    return true;
  }
  if (r->entries > 0) {
    std::string message = fmt::format(
        "{} entries beneath {} are not listed: their paths are longer than {} bytes, more than "
        "syncd can carry; they stay as they are", r->entries, JoinPath(target_->path(), r->first_dir),
        kMaxPath);
    LogError("agent: {}", message);
    if (caps_ & kCapNotice) out_ += Encoder(MsgType::kNotice).U64(seq).Str(message).Finish();
  }
  out_ += Encoder(MsgType::kListEnd).U64(seq).Finish();
  return true;
}

bool Agent::OnBackup(Decoder& d) {
  std::string suffix = d.Str(kMaxXattrName);
  std::string dir = d.Str(kMaxPath);
  if (!d.done() || !(caps_ & kCapBackup)) return Fatal("malformed BACKUP");
  if (!target_) return true;  // OPEN failed; its answer says why.
  auto backups = Backups::Open(BackupSettings{suffix, dir}, *target_, roots_);
  if (!backups) return Fatal("BACKUP: " + backups.error().message);
  backups_ = std::move(*backups);
  return true;
}

Result<void> Agent::KeepReplaced(int dir_fd, const std::string& name, const std::string& path) {
  if (!backups_) return {};
  struct stat st;
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || S_ISDIR(st.st_mode)) return {};
  return backups_->Keep(dir_fd, name, path);
}

bool Agent::OnFilter(Decoder& d) {
  uint32_t count = d.U32();
  std::vector<std::string> rules;
  for (uint32_t i = 0; i < count && d.ok(); ++i) rules.push_back(d.Str(kMaxPath));
  if (!d.done()) return Fatal("malformed FILTER");
  auto filter = Filter::Parse(rules);
  if (!filter) return Fatal("FILTER: " + filter.error().message);
  protect_ = std::move(*filter);
  return true;
}

Result<std::shared_ptr<UniqueFd>> Agent::ParentFor(const std::string& path, std::string* name) {
  SYNCD_TRY(ValidateRelativePath(path));
  size_t slash = path.rfind('/');
  std::string parent = slash == std::string::npos ? "" : path.substr(0, slash);
  *name = slash == std::string::npos ? path : path.substr(slash + 1);
  // Resolved afresh at its first use in each read of input, beneath the target and through no
  // symlink: a directory moved out of the target and replaced by a symlink since the last
  // operation the client waited for is never written into. The files of one directory share
  // one descriptor until COMMIT; within one read of input (hundreds of files), the path is not
  // resolved again for each of them (that was a third of the agent's system calls per file).
  auto it = parents_.find(parent);
  if (it != parents_.end() && it->second.input == input_) return it->second.fd;
  std::string ignored;
  auto fd = target_->OpenParent(path, &ignored);
  if (!fd) return std::unexpected(fd.error());
  struct stat now;
  if (::fstat(fd->get(), &now) != 0) return FailErrno("stat " + parent);
  if (it != parents_.end()) {
    if (it->second.dev == now.st_dev && it->second.ino == now.st_ino) {
      it->second.input = input_;
      return it->second.fd;
    }
    parents_.erase(it);
  }
  if (parents_.size() >= kMaxCachedParents) parents_.clear();
  auto shared = std::make_shared<UniqueFd>(std::move(*fd));
  parents_.emplace(parent, CachedParent{shared, now.st_dev, now.st_ino, input_});
  return shared;
}

void Agent::PublishFiles(bool wait) {
  uint64_t reopen = (caps_ & kCapDelta) ? kDeltaMinBytes : UINT64_MAX;
  if (!wait && !backups_) {
    if (!renames_.empty()) Published(publisher_.Start(target_->root_fd(), std::move(renames_), reopen));
    renames_.clear();
    return;
  }
  FinishPublishing();
  Publisher::Keep keep;
  if (backups_)
    keep = [this](int dir, const std::string& name, const std::string& path) {
      return KeepReplaced(dir, name, path);
    };
  Published(Publisher::PublishNow(target_->root_fd(), renames_, reopen, keep));
}

void Agent::FinishPublishing() { Published(publisher_.Finish()); }

void Agent::Published(Publisher::Outcome outcome) {
  for (const Publisher::Outcome::Failure& f : outcome.failed) Failed(f.seq, f.error, f.path);
  // A file large enough for deltas is signed now, in the background, for its next delta.
  for (UniqueFd& fd : outcome.published) signatures_.Add(std::move(fd));
}

bool Agent::OnCommit(Decoder& d) {
  uint64_t seq = d.U64();
  if (!d.done()) return Fatal("malformed COMMIT");
  parents_.clear();
  if (dirty_) {
    // Group commit: file data, then the renames that publish it, then one more sync for the
    // directory entries. An acknowledged batch survives a power cut.
    PublishFiles(/*wait=*/true);
    MakeLinks();
    MetaPolicy times_only;
    times_only.times = true;
    for (const DirTime& t : dir_times_) {
      std::string name;
      auto dir = target_->OpenParent(t.path, &name);
      if (!dir) continue;
      if (auto r = target_->ApplyMeta(dir->get(), name, t.meta, times_only); !r)
        LogWarn("{}: {}", t.path, r.error().message);
    }
    dir_times_.clear();
    if (stamp_) RecordStamp(true);
    if (::syncfs(target_->root_fd()) != 0)
      return Fatal(std::string("syncfs: ") + std::strerror(errno));
    dirty_ = false;
  }
  if (stamp_) RecordStamp(false);
  out_ += Encoder(MsgType::kCommitted).U64(seq).Finish();
  return true;
}

int RunAgent(int in_fd, int out_fd, std::vector<std::string> roots, std::string state_dir) {
  // A batch may touch many directories: use the descriptors the system allows.
  rlimit files;
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &files);
  }
  // A client that goes away mid-answer gives EPIPE, handled as an end of the session (the
  // agent's destructor removes its temporary files), not a signal that kills it on the spot.
  ::signal(SIGPIPE, SIG_IGN);
  Agent agent(std::move(roots), std::move(state_dir));
  FrameReader reader;
  std::string buf(256 * 1024, '\0');
  auto flush = [&]() -> bool {
    std::string out = agent.TakeOutput();
    std::string_view rest = out;
    while (!rest.empty()) {
      ssize_t n = ::write(out_fd, rest.data(), rest.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      rest.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  };
  agent.SetAnswerSink(flush);
  for (;;) {
    ssize_t n = ::read(in_fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      LogError("agent: read: {}", std::strerror(errno));
      return 1;
    }
    if (n == 0) {  // The client closed the stream: between frames, or cut one short.
      if (reader.buffered() == 0) return 0;
      LogError("agent: the stream ended inside a frame ({} bytes of it)", reader.buffered());
      return 2;
    }
    reader.Feed(std::string_view(buf.data(), static_cast<size_t>(n)));
    agent.NewInput();
    for (;;) {
      auto frame = reader.Next();
      if (!frame) {  // Oversized or empty frame: the stream cannot be trusted any more.
        flush();
        std::string msg = Encoder(MsgType::kFatal).U32(EPROTO).Str(frame.error().message).Finish();
        [[maybe_unused]] ssize_t w = ::write(out_fd, msg.data(), msg.size());
        LogError("agent: {}", frame.error().message);
        return 2;
      }
      if (!*frame) break;
      bool go_on = agent.Handle((*frame)->type, (*frame)->payload);
      if (!go_on) {
        flush();
        return 2;
      }
      if (agent.output_size() > (1 << 20) && !flush()) return 1;
    }
    if (!flush()) return 1;
  }
}

}  // namespace syncd::transport