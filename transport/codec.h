// Codec for syncd's wire protocol: frames, primitive encodings and the message types. The
// byte layout is the grammar in transport/PROTOCOL.md; keep the two in step.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "syncd/error.h"
#include "syncd/history.h"
#include "syncd/tree.h"

namespace syncd::transport {

inline constexpr uint32_t kMagic = 0x53594E43;  // "SYNC"
inline constexpr uint16_t kProtocolVersion = 2;
inline constexpr uint32_t kMaxFrame = 16 * 1024 * 1024;  // Larger frames are refused.
inline constexpr size_t kMaxPath = 4096;                 // PATH_MAX, including every component.
inline constexpr size_t kDataChunk = 256 * 1024;         // File content per PUT_DATA frame.
// What one ZSTD frame may unpack to: a client packs one queue of frames, or one frame.
inline constexpr uint64_t kMaxZstdOutput = 2ull * kMaxFrame;

// Capability bits of HELLO and HELLO_OK (version 2 and later): what each side can do. The agent
// answers with the bits both sides have; a client uses only those.
inline constexpr uint64_t kCapDelta = 1u << 0;  // SIGNATURE and PATCH_BEGIN.
inline constexpr uint64_t kCapZstd = 1u << 1;   // ZSTD frames from the client.
// A delta may be several librsync deltas one after the other (the segments of a large file).
inline constexpr uint64_t kCapDeltaChain = 1u << 2;
// FILTER from the client and KEPT from the agent: deletions keep what the filter protects.
inline constexpr uint64_t kCapFilter = 1u << 3;
// MKNOD, and LIST entries of types 5 to 8 (FIFO, socket, devices) instead of 4.
inline constexpr uint64_t kCapSpecials = 1u << 4;
// LINK, and LIST entries of files with more than one link say which file they are.
inline constexpr uint64_t kCapHardLinks = 1u << 5;
// The OPEN flags kKeepXattrs and kKeepAcls: metadata carries extended attributes.
inline constexpr uint64_t kCapXattrs = 1u << 6;
// The OPEN flags kOmitDirTimes and kOmitLinkTimes.
inline constexpr uint64_t kCapOmitTimes = 1u << 7;
// BACKUP: what the session replaces or deletes is kept under another name.
inline constexpr uint64_t kCapBackup = 1u << 8;
// NOTICE from the agent: something the client logs.
inline constexpr uint64_t kCapNotice = 1u << 9;
// HISTORY and STAMP (generations, see syncd/history.h), and GET: the client may read the
// standby's files (`syncd adopt`).
inline constexpr uint64_t kCapHistory = 1u << 10;
inline constexpr uint64_t kKnownCaps = kCapDelta | kCapZstd | kCapDeltaChain | kCapFilter |
                                       kCapSpecials | kCapHardLinks | kCapXattrs |
                                       kCapOmitTimes | kCapBackup | kCapNotice | kCapHistory;
// Epochs one HISTORY_DATA or STAMP may carry.
inline constexpr uint32_t kMaxWireEpochs = 256;

enum class MsgType : uint8_t {
  // Client to agent.
  kHello = 0x01,
  kOpen = 0x02,
  kList = 0x03,
  kFilter = 0x04,
  kBackup = 0x05,
  kHistory = 0x06,
  kStamp = 0x07,
  kGet = 0x08,
  kPutBegin = 0x10,
  kPutData = 0x11,
  kPutEnd = 0x12,
  kMkdir = 0x13,
  kSymlink = 0x14,
  kDelete = 0x15,
  kSetMeta = 0x16,
  kRename = 0x17,
  kSignature = 0x18,
  kPatchBegin = 0x19,
  kMknod = 0x1A,
  kLink = 0x1B,
  kCommit = 0x20,
  kZstd = 0x30,
  // Agent to client.
  kHelloOk = 0x81,
  kOk = 0x82,
  kListChunk = 0x83,
  kListEnd = 0x84,
  kFailed = 0x85,
  kCommitted = 0x86,
  kSigData = 0x87,
  kSigEnd = 0x88,
  kKept = 0x89,
  kNotice = 0x8A,
  kHistoryData = 0x8B,
  kGetData = 0x8C,
  kGetEnd = 0x8D,
  kFatal = 0x8F,
};

// OPEN flags: which metadata the agent applies (rsync -p, -o, -g, -t).
inline constexpr uint32_t kKeepPerms = 1u << 0;
inline constexpr uint32_t kKeepOwner = 1u << 1;
inline constexpr uint32_t kKeepGroup = 1u << 2;
inline constexpr uint32_t kKeepTimes = 1u << 3;
// With the xattrs capability: extended attributes (rsync -X) and POSIX ACLs (-A). With either
// set, every `meta` of the session carries the attributes.
inline constexpr uint32_t kKeepXattrs = 1u << 4;
inline constexpr uint32_t kKeepAcls = 1u << 5;
// With the omit-times capability: with kKeepTimes, directories' (rsync -O) or symlinks' (-J)
// times are left as they are.
inline constexpr uint32_t kOmitDirTimes = 1u << 6;
inline constexpr uint32_t kOmitLinkTimes = 1u << 7;

// Bounds of the attributes one `meta` carries (Linux: names of 255 bytes, values of 64 KiB).
inline constexpr uint32_t kMaxXattrs = 1024;
inline constexpr size_t kMaxXattrName = 255;
inline constexpr size_t kMaxXattrValue = 64 * 1024;

// PUT_END status.
inline constexpr uint8_t kPutComplete = 0;
inline constexpr uint8_t kPutAbort = 1;

class Encoder {
 public:
  // Starts a frame of `type`; Finish() fills in the length prefix.
  explicit Encoder(MsgType type);
  Encoder& U8(uint8_t v);
  Encoder& U16(uint16_t v);
  Encoder& U32(uint32_t v);
  Encoder& U64(uint64_t v);
  Encoder& I64(int64_t v) { return U64(static_cast<uint64_t>(v)); }
  Encoder& Str(std::string_view s);
  Encoder& Raw(std::string_view s);
  // `xattrs`: the session carries extended attributes (kKeepXattrs or kKeepAcls).
  Encoder& MetaField(const Meta& m, bool xattrs = false);
  Encoder& EntryField(const Entry& e, bool xattrs = false);
  Encoder& EpochsField(const Lineage& epochs);
  std::string Finish();

