// rsync's --backup on the agent: what a session replaces or deletes is kept under another
// name, beside it (NAME~) or beneath a backup directory (--backup-dir), instead of vanishing.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "syncd/error.h"
#include "syncd/unique_fd.h"
#include "transport/target_dir.h"

namespace syncd::transport {

struct BackupSettings {
  std::string suffix;  // Appended to a kept entry's name.
  std::string dir;     // Empty: beside the entry. Relative: to the target directory.
  bool operator==(const BackupSettings&) const = default;
};

class Backups {
 public:
  // Checks the settings as rsync does (a suffix holds no '/', and is not empty without a
  // directory) and opens (creating) the backup directory, which must lie within `roots`
  // when the agent has any.
  static Result<Backups> Open(const BackupSettings& settings, const TargetDir& target,
                              const std::vector<std::string>& roots);

  // Whether deleting `name` keeps it: beside their files, backups are not backed up again.
  bool KeepsOnDelete(std::string_view name) const;
  // True when backups stay beside their files (in the directory being deleted).
  bool Beside() const { return !root_.has_value(); }
  const std::string& suffix() const { return settings_.suffix; }

  // Moves the entry `name` of `dir_fd` (not a directory; `rel` is its path beneath the
  // target) to its backup, replacing an older backup. A missing name is not an error.
  Result<void> Keep(int dir_fd, const std::string& name, const std::string& rel) const;

 private:
  Backups(BackupSettings settings, const TargetDir& target) : settings_(std::move(settings)), target_(&target) {}
  // The directory in the backup tree that holds `rel`'s backup, created (levels take the
  // mode and owner of the target's directories at the same place).
  Result<UniqueFd> BackupParent(const std::string& rel) const;

  BackupSettings settings_;
  const TargetDir* target_;
  std::optional<TargetDir> root_;  // With a backup directory.
};

}  // namespace syncd::transport
