#include "transport/codec.h"

#include <fmt/format.h>

#include <utility>

namespace syncd::transport {

Encoder::Encoder(MsgType type) {
  buf_.resize(4);
  buf_.push_back(static_cast<char>(type));
}

Encoder& Encoder::U8(uint8_t v) {
  buf_.push_back(static_cast<char>(v));
  return *this;
}
Encoder& Encoder::U16(uint16_t v) { return U8(static_cast<uint8_t>(v >> 8)).U8(static_cast<uint8_t>(v)); }
Encoder& Encoder::U32(uint32_t v) {
  return U16(static_cast<uint16_t>(v >> 16)).U16(static_cast<uint16_t>(v));
}
Encoder& Encoder::U64(uint64_t v) {
  return U32(static_cast<uint32_t>(v >> 32)).U32(static_cast<uint32_t>(v));
}
Encoder& Encoder::Str(std::string_view s) {
  U32(static_cast<uint32_t>(s.size()));
  buf_.append(s);
  return *this;
}
Encoder& Encoder::Raw(std::string_view s) {
  buf_.append(s);
  return *this;
}
Encoder& Encoder::MetaField(const Meta& m, bool xattrs) {
  U32(m.mode).U32(m.uid).U32(m.gid).Str(m.user).Str(m.group).I64(m.mtime_sec).U32(m.mtime_nsec);
  if (!xattrs) return *this;
  U32(static_cast<uint32_t>(m.xattrs.size()));
  for (const auto& [name, value] : m.xattrs) Str(name).Str(value);
  return *this;
}
Encoder& Encoder::EntryField(const Entry& e, bool xattrs) {
  // A device's number travels where a file's size does.
  Str(e.path).U8(static_cast<uint8_t>(e.type)).U64(IsDevice(e.type) ? e.rdev : e.size).MetaField(e.meta, xattrs);
  return Str(e.link_target);
}

Encoder& Encoder::EpochsField(const Lineage& epochs) {
  U32(static_cast<uint32_t>(epochs.size()));
  for (const EpochRecord& e : epochs)
    Str(e.node).Str(e.host).U64(e.counter).I64(e.started).I64(e.first).I64(e.through)
        .U64(e.changes).I64(e.unconfirmed_since);
  return *this;
}

std::string Encoder::Finish() {
  uint32_t len = static_cast<uint32_t>(buf_.size() - 4);
  for (int i = 0; i < 4; ++i) buf_[static_cast<size_t>(i)] = static_cast<char>(len >> (24 - 8 * i));
  return std::move(buf_);
}

bool Decoder::Take(size_t n, std::string_view* out) {
  if (!ok_ || in_.size() < n) {
    ok_ = false;
    return false;
  }
  *out = in_.substr(0, n);
  in_.remove_prefix(n);
  return true;
}

uint8_t Decoder::U8() {
  std::string_view b;
  return Take(1, &b) ? static_cast<uint8_t>(b[0]) : 0;
}
uint16_t Decoder::U16() {
  uint16_t hi = U8();
  return static_cast<uint16_t>(hi << 8 | U8());
}
uint32_t Decoder::U32() {
  uint32_t hi = U16();
  return hi << 16 | U16();
}
uint64_t Decoder::U64() {
  uint64_t hi = U32();
  return hi << 32 | U32();
}
std::string Decoder::Str(size_t max) {
  uint32_t len = U32();
  std::string_view b;
  if (len > max) {
    ok_ = false;
    return {};
  }
  return Take(len, &b) ? std::string(b) : std::string();
}
std::string_view Decoder::Rest() {
  std::string_view r = ok_ ? in_ : std::string_view();
  in_ = {};
  return r;
}
Meta Decoder::MetaField(bool xattrs) {
  Meta m;
  m.mode = U32();
  m.uid = U32();
  m.gid = U32();
  m.user = Str(256);
  m.group = Str(256);
  m.mtime_sec = I64();
  m.mtime_nsec = U32();
  if (m.mtime_nsec >= 1000000000) ok_ = false;
  if (!xattrs) return m;
  uint32_t count = U32();
  if (count > kMaxXattrs) ok_ = false;
  for (uint32_t i = 0; i < count && ok_; ++i) {
    std::string name = Str(kMaxXattrName);
    std::string value = Str(kMaxXattrValue);
    // Sorted, each name once, no NUL inside a name.
    if (name.empty() || name.find('\0') != std::string::npos ||
        (!m.xattrs.empty() && m.xattrs.back().first >= name))
      ok_ = false;
    m.xattrs.emplace_back(std::move(name), std::move(value));
  }
  return m;
}
Entry Decoder::EntryField(bool xattrs) {
  Entry e;
  e.path = Str(kMaxPath);
  uint8_t type = U8();
  if (type < 1 || type > 8) ok_ = false;
  e.type = static_cast<FileType>(type);
  e.size = U64();
  if (IsDevice(e.type)) e.rdev = std::exchange(e.size, 0);
  e.meta = MetaField(xattrs);
  e.link_target = Str(kMaxPath);
  return e;
}

Lineage Decoder::EpochsField() {
  uint32_t count = U32();
  if (count > kMaxWireEpochs) ok_ = false;
  Lineage out;
  for (uint32_t i = 0; ok_ && i < count; ++i) {
    EpochRecord e;
    e.node = Str(64);
    e.host = Str(256);
    e.counter = U64();
    e.started = I64();
    e.first = I64();
    e.through = I64();
    e.changes = U64();
    e.unconfirmed_since = I64();
    out.push_back(std::move(e));
  }
  return out;
}

void FrameReader::Feed(std::string_view bytes) {
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > (1 << 20)) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(bytes);
}

