// The scans of a whole tree (ScanTree, ScanTreeParallel; declared in file_system.h): a
// depth-first walk that lists what the filter keeps, on one thread or shared out over several.
#include <algorithm>
#include <atomic>
#include <climits>
#include <thread>
#include <utility>

#include "syncd/file_system.h"
#include "syncd/large_array.h"
#include "syncd/log.h"

namespace syncd {

namespace {

// One depth-first walk of ScanTree's: from the directories on `stack`, into `out`.
class TreeWalk {
 public:
  TreeWalk(FileSystem& fs, const std::string& root, const Filter& filter, bool one_file_system,
           uint64_t root_dev)
      : fs_(fs), root_(root), filter_(filter), one_file_system_(one_file_system), root_dev_(root_dev) {}

  // Enters `dir` (reached through `chain`, the directories above it, root first) and lists
  // everything beneath it into `out`.
  Result<void> Walk(const std::string& dir, const std::vector<std::pair<uint64_t, uint64_t>>& chain,
                    Listing& out, const std::atomic<bool>* stop = nullptr) {
    entered_.clear();
    for (const auto& [dev, ino] : chain)
      entered_.push_back({dev, ino, entered_.empty() ? kNoParent : entered_.size() - 1});
    std::vector<std::pair<std::string, size_t>> stack{{dir, entered_.size() - 1}};
    while (!stack.empty()) {
      if (stop && stop->load(std::memory_order_relaxed)) return {};
      auto [at, node] = std::move(stack.back());
      stack.pop_back();
      auto entries = fs_.ListDir(root_, at);
      if (!entries) {
        if (entries.error().code == ENOENT || entries.error().code == ENOTDIR) continue;
        if (entries.error().code == ENAMETOOLONG) {
          TooLong(at);
          continue;
        }
        return std::unexpected(entries.error());
      }
      for (auto& entry : *entries) {
        if (!entry) {
          if (entry.error().code == ENAMETOOLONG) {
            TooLong(at);
            continue;
          }
          return std::unexpected(entry.error());
        }
        const std::string& rel = entry->path;
        if (filter_.Excluded(rel, entry->type == FileType::kDir)) continue;
        if (entry->type == FileType::kDir && !(one_file_system_ && entry->dev != root_dev_) &&
            !Loops(*entry, node)) {
          entered_.push_back({entry->dev, entry->ino, node});
          stack.emplace_back(rel, entered_.size() - 1);
        }
        if (out.size() == out.capacity())
          ReserveLarge(out, out.size() + std::max<size_t>(out.size() / 4, 4096));
        out.push_back(std::move(*entry));
      }
    }
    return {};
  }

  uint64_t skipped() const { return skipped_; }
  const std::string& first_skipped() const { return first_skipped_; }

 private:
  static constexpr size_t kNoParent = static_cast<size_t>(-1);
  // Every directory entered, with the one it was entered from: a followed symlink that leads
  // back to a directory above it is listed, not entered again.
  struct Entered {
    uint64_t dev, ino;
    size_t parent;
  };
  bool Loops(const Entry& dir, size_t from) const {
    for (size_t i = from; i != kNoParent && dir.ino != 0; i = entered_[i].parent)
      if (entered_[i].dev == dir.dev && entered_[i].ino == dir.ino) return true;
    return false;
  }
  // Paths longer than the system takes (PATH_MAX) cannot be read or sent: said once per
  // scan, and the rest of the tree goes on.
  void TooLong(const std::string& dir) {
    if (skipped_++ == 0) first_skipped_ = dir;
  }

