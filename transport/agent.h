// Agent is the receiving side, run as `syncd --server` on the peer: it reads frames from the
// client, applies them beneath the target directory and answers. Files are written to a
// temporary name in their own directory, checked (size and xxh3-128), given their metadata, and
// renamed into place at COMMIT after one syncfs(), so a reader never sees a partial file and an
// acknowledged batch survives a crash. Malformed input gets a FATAL reply, never a crash.
#pragma once

#include <sys/stat.h>
#include <xxhash.h>
#include <zstd.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "syncd/history.h"
#include "syncd/unique_fd.h"
#include "transport/backup.h"
#include "transport/codec.h"
#include "transport/owned.h"
#include "transport/publisher.h"
#include "transport/rsync_delta.h"
#include "transport/signature_cache.h"
#include "transport/target_dir.h"

namespace syncd::transport {

class Agent {
 public:
  // `roots`: absolute canonical directories the target must be in or beneath (none: any).
  // `state_dir`: where this node keeps the history of its trees (none: no history kept).
  explicit Agent(std::vector<std::string> roots = {}, std::string state_dir = {});
  ~Agent();
  // Where answers go when they pile up while one ZSTD frame is handled (RunAgent writes them
  // out); returns false when they cannot be written.
  void SetAnswerSink(std::function<bool()> sink) { sink_ = std::move(sink); }

  // Handles one frame; replies are appended to the output. Returns false once the session must
  // end (a FATAL reply has been queued).
  bool Handle(MsgType type, std::string_view payload);
  // Input read since is new: a parent directory cached for PUTs is resolved beneath the target
  // again before its next use (once per read of input, not once per file).
  void NewInput() { ++input_; }
  // Takes the replies queued so far.
  std::string TakeOutput() { return std::exchange(out_, {}); }
  // SIGNATURE requests answered with a signature made in the background.
  uint64_t signatures_from_cache() const { return signatures_.hits(); }
  // Waits for the background signatures of the files put in place so far (tests).
  void WaitForSignatures() { signatures_.WaitIdle(); }
  size_t output_size() const { return out_.size(); }

 private:
  struct Put {
    uint64_t seq = 0;
    std::string path;
    std::shared_ptr<UniqueFd> dir;
    std::string name;
    std::string temp;
    UniqueFd fd;
    std::optional<struct stat> created;  // The temporary file as made, when its metadata matters.
    uint64_t size = 0;
    uint64_t written = 0;
    uint64_t flushed = 0;  // Bytes whose writeback has been started.
    Meta meta;
    std::optional<Error> error;
    XxhState hash;
    // PATCH_BEGIN: the data is a delta against the file now at the path (`basis`).
    bool delta = false;
    UniqueFd basis;
    std::unique_ptr<PatchApplier> patch;
  };
  struct DirTime {
    std::string path;
    Meta meta;
  };

