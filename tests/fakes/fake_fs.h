// FakeFileSystem: an in-memory tree for engine tests. fs.File("a/b.txt", "hi"),
// fs.Dir("a"), fs.Link("l", "target"), fs.Remove("a").
#pragma once

#include <map>
#include <string>

#include "syncd/file_system.h"

namespace syncd::testing {

class FakeFileSystem : public FileSystem {
 public:
  explicit FakeFileSystem(std::string root = "/src") : root_(std::move(root)) { Dir(""); }

  Entry& File(const std::string& path, const std::string& content, uint32_t mode = 0644) {
    Entry& e = Put(path, FileType::kFile, mode);
    e.size = content.size();
    contents_[path] = content;
    return e;
  }
  Entry& Dir(const std::string& path, uint32_t mode = 0755) {
    return Put(path, FileType::kDir, mode);
  }
  Entry& Link(const std::string& path, const std::string& target) {
    Entry& e = Put(path, FileType::kSymlink, 0777);
    e.link_target = target;
    return e;
  }
  void Remove(const std::string& path) {
    for (auto it = entries_.begin(); it != entries_.end();)
      it = IsWithin(it->first, path) ? entries_.erase(it) : std::next(it);
  }
  Entry& at(const std::string& path) { return entries_.at(path); }
  const std::string& root() const { return root_; }

  Result<Entry> Stat(const std::string& root, const std::string& rel) override {
    ++stats;
    if (root != root_) return Fail("wrong root " + root, ENOENT);
    auto it = entries_.find(rel);
    if (it == entries_.end()) return Fail("lstat " + rel + ": No such file or directory", ENOENT);
    return it->second;
  }
  Result<ContentHash> Hash(const std::string& root, const std::string& rel) override {
    ++hashes_computed;
    auto it = contents_.find(rel);
    if (root != root_ || it == contents_.end()) return Fail("open " + rel, ENOENT);
    uint64_t h = std::hash<std::string>()(it->second);
    return ContentHash{h, ~h};
  }
  int hashes_computed = 0;
  int stats = 0;  // Stat() calls.

  Result<std::vector<std::string>> ReadDir(const std::string& dir) override {
    std::string rel = dir == root_ ? "" : dir.substr(root_.size() + 1);
    auto it = entries_.find(rel);
    if (it == entries_.end()) return Fail("opendir " + dir, ENOENT);
    std::vector<std::string> names;
    for (const auto& [path, e] : entries_) {
      if (path.empty() || ParentOf(path) != rel) continue;
      names.push_back(path.substr(rel.empty() ? 0 : rel.size() + 1));
    }
    return names;
  }

 private:
  Entry& Put(const std::string& path, FileType type, uint32_t mode) {
    Entry& e = entries_[path];
    e = Entry{};
    e.path = path;
    e.type = type;
    e.meta.mode = mode;
    e.meta.user = "root";
    e.meta.group = "root";
    e.meta.mtime_sec = 1700000000;
    e.ino = ++next_ino_;
    return e;
  }
  std::string root_;
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::string> contents_;
  uint64_t next_ino_ = 1;
};

}  // namespace syncd::testing