  FileSystem& fs_;
  const std::string& root_;
  const Filter& filter_;
  bool one_file_system_;
  uint64_t root_dev_;
  std::vector<Entered> entered_;
  uint64_t skipped_ = 0;
  std::string first_skipped_;
};

void SayTooLong(const std::string& root, uint64_t skipped, const std::string& first) {
  if (skipped > 0)
    LogError("{}: {} entries beneath {} have paths longer than the system allows ({} bytes); "
             "they are not replicated", root, skipped, JoinPath(root, first), PATH_MAX);
}

}  // namespace

Result<Listing> ScanTree(FileSystem& fs, const std::string& root, const Filter& filter,
                         bool one_file_system, size_t expect) {
  Listing out;
  ReserveLarge(out, expect);
  auto top = fs.Stat(root, "");
  if (!top) return std::unexpected(top.error());
  if (top->type != FileType::kDir) return Fail(root + ": not a directory", ENOTDIR);
  TreeWalk walk(fs, root, filter, one_file_system, top->dev);
  std::vector<std::pair<uint64_t, uint64_t>> chain{{top->dev, top->ino}};
  out.push_back(std::move(*top));
  SYNCD_TRY(walk.Walk("", chain, out));
  SayTooLong(root, walk.skipped(), walk.first_skipped());
  return out;
}

Result<Listing> ScanTreeParallel(const std::function<std::unique_ptr<FileSystem>()>& make_fs,
                                 const std::string& root, const Filter& filter,
                                 bool one_file_system, size_t expect, unsigned threads) {
  std::unique_ptr<FileSystem> fs = make_fs();
  auto top = fs->Stat(root, "");
  if (!top) return std::unexpected(top.error());
  if (top->type != FileType::kDir) return Fail(root + ": not a directory", ENOTDIR);
  // The root's own entries first, as ScanTree lists them, without entering its directories.
  uint64_t skipped = 0;  // Paths too long, the first of them beneath `first_skipped`.
  std::string first_skipped;
  auto entries = fs->ListDir(root, "");
  if (!entries) {
    int code = entries.error().code;
    if (code != ENOENT && code != ENOTDIR && code != ENAMETOOLONG) return std::unexpected(entries.error());
    if (code == ENAMETOOLONG) ++skipped;
    entries = std::vector<Result<Entry>>{};  // Gone meanwhile: the root alone, as ScanTree.
  }
  const uint64_t root_dev = top->dev;
  const std::vector<std::pair<uint64_t, uint64_t>> base_chain{{top->dev, top->ino}};
  Listing out;
  ReserveLarge(out, expect);
  out.push_back(std::move(*top));
  std::vector<size_t> subtrees;  // Indices in `out` of the directories to enter.
  for (auto& entry : *entries) {
    if (!entry) {
      if (entry.error().code != ENAMETOOLONG) return std::unexpected(entry.error());
      ++skipped;
      continue;
    }
    if (filter.Excluded(entry->path, entry->type == FileType::kDir)) continue;
    // A directory that is the root again (a followed symlink to it) is listed, not entered.
    bool loops = entry->ino != 0 && entry->dev == base_chain[0].first && entry->ino == base_chain[0].second;
    if (entry->type == FileType::kDir && !(one_file_system && entry->dev != root_dev) && !loops)
      subtrees.push_back(out.size());
    out.push_back(std::move(*entry));
  }
  // Each thread takes the next whole subtree, until none is left, into a listing of its own.
  struct Part {
    Listing out;
    Error error;
    bool failed = false;
    uint64_t skipped = 0;
    std::string first_skipped;
  };
  threads = std::max(1u, std::min<unsigned>(threads, static_cast<unsigned>(subtrees.size())));
  std::vector<Part> parts(threads);
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false};
  auto work = [&](unsigned t, FileSystem& own) {
    Part& part = parts[t];
    ReserveLarge(part.out, expect / threads + expect / 16);
    TreeWalk walk(own, root, filter, one_file_system, root_dev);
    for (size_t i; !stop.load() && (i = next.fetch_add(1)) < subtrees.size();) {
      const Entry& dir = out[subtrees[i]];
      auto chain = base_chain;
      chain.emplace_back(dir.dev, dir.ino);
      if (auto r = walk.Walk(dir.path, chain, part.out, &stop); !r) {
        part.error = r.error();
        part.failed = true;
        stop = true;
      }
    }
    part.skipped = walk.skipped();
    part.first_skipped = walk.first_skipped();
  };
  std::vector<std::thread> helpers;
  std::vector<std::unique_ptr<FileSystem>> helper_fs;
  for (unsigned t = 1; t < threads; ++t) {
    helper_fs.push_back(make_fs());
    helpers.emplace_back(work, t, std::ref(*helper_fs.back()));
  }
  work(0, *fs);
  for (std::thread& h : helpers) h.join();
  size_t total = out.size();
  for (Part& part : parts) {
    if (part.failed) return std::unexpected(part.error);
    total += part.out.size();
    if (part.skipped > 0 && skipped == 0) first_skipped = part.first_skipped;
    skipped += part.skipped;
  }
  ReserveLarge(out, total);
  for (Part& part : parts) {
    for (Entry& e : part.out) out.push_back(std::move(e));
    Listing().swap(part.out);
  }
  SayTooLong(root, skipped, first_skipped);
  return out;
}

}  // namespace syncd
