// ChmodRules applies rsync's --chmod rules (lsyncd's `rsync.chmod`) to a source entry's
// permission bits before the planner compares them with the standby's or sends them.
//
// A spec is a comma-separated list of clauses, applied in order:
//   [D|F] who* op perm*     who: u g o a; op: + - =; perm: r w x X s t, or one of u g o
//                           (copy that class's bits from the mode as it stands)
//   [D|F] octal             up to 07777: the permission bits become exactly this
// `D` limits a clause to directories, `F` to everything else. Without `who`, the clause acts on
// all three classes with the bits masked by the umask of the active node's syncd (rsync uses
// its own umask). `X` is execute only for a directory or an entry that had an execute bit
// before any clause ran. `s` with `u`/`g`/`a` is set-user-id/set-group-id, alone set-user-id;
// `t` is sticky. Symbolic links are never changed (rsync does not either).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "syncd/error.h"

namespace syncd {

class ChmodRules {
 public:
  ChmodRules() = default;
  // Parses one --chmod value, with `umask` for clauses without `who`. Fails naming the value.
  static Result<ChmodRules> Parse(std::string_view spec, uint32_t umask);
  // All of `specs`, in order (rsync takes --chmod more than once).
  static Result<ChmodRules> Parse(const std::vector<std::string>& specs, uint32_t umask);

  // The permission bits (07777) of an entry with `mode`, a directory or not, after the rules.
  uint32_t Apply(uint32_t mode, bool is_dir) const;
  bool empty() const { return clauses_.empty(); }

 private:
  enum class Op : uint8_t { kAdd, kRemove, kAssign, kOctal };
  struct Clause {
    bool dirs_only = false;
    bool files_only = false;
    Op op = Op::kAdd;
    uint32_t classes = 0;     // 0100 user, 0010 group, 0001 other: where the bits go.
    bool who_given = false;   // false: all classes, masked by the umask.
    uint32_t perms = 0;       // rwx as 4/2/1, or the octal value for kOctal.
    bool x_if_executable = false;  // X
    uint32_t special = 0;     // set-id and sticky bits named by `s` and `t`.
    uint32_t special_of_who = 0;  // The set-id bits `who` stands for (u: 04000, g: 02000).
    uint32_t copy_from = 0;   // 0100, 0010 or 0001 when the clause copies a class's bits.
  };
  uint32_t ApplyClause(const Clause& c, uint32_t mode, bool had_x, bool is_dir) const;

  std::vector<Clause> clauses_;
  uint32_t umask_ = 022;
};

// The process's file mode creation mask, read without changing it.
uint32_t CurrentUmask();

}  // namespace syncd
