// ReplicaClient implements syncd::Replica over a Channel: it opens the agent's target, lists
// it, and streams batches of operations, pipelined: it never waits for one file's answer
// before sending the next, and a batch is complete when the agent's COMMITTED arrives.
#pragma once

#include <zstd.h>

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "syncd/file_system.h"
#include "syncd/meta_mapping.h"
#include "syncd/replica.h"
#include "syncd/unique_fd.h"
#include "transport/backup.h"
#include "transport/channel.h"
#include "transport/codec.h"
#include "transport/file_reader.h"
#include "transport/owned.h"
#include "transport/target_dir.h"

namespace syncd::transport {

struct ClientOptions {
  bool delta = true;      // Send changed large files as deltas when the peer can take them.
  bool compress = false;  // Compress the stream (zstd) when the peer can take it.
  // Filter rules the agent applies to deletions (canonical; only those that can protect).
  std::vector<std::string> protect_rules;
  // rsync's --chmod, --usermap, --groupmap, --numeric-ids: applied to a file's metadata as it
  // is read for sending.
  MetaMapping meta_mapping;
  // rsync's -L / --copy-unsafe-links: a file to send may be reached through a symlink.
  bool follow_links = false;
  // rsync's -X / -A: the extended attributes (and ACLs) a file carries, read as it is sent.
  XattrScope xattrs;
  // rsync's --backup: the agent keeps what it replaces or deletes, as BACKUP says.
  std::optional<BackupSettings> backup;
};

class ReplicaClient : public Replica {
 public:
  using ChannelFactory = std::function<std::unique_ptr<Channel>()>;
  // `open_flags` are the kKeep* bits; `factory` makes a fresh channel for every Connect().
  // Large files are read in `loop`'s thread pool (inline when it is null).
  ReplicaClient(uv_loop_t* loop, std::string description, std::string target_dir,
                uint32_t open_flags, ChannelFactory factory, ClientOptions options = {});
  ~ReplicaClient() override;

  void Connect(std::function<void(Result<void>)> done) override;
  void List(std::function<void(Result<Listing>)> done) override;
  void Apply(SharedBatch batch, std::function<void(BatchResult)> done) override;
  void OnLost(std::function<void(const Error&)> handler) override { on_lost_ = std::move(handler); }
  void SetProtectRules(std::vector<std::string> rules) override;
  void History(std::function<void(Result<PeerHistory>)> done) override;
  void Fetch(const Entry& entry, const std::string& local_root,
             std::function<void(Result<void>)> done) override;
  void Close() override;
  std::string Describe() const override { return description_; }
  Sent InFlightSent() const override;
  // What the agent said about itself in its hello, e.g. "syncd 0.1.0 on osm2".
  const std::string& peer_version() const { return peer_version_; }
  // Capability bits agreed with the agent (kCap*).
  uint64_t capabilities() const { return caps_; }

 private:
  struct InFlight {
    SharedBatch batch;
    std::function<void(BatchResult)> done;
    size_t next_op = 0;
    uint64_t bytes_started = 0;  // Of the files among the first next_op operations.
    uint64_t commit_seq = 0;  // 0 until COMMIT is sent.
    std::unordered_map<uint64_t, std::string> op_paths;
    std::vector<OpFailure> failures;
    std::vector<std::pair<std::string, ContentHash>> sent_hashes;
    std::vector<std::string> kept;
    std::unordered_set<uint64_t> patch_seqs;  // Ops sent as deltas.
    // Uploads aborted because the source could not be read: the agent's FAILED for them
    // (a dropped upload) is reported with this cause instead.
    std::unordered_map<uint64_t, Error> read_errors;
  };
  struct Upload {
    uint64_t seq = 0;
    std::string path;
    Entry now;                  // The file as it was opened.
    UniqueFd fd;                // Holds the shared lock while the file is read (or the reader does).
    std::shared_ptr<FileReader> reader;
    struct stat before;
    InFlight* batch = nullptr;
    bool delta = false;         // The reader makes a delta; PATCH_BEGIN rather than PUT_BEGIN.
    bool begun = false;         // PUT_BEGIN or PATCH_BEGIN has been sent.
    uint64_t sig_seq = 0;       // Waiting for the signature of the peer's copy.
    std::string signature;      // As it arrives.
    uint64_t sent = 0;          // Bytes of content or delta sent.
  };
  static constexpr size_t kHighWater = 1 << 20;  // Stop feeding the channel above this many bytes.

  // A file being copied from the peer (Fetch).
  struct Fetching {
    uint64_t seq = 0;
    Entry entry;
    std::string local;  // Its local path, for messages.
    std::optional<TargetDir> dir;  // The local root.
    UniqueFd parent;
    std::string name, temp;
    UniqueFd fd;
    XxhState hash;
    uint64_t size = 0;
    std::optional<Error> error;
    std::function<void(Result<void>)> done;
  };

  void OnData(std::string_view bytes);
  void HandleFrame(MsgType type, std::string_view payload);
  // replica_client_history.cc: HISTORY_DATA, GET_DATA and GET_END; FAILED for HISTORY or
  // GET (true when it was one of those).
  void HandleHistoryFrame(MsgType type, Decoder& d);
  bool HistoryFailed(uint64_t seq, int code, const std::string& message);
  void FinishFetch(Result<void> result);
  void PumpWrites();
  // Frames for the channel, gathered into runs (see kQueueBytes); PumpWrites() flushes.
  void Queue(std::string frame);
  void FlushQueued();
  size_t Buffered() const;
  bool StartOp(InFlight& batch, const Op& op);
  // Starts reading the upload's file: a delta against `signature`, or the whole content.
  void StartReader(Upload& u, std::optional<std::string> signature);
  // Whole content after all (no signature, a failed or unprofitable delta).
  void SendWhole(Upload& u, std::string_view why);
  void ContinueUpload();
  // Writes bytes to the channel, compressed once the peer agreed to it.
  void Send(std::string bytes);
  void FinishUpload(bool abort);
  void Fail(const Error& error);
  // FILTER with the protect rules.
  std::string FilterFrame() const;

  uv_loop_t* loop_;
  std::string description_;
  std::string target_dir_;
  uint32_t open_flags_;
  // The capabilities this sync cannot do without (its OPEN flags and options ask for them).
  uint64_t NeededCaps() const;
  ChannelFactory factory_;
  std::unique_ptr<Channel> channel_;
  FrameReader reader_;
  NameCache names_;
  uint64_t next_seq_ = 1;
  std::string peer_version_;
  ClientOptions options_;
  uint64_t caps_ = 0;
  ZstdCompressor zstd_;  // Set while the stream is compressed.
  // Paths whose delta failed on the peer: the next transfer sends them whole.
  std::unordered_set<std::string> whole_next_;

  std::function<void(Result<void>)> connect_done_;
  uint64_t open_seq_ = 0;
  bool hello_ok_ = false;
  bool connected_ = false;

  std::function<void(Result<Listing>)> list_done_;
  uint64_t list_seq_ = 0;
  Listing listing_;

  std::deque<InFlight> batches_;
  std::optional<Upload> upload_;
  std::string queued_;
  bool pumping_ = false;
  bool filter_pending_ = false;  // New protect rules wait for the end of the current PUT.
  std::function<void(const Error&)> on_lost_;
  std::function<void(Result<PeerHistory>)> history_done_;
  uint64_t history_seq_ = 0;
  std::optional<Fetching> fetch_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace syncd::transport