Result<std::optional<FrameReader::Frame>> FrameReader::Next() {
  size_t avail = buf_.size() - pos_;
  if (avail < 4) return std::nullopt;
  const auto* p = reinterpret_cast<const unsigned char*>(buf_.data() + pos_);
  uint32_t len = uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
  if (len == 0) return Fail("protocol error: empty frame");
  if (len > kMaxFrame)
    return Fail(fmt::format("protocol error: frame of {} bytes exceeds the {} byte limit", len,
                            kMaxFrame));
  if (avail < 4 + size_t{len}) return std::nullopt;
  Frame f{static_cast<MsgType>(p[4]), std::string_view(buf_).substr(pos_ + 5, len - 1)};
  pos_ += 4 + len;
  return f;
}

Result<void> ValidateRelativePath(std::string_view path, bool allow_root) {
  if (path.empty()) {
    if (allow_root) return {};
    return Fail("empty path", EINVAL);
  }
  if (path.size() > kMaxPath) return Fail("path too long", ENAMETOOLONG);
  if (path.find('\0') != std::string_view::npos) return Fail("path contains a NUL byte", EINVAL);
  if (path.front() == '/') return Fail("absolute path refused: " + std::string(path), EINVAL);
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    std::string_view part =
        path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (part.empty() || part == "." || part == "..")
      return Fail("path component refused: " + std::string(path), EINVAL);
    if (part.size() > 255) return Fail("name too long: " + std::string(path), ENAMETOOLONG);
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return {};
}

const char* MsgTypeName(MsgType type) {
  switch (type) {
    case MsgType::kHello: return "HELLO";
    case MsgType::kOpen: return "OPEN";
    case MsgType::kList: return "LIST";
    case MsgType::kFilter: return "FILTER";
    case MsgType::kBackup: return "BACKUP";
    case MsgType::kHistory: return "HISTORY";
    case MsgType::kStamp: return "STAMP";
    case MsgType::kGet: return "GET";
    case MsgType::kPutBegin: return "PUT_BEGIN";
    case MsgType::kPutData: return "PUT_DATA";
    case MsgType::kPutEnd: return "PUT_END";
    case MsgType::kMkdir: return "MKDIR";
    case MsgType::kSymlink: return "SYMLINK";
    case MsgType::kDelete: return "DELETE";
    case MsgType::kSetMeta: return "SET_META";
    case MsgType::kRename: return "RENAME";
    case MsgType::kSignature: return "SIGNATURE";
    case MsgType::kPatchBegin: return "PATCH_BEGIN";
    case MsgType::kMknod: return "MKNOD";
    case MsgType::kLink: return "LINK";
    case MsgType::kCommit: return "COMMIT";
    case MsgType::kZstd: return "ZSTD";
    case MsgType::kHelloOk: return "HELLO_OK";
    case MsgType::kOk: return "OK";
    case MsgType::kListChunk: return "LIST_CHUNK";
    case MsgType::kListEnd: return "LIST_END";
    case MsgType::kFailed: return "FAILED";
    case MsgType::kCommitted: return "COMMITTED";
    case MsgType::kSigData: return "SIG_DATA";
    case MsgType::kSigEnd: return "SIG_END";
    case MsgType::kKept: return "KEPT";
    case MsgType::kNotice: return "NOTICE";
    case MsgType::kHistoryData: return "HISTORY_DATA";
    case MsgType::kGetData: return "GET_DATA";
    case MsgType::kGetEnd: return "GET_END";
    case MsgType::kFatal: return "FATAL";
  }
  return "UNKNOWN";
}

}  // namespace syncd::transport