  bool Fatal(const std::string& message);
  void Ok(uint64_t seq);
  void Failed(uint64_t seq, const Error& error, const std::string& path);
  bool OnHello(Decoder& d);
  bool OnOpen(Decoder& d);
  bool OnList(Decoder& d);
  bool OnBackup(Decoder& d);
  // With backups: the entry `name` of `dir_fd` that is about to be replaced becomes its
  // backup (a directory there is not touched).
  Result<void> KeepReplaced(int dir_fd, const std::string& name, const std::string& path);
  bool OnFilter(Decoder& d);
  bool OnPutBegin(Decoder& d, bool patch);
  bool OnPutData(Decoder& d);
  bool OnPutEnd(Decoder& d);
  bool OnMkdir(Decoder& d);
  bool OnSymlink(Decoder& d);
  bool OnMknod(Decoder& d);
  // Makes a symlink or node at `path` with `make(dir_fd, temp_name)` under a temporary name,
  // gives it its metadata and renames it over what was there; failures answer FAILED.
  void MakeInPlace(uint64_t seq, const std::string& path, const Meta& meta, const char* what,
                   const std::function<int(int, const char*)>& make);
  bool OnLink(Decoder& d);
  // Makes the links LINK asked for, once the batch's files are in place.
  void MakeLinks();
  bool OnDelete(Decoder& d);
  bool OnSetMeta(Decoder& d);
  bool OnRename(Decoder& d);
  bool OnCommit(Decoder& d);
  // History (agent_history.cc): what this node's tree holds, the active node's stamps, and
  // reading a file for the client.
  bool OnHistory(Decoder& d);
  bool OnStamp(Decoder& d);
  bool OnGet(Decoder& d);
  // Reads the target's history once; false (and `history_error_`) if it cannot be kept.
  bool LoadHistory();
  // Records the pending stamp; `synced_after`: a syncfs() of the target's file system follows.
  void RecordStamp(bool synced_after);
  bool OnSignature(Decoder& d);
  bool OnZstd(std::string_view payload);
  // Appends rebuilt or received content to the PUT's temporary file.
  void WriteOut(Put& p, std::string_view data);
  // The regular file at `path`, opened for reading without following a symlink.
  Result<UniqueFd> OpenBasis(const std::string& path);
  void AbortPut();
  // syncfs(), then renames the finished files into place: at COMMIT (`wait`: done before it
  // returns), and earlier when many are waiting, so a large batch does not hold a descriptor
  // per file (then on the publisher's thread, unless backups are kept).
  void PublishFiles(bool wait);
  // Waits for the files being put in place on the publisher's thread, and answers for them.
  void FinishPublishing();
  void Published(Publisher::Outcome outcome);
  // The directory holding `path`, opened once for a run of PUTs into it.
  Result<std::shared_ptr<UniqueFd>> ParentFor(const std::string& path, std::string* name);

  std::string out_;
  std::vector<std::string> roots_;
  bool hello_ = false;
  uint64_t caps_ = 0;  // Capabilities agreed in the hello.
  ZstdDecompressor zstd_;
  FrameReader inner_;      // Frames carried inside ZSTD frames.
  std::string zstd_out_;   // Decompression buffer, kept between ZSTD frames.
  std::optional<TargetDir> target_;
  SignatureCache signatures_;  // Of the large files this agent put in place.
  MetaPolicy policy_;
  bool xattrs_ = false;
  std::function<bool()> sink_;  // Every meta of the session carries extended attributes.
  Filter protect_;  // What deletions keep (FILTER).
  std::optional<Backups> backups_;  // What replacing and deleting keep (BACKUP).
  std::optional<Put> put_;
  std::vector<Publisher::Item> renames_;  // Finished files not yet handed to the publisher.
  // Parent directories of recent PUTs. Dropped by anything that can move or remove a
  // directory, so a cached descriptor never points at the wrong place; checked again against
  // the path (which someone on the standby may have changed) at the first use after new input.
  struct CachedParent {
    std::shared_ptr<UniqueFd> fd;
    dev_t dev;
    ino_t ino;
    uint64_t input;  // The read of input it was last checked in.
  };
  uint64_t input_ = 0;
  std::unordered_map<std::string, CachedParent> parents_;
  std::vector<DirTime> dir_times_;
  struct Link {
    uint64_t seq;
    std::string path;
    std::string target;
  };
  std::vector<Link> links_;  // LINKs of the batch, made at COMMIT.
  bool dirty_ = false;  // Something changed since the last COMMIT.

  std::string state_dir_;
  std::string tree_;  // The target, resolved: the name of its history.
  std::optional<StateDir> state_;
  std::optional<TreeHistory> history_;
  std::optional<Error> history_error_;
  std::optional<HistoryStamp> stamp_;  // Recorded at the next COMMIT.
  bool history_same_fs_ = false;       // The history file is on the target's file system.
  // Last: destroyed first, while the target it renames into is still open.
  Publisher publisher_;
};

// Serves one client on `in_fd`/`out_fd` until end of input or a fatal error, writing only in
// or beneath `roots` when there are any (`syncd --server --root DIR`). Returns the process exit
// status.
// `state_dir` is where the node's history is kept (empty: none).
int RunAgent(int in_fd, int out_fd, std::vector<std::string> roots = {}, std::string state_dir = {});

}  // namespace syncd::transport