 private:
  std::string buf_;
};

// Reads primitives from one frame's payload. Any read past the end sets !ok() and returns
// zero values, so a message is decoded in full and checked once.
class Decoder {
 public:
  explicit Decoder(std::string_view payload) : in_(payload) {}
  uint8_t U8();
  uint16_t U16();
  uint32_t U32();
  uint64_t U64();
  int64_t I64() { return static_cast<int64_t>(U64()); }
  std::string Str(size_t max = kMaxFrame);
  std::string_view Rest();
  Meta MetaField(bool xattrs = false);
  Entry EntryField(bool xattrs = false);
  Lineage EpochsField();
  bool ok() const { return ok_; }
  bool done() const { return ok_ && in_.empty(); }

 private:
  bool Take(size_t n, std::string_view* out);
  std::string_view in_;
  bool ok_ = true;
};

// Splits a byte stream into frames. Feed bytes as they arrive; Next() yields complete frames.
class FrameReader {
 public:
  struct Frame {
    MsgType type;
    std::string_view payload;  // Valid until the next Feed() or Next().
  };
  void Feed(std::string_view bytes);
  // A frame, nullopt when more bytes are needed, or an error for a malformed stream.
  Result<std::optional<Frame>> Next();
  size_t buffered() const { return buf_.size() - pos_; }

 private:
  std::string buf_;
  size_t pos_ = 0;
};

// Checks a relative path from the wire: not empty (unless `allow_root`), no leading `/`, no
// empty, `.` or `..` components, no NUL, within kMaxPath.
Result<void> ValidateRelativePath(std::string_view path, bool allow_root = false);

const char* MsgTypeName(MsgType type);

}  // namespace syncd::transport
