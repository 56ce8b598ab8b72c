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
constexpr size_t kMaxWaitingFiles = 4096;   // Finished files waiting for COMMIT, at most.
constexpr size_t kMaxCachedParents = 256;   // Directory descriptors kept for PUTs, at most.
constexpr uint64_t kWritebackBytes = 4 << 20;  // Writeback of a large file starts every 4 MiB.
constexpr int kZstdWindowLogMax = 24;            // 16 MiB: the client's level 1 uses far less.
constexpr size_t kMaxQueuedAnswers = 1 << 20;    // Answers are written out past 1 MiB.

std::string HostName() {
  char buf[256] = {};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

}  // namespace

Agent::Agent(std::vector<std::string> roots) : roots_(std::move(roots)) {}

Agent::~Agent() {
  // However the session ends (EOF, FATAL, a broken pipe), nothing half-done stays behind: the
  // file being received and the finished ones that a COMMIT never published.
  AbortPut();
  for (const Rename& r : renames_) ::unlinkat(r.dir->get(), r.temp.c_str(), 0);
  if (zstd_) ZSTD_freeDCtx(zstd_);
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
  if (!target_ && type != MsgType::kHello && type != MsgType::kOpen && type != MsgType::kFilter)
    return Fatal(std::string(MsgTypeName(type)) + " before OPEN");
  switch (type) {
    case MsgType::kHello: return OnHello(d);
    case MsgType::kOpen: return OnOpen(d);
    case MsgType::kList: return OnList(d);
    case MsgType::kBackup: return OnBackup(d);
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

bool Agent::OnPutBegin(Decoder& d, bool patch) {
  Put p;
  p.seq = d.U64();
  p.path = d.Str(kMaxPath);
  p.size = d.U64();
  p.meta = d.MetaField(xattrs_);
  if (!d.done()) return Fatal(patch ? "malformed PATCH_BEGIN" : "malformed PUT_BEGIN");
  dirty_ = true;
  p.hash = XXH3_createState();
  XXH3_128bits_reset(p.hash);
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
    mode_t mode = policy_.perms ? 0600 : (p.meta.mode & 0777);
    p.fd.Reset(::openat(p.dir->get(), p.temp.c_str(),
                        O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
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
  XXH3_128bits_update(p.hash, data.data(), data.size());
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
    zstd_ = ZSTD_createDCtx();
    // The decoder's window is the sender's choice: bound what it may ask for.
    ZSTD_DCtx_setParameter(zstd_, ZSTD_d_windowLogMax, kZstdWindowLogMax);
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
    size_t r = ZSTD_decompressStream(zstd_, &o, &in);
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
  if (put_->hash) XXH3_freeState(put_->hash);
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
    XXH128_hash_t got = XXH3_128bits_digest(p.hash);
    if (got.high64 != hi || got.low64 != lo)
      error = Error{"content hash mismatch; the file was not replaced", EIO};
  }
  if (!error) {
    if (auto r = target_->ApplyMetaFd(p.fd.get(), p.meta, policy_); !r) error = r.error();
  }
  if (error) {
    Failed(seq, *error, p.path);
    AbortPut();
    return true;
  }
  p.fd.Reset();  // Data is made durable by the syncfs() at COMMIT.
  renames_.push_back(Rename{seq, p.path, p.dir, p.temp, p.name, p.size});
  XXH3_freeState(p.hash);
  put_.reset();
  if (renames_.size() >= kMaxWaitingFiles) PublishFiles();
  return true;
}

bool Agent::OnMkdir(Decoder& d) {
  parents_.clear();  // A directory may move or go: cached descriptors could mislead.
  uint64_t seq = d.U64();
  std::string path = d.Str(kMaxPath);
  Meta meta = d.MetaField(xattrs_);
  if (!d.done()) return Fatal("malformed MKDIR");
  dirty_ = true;
  std::string name;
  auto dir = target_->OpenParent(path, &name);
  if (!dir) return Failed(seq, dir.error(), path), true;
  if (name.empty()) return Failed(seq, Error{"cannot create the target itself", EEXIST}, path), true;
  // Without kept permissions the kernel applies the umask (or a default ACL) to the source's
  // bits, and a parent's setgid bit, as for rsync --no-perms.
  if (::mkdirat(dir->get(), name.c_str(), policy_.perms ? 0700 : (meta.mode & 0777)) != 0) {
    struct stat st;
    if (errno != EEXIST || ::fstatat(dir->get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISDIR(st.st_mode))
      return Failed(seq, Error::FromErrno("mkdir " + path), path), true;
  }
  if (auto r = target_->ApplyMeta(dir->get(), name, meta, policy_, /*skip_times=*/true); !r)
    return Failed(seq, r.error(), path), true;
  // Its mtime changes as entries are created inside; it is set at COMMIT.
  if (policy_.times && policy_.dir_times) dir_times_.push_back(DirTime{path, meta});
  return true;
}

void Agent::MakeInPlace(uint64_t seq, const std::string& path, const Meta& meta,
                        const char* what, const std::function<int(int, const char*)>& make) {
  std::string name;
  auto dir = target_->OpenParent(path, &name);
  if (!dir) return Failed(seq, dir.error(), path);
  if (name.empty()) return Failed(seq, Error{"cannot replace the target itself", EINVAL}, path);
  std::string temp = TargetDir::NewTempName();
  if (make(dir->get(), temp.c_str()) != 0)
    return Failed(seq, Error::FromErrno(std::string(what) + " " + path), path);
  auto meta_ok = target_->ApplyMeta(dir->get(), temp, meta, policy_);
  if (meta_ok) meta_ok = KeepReplaced(dir->get(), name, path);
  if (!meta_ok || ::renameat(dir->get(), temp.c_str(), dir->get(), name.c_str()) != 0) {
    Error e = meta_ok ? Error::FromErrno("rename " + path) : meta_ok.error();
    ::unlinkat(dir->get(), temp.c_str(), 0);
    Failed(seq, e, path);
  }
}

bool Agent::OnSymlink(Decoder& d) {
  parents_.clear();  // A directory may move or go: cached descriptors could mislead.
  uint64_t seq = d.U64();
  std::string path = d.Str(kMaxPath);
  std::string link = d.Str(kMaxPath);
  Meta meta = d.MetaField(xattrs_);
  if (!d.done() || link.find('\0') != std::string::npos) return Fatal("malformed SYMLINK");
  dirty_ = true;
  MakeInPlace(seq, path, meta, "symlink",
              [&](int dir, const char* temp) { return ::symlinkat(link.c_str(), dir, temp); });
  return true;
}

bool Agent::OnMknod(Decoder& d) {
  parents_.clear();  // A directory may move or go: cached descriptors could mislead.
  uint64_t seq = d.U64();
  std::string path = d.Str(kMaxPath);
  auto type = static_cast<FileType>(d.U8());
  uint64_t rdev = d.U64();
  Meta meta = d.MetaField(xattrs_);
  if (!d.done() || !(IsSpecial(type) || IsDevice(type))) return Fatal("malformed MKNOD");
  dirty_ = true;
  mode_t kind = type == FileType::kFifo         ? S_IFIFO
                : type == FileType::kSocket     ? S_IFSOCK
                : type == FileType::kCharDevice ? S_IFCHR
                                                : S_IFBLK;
  mode_t mode = policy_.perms ? 0600 : (meta.mode & 0777);
  auto dev = static_cast<dev_t>(IsDevice(type) ? rdev : 0);
  MakeInPlace(seq, path, meta, "mknod",
              [&](int dir, const char* temp) { return ::mknodat(dir, temp, kind | mode, dev); });
  return true;
}

bool Agent::OnLink(Decoder& d) {
  uint64_t seq = d.U64();
  std::string path = d.Str(kMaxPath);
  std::string target = d.Str(kMaxPath);
  if (!d.done()) return Fatal("malformed LINK");
  dirty_ = true;
  // At COMMIT, after the batch's files are in place: the target may be one of them.
  links_.push_back(Link{seq, std::move(path), std::move(target)});
  return true;
}

void Agent::MakeLinks() {
  for (const Link& l : links_) {
    std::string target_name, name;
    auto target_dir = target_->OpenParent(l.target, &target_name);
    if (!target_dir) {
      Failed(l.seq, target_dir.error(), l.path);
      continue;
    }
    auto dir = target_->OpenParent(l.path, &name);
    if (!dir) {
      Failed(l.seq, dir.error(), l.path);
      continue;
    }
    struct stat to, at;
    if (name.empty() || target_name.empty() ||
        ::fstatat(target_dir->get(), target_name.c_str(), &to, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISREG(to.st_mode)) {
      Failed(l.seq, Error{"cannot link " + l.path + " to " + l.target + ": not a file here", ENOENT},
             l.path);
      continue;
    }
    if (::fstatat(dir->get(), name.c_str(), &at, AT_SYMLINK_NOFOLLOW) == 0 &&
        at.st_dev == to.st_dev && at.st_ino == to.st_ino)
      continue;  // One file already (rename would do nothing and leave the temporary name).
    std::string temp = TargetDir::NewTempName();
    if (::linkat(target_dir->get(), target_name.c_str(), dir->get(), temp.c_str(), 0) != 0) {
      Failed(l.seq, Error::FromErrno("link " + l.path + " to " + l.target), l.path);
      continue;
    }
    if (auto kept = KeepReplaced(dir->get(), name, l.path); !kept) {
      Failed(l.seq, kept.error(), l.path);
      ::unlinkat(dir->get(), temp.c_str(), 0);
      continue;
    }
    if (::renameat(dir->get(), temp.c_str(), dir->get(), name.c_str()) != 0) {
      Failed(l.seq, Error::FromErrno("rename link into place " + l.path), l.path);
      ::unlinkat(dir->get(), temp.c_str(), 0);
    }
  }
  links_.clear();
}

bool Agent::OnDelete(Decoder& d) {
  parents_.clear();  // A directory may move or go: cached descriptors could mislead.
  uint64_t seq = d.U64();
  std::string path = d.Str(kMaxPath);
  if (!d.done()) return Fatal("malformed DELETE");
  dirty_ = true;
  std::string name;
  auto dir = target_->OpenParent(path, &name);
  if (!dir) {
    if (dir.error().code == ENOENT) return true;  // Parent gone: so is the path.
    return Failed(seq, dir.error(), path), true;
  }
  if (name.empty()) return Failed(seq, Error{"refusing to delete the target itself", EINVAL}, path), true;
  auto kept = TargetDir::Remove(dir->get(), name, path, protect_, backups_ ? &*backups_ : nullptr);
  if (!kept) return Failed(seq, kept.error(), path), true;
  if (kept->entries > 0)
    out_ += Encoder(MsgType::kKept).U64(seq).Str(path).U64(kept->entries).Str(kept->first).Finish();
  return true;
}

bool Agent::OnSetMeta(Decoder& d) {
  uint64_t seq = d.U64();
  std::string path = d.Str(kMaxPath);
  uint8_t type = d.U8();
  Meta meta = d.MetaField(xattrs_);
  if (!d.done()) return Fatal("malformed SET_META");
  dirty_ = true;
  std::string name;
  auto dir = target_->OpenParent(path, &name);
  if (!dir) return Failed(seq, dir.error(), path), true;
  bool is_dir = static_cast<FileType>(type) == FileType::kDir;
  if (auto r = target_->ApplyMeta(dir->get(), name, meta, policy_, /*skip_times=*/is_dir); !r)
    return Failed(seq, r.error(), path), true;
  if (is_dir && policy_.times && policy_.dir_times) dir_times_.push_back(DirTime{path, meta});
  return true;
}

bool Agent::OnRename(Decoder& d) {
  parents_.clear();  // A directory may move or go: cached descriptors could mislead.
  uint64_t seq = d.U64();
  std::string from = d.Str(kMaxPath);
  std::string to = d.Str(kMaxPath);
  if (!d.done()) return Fatal("malformed RENAME");
  dirty_ = true;
  std::string from_name, to_name;
  auto from_dir = target_->OpenParent(from, &from_name);
  if (!from_dir) return Failed(seq, from_dir.error(), from), true;
  auto to_dir = target_->OpenParent(to, &to_name);
  if (!to_dir) return Failed(seq, to_dir.error(), to), true;
  if (from_name.empty() || to_name.empty())
    return Failed(seq, Error{"cannot rename the target itself", EINVAL}, to), true;
  if (!policy_.perms) {
    // Without kept permissions, a file that replaces one keeps that one's mode, as rsync
    // --no-perms leaves it (a file saved through a temporary name and a rename).
    struct stat old, moving;
    if (::fstatat(to_dir->get(), to_name.c_str(), &old, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISREG(old.st_mode) &&
        ::fstatat(from_dir->get(), from_name.c_str(), &moving, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISREG(moving.st_mode))
      ::fchmodat(from_dir->get(), from_name.c_str(), old.st_mode & 07777, 0);
  }
  // A directory moved to a longer name must not make paths beneath it too long to list.
  if (to.size() > from.size()) {
    auto fits = TargetDir::Fits(from_dir->get(), from_name, kMaxPath - to.size() + from_name.size());
    if (!fits) return Failed(seq, fits.error(), from), true;
    if (!*fits)
      return Failed(seq, Error{"renaming " + from + " to " + to + " would make paths beneath it "
                               "longer than " + std::to_string(kMaxPath) + " bytes", ENAMETOOLONG}, to), true;
  }
  if (auto kept = KeepReplaced(to_dir->get(), to_name, to); !kept)
    return Failed(seq, kept.error(), to), true;
  if (::renameat(from_dir->get(), from_name.c_str(), to_dir->get(), to_name.c_str()) != 0)
    return Failed(seq, Error::FromErrno("rename " + from + " to " + to), to), true;
  return true;
}

Result<std::shared_ptr<UniqueFd>> Agent::ParentFor(const std::string& path, std::string* name) {
  SYNCD_TRY(ValidateRelativePath(path));
  size_t slash = path.rfind('/');
  std::string parent = slash == std::string::npos ? "" : path.substr(0, slash);
  *name = slash == std::string::npos ? path : path.substr(slash + 1);
  // Resolved afresh every time, beneath the target and through no symlink: a directory moved
  // out of the target and replaced by a symlink since the last operation is never written
  // into. Files of one directory still share one descriptor until COMMIT.
  std::string ignored;
  auto fd = target_->OpenParent(path, &ignored);
  if (!fd) return std::unexpected(fd.error());
  struct stat now;
  if (::fstat(fd->get(), &now) != 0) return FailErrno("stat " + parent);
  if (auto it = parents_.find(parent); it != parents_.end()) {
    struct stat was;
    if (::fstat(it->second->get(), &was) == 0 && was.st_dev == now.st_dev && was.st_ino == now.st_ino)
      return it->second;
    parents_.erase(it);
  }
  if (parents_.size() >= kMaxCachedParents) parents_.clear();
  auto shared = std::make_shared<UniqueFd>(std::move(*fd));
  parents_.emplace(parent, shared);
  return shared;
}

void Agent::PublishFiles() {
  if (renames_.empty()) return;
  // File data first, then the renames that make it visible.
  ::syncfs(target_->root_fd());
  for (Rename& r : renames_) {
    if (auto kept = KeepReplaced(r.dir->get(), r.name, r.path); !kept) {
      Failed(r.seq, kept.error(), r.path);
      ::unlinkat(r.dir->get(), r.temp.c_str(), 0);
      continue;
    }
    if (::renameat(r.dir->get(), r.temp.c_str(), r.dir->get(), r.name.c_str()) != 0) {
      if (errno == EISDIR || errno == ENOTEMPTY || errno == EEXIST)
        Failed(r.seq, Error{"could not make way for the new file: " + r.path + " is a directory "
                            "here that holds entries the filter protects", errno}, r.path);
      else
        Failed(r.seq, Error::FromErrno("rename into place " + r.path), r.path);
      ::unlinkat(r.dir->get(), r.temp.c_str(), 0);
      continue;
    }
    // A file large enough for deltas is signed now, in the background, for its next delta.
    if ((caps_ & kCapDelta) && r.size >= kDeltaMinBytes) {
      UniqueFd fd(::openat(r.dir->get(), r.name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY));
      if (fd.valid()) signatures_.Add(std::move(fd));
    }
  }
  renames_.clear();
}

bool Agent::OnCommit(Decoder& d) {
  uint64_t seq = d.U64();
  if (!d.done()) return Fatal("malformed COMMIT");
  parents_.clear();
  if (dirty_) {
    // Group commit: file data, then the renames that publish it, then one more sync for the
    // directory entries. An acknowledged batch survives a power cut.
    PublishFiles();
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
    if (::syncfs(target_->root_fd()) != 0)
      return Fatal(std::string("syncfs: ") + std::strerror(errno));
    dirty_ = false;
  }
  out_ += Encoder(MsgType::kCommitted).U64(seq).Finish();
  return true;
}

int RunAgent(int in_fd, int out_fd, std::vector<std::string> roots) {
  // A batch may touch many directories: use the descriptors the system allows.
  rlimit files;
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &files);
  }
  // A client that goes away mid-answer gives EPIPE, handled as an end of the session (the
  // agent's destructor removes its temporary files), not a signal that kills it on the spot.
  ::signal(SIGPIPE, SIG_IGN);
  Agent agent(std::move(roots));
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
