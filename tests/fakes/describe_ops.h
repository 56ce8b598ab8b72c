// Batches as short lines for test expectations: "put a.txt", "mkdir d", "rename a->b", ...
#pragma once

#include <string>
#include <vector>

#include "syncd/change.h"

namespace syncd::testing {

inline std::vector<std::string> DescribeOps(const ChangeBatch& b, bool with_metadata = true) {
  std::vector<std::string> out;
  for (const Op& op : b.ops) {
    if (op.kind == OpKind::kSetMeta && !with_metadata) continue;
    const char* verb = op.kind == OpKind::kPut       ? "put"
                       : op.kind == OpKind::kMkdir   ? "mkdir"
                       : op.kind == OpKind::kSymlink ? "link"
                       : op.kind == OpKind::kDelete  ? "delete"
                       : op.kind == OpKind::kRename  ? "rename"
                                                     : "meta";
    out.push_back(std::string(verb) + " " + (op.kind == OpKind::kRename ? op.from + "->" : "") +
                  op.entry.path);
  }
  return out;
}

}  // namespace syncd::testing
