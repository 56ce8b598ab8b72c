#include "lua/rsync_option_table.h"

#include <string>

namespace syncd::lua {
namespace {

constexpr std::string_view kNotYet = "not carried by syncd yet";

// rsync 3.2's options, by long name. What is not here is refused as unknown.
const Spec kSpecs[] = {
    // What lands on the standby.
    {"archive", 'a', false, How::kCode},
    {"recursive", 'r', false, How::kFlag, &RsyncOptions::recursive},
    {"links", 'l', false, How::kFlag, &RsyncOptions::links},
    {"perms", 'p', false, How::kFlag, &RsyncOptions::perms},
    {"times", 't', false, How::kFlag, &RsyncOptions::times},
    {"owner", 'o', false, How::kFlag, &RsyncOptions::owner},
    {"group", 'g', false, How::kFlag, &RsyncOptions::group},
    {"devices", 0, false, How::kFlag, &RsyncOptions::devices},
    {"specials", 0, false, How::kFlag, &RsyncOptions::specials},
    {"hard-links", 'H', false, How::kFlag, &RsyncOptions::hard_links},
    {"prune-empty-dirs", 'm', false, How::kFlag, &RsyncOptions::prune_empty_dirs},
    {"delete-excluded", 0, false, How::kFlag, &RsyncOptions::delete_excluded},
    {"numeric-ids", 0, false, How::kFlag, &RsyncOptions::numeric_ids},
    {"update", 'u', false, How::kFlag, &RsyncOptions::update},
    {"existing", 0, false, How::kFlag, &RsyncOptions::existing},
    {"ignore-non-existing", 0, false, How::kFlag, &RsyncOptions::existing},
    {"ignore-existing", 0, false, How::kFlag, &RsyncOptions::ignore_existing},
    {"safe-links", 0, false, How::kFlag, &RsyncOptions::safe_links},
    {"copy-links", 'L', false, How::kFlag, &RsyncOptions::copy_links},
    {"xattrs", 'X', false, How::kFlag, &RsyncOptions::xattrs},
    {"omit-dir-times", 'O', false, How::kFlag, &RsyncOptions::omit_dir_times},
    {"omit-link-times", 'J', false, How::kFlag, &RsyncOptions::omit_link_times},
    {"backup", 'b', false, How::kFlag, &RsyncOptions::backup},
    {"backup-dir", 0, true, How::kCode},
    {"suffix", 0, true, How::kCode},
    {"acls", 'A', false, How::kFlag, &RsyncOptions::acls},
    {"copy-unsafe-links", 0, false, How::kFlag, &RsyncOptions::copy_unsafe_links},
    {"size-only", 0, false, How::kFlag, &RsyncOptions::size_only},
    {"ignore-times", 'I', false, How::kFlag, &RsyncOptions::ignore_times},
    {"checksum", 'c', false, How::kFlag, &RsyncOptions::checksum},
    {"whole-file", 'W', false, How::kFlag, &RsyncOptions::whole_file},
    {"compress", 'z', false, How::kFlag, &RsyncOptions::compress},
    {"chmod", 0, true, How::kCode},
    {"chown", 0, true, How::kCode},
    {"usermap", 0, true, How::kCode},
    {"groupmap", 0, true, How::kCode},
    {"max-size", 0, true, How::kCode},
    {"min-size", 0, true, How::kCode},
    {"exclude", 0, true, How::kCode},
    {"include", 0, true, How::kCode},
    {"filter", 'f', true, How::kCode},
    {"exclude-from", 0, true, How::kCode},
    {"include-from", 0, true, How::kCode},
    {"rsh", 'e', true, How::kCode},
    {"rsync-path", 0, true, How::kCode},
    // Output only.
    {"verbose", 'v', false, How::kOutput},
    {"quiet", 'q', false, How::kOutput},
    {"progress", 0, false, How::kOutput},
    {"stats", 0, false, How::kOutput},
    {"human-readable", 'h', false, How::kOutput},
    {"itemize-changes", 'i', false, How::kOutput},
    {"info", 0, true, How::kOutput},
    {"debug", 0, true, How::kOutput},
    {"out-format", 0, true, How::kOutput},
    {"log-file", 0, true, How::kOutput},
    {"log-file-format", 0, true, How::kOutput},
    {"8-bit-output", '8', false, How::kOutput},
    {"no-motd", 0, false, How::kOutput},
    {"msgs2stderr", 0, false, How::kOutput},
    {"stderr", 0, true, How::kOutput},
    {"outbuf", 0, true, How::kOutput},
    // The same standby, reached syncd's way.
    {"protect-args", 's', false, How::kNothing},
    {"secluded-args", 's', false, How::kNothing},
    {"partial", 0, false, How::kDifferent, nullptr,
     "an interrupted file is sent again; the standby never shows a partial file"},
    {"partial-dir", 0, true, How::kDifferent, nullptr,
     "an interrupted file is sent again; the standby never shows a partial file"},
    {"inplace", 0, false, How::kDifferent, nullptr,
     "files are written under a temporary name and renamed into place, so a reader on the "
     "standby never sees half a file"},
    {"temp-dir", 'T', true, How::kDifferent, nullptr,
     "temporary files are made beside their final name, for the atomic rename"},
    {"delay-updates", 0, false, How::kDifferent, nullptr,
     "each batch is made durable and renamed into place as a whole in any case"},
    {"sparse", 'S', false, How::kDifferent, nullptr,
     "files are written whole: holes in sparse files take space on the standby"},
    {"preallocate", 0, false, How::kDifferent, nullptr, "no effect on what the standby holds"},
    {"fuzzy", 'y', false, How::kDifferent, nullptr,
     "deltas use the standby's old copy of the same name only"},
    {"delete", 0, false, How::kDifferent, nullptr, "deletion follows the sync's `delete` key"},
    {"del", 0, false, How::kDifferent, nullptr, "deletion follows the sync's `delete` key"},
    {"delete-before", 0, false, How::kDifferent, nullptr,
     "deletions go out with each batch; the order is syncd's"},
    {"delete-during", 0, false, How::kDifferent, nullptr,
     "deletions go out with each batch; the order is syncd's"},
    {"delete-delay", 0, false, How::kDifferent, nullptr,
     "deletions go out with each batch; the order is syncd's"},
    {"delete-after", 0, false, How::kDifferent, nullptr,
     "deletions go out with each batch; the order is syncd's"},
    {"force", 0, false, How::kDifferent, nullptr,
     "a directory replaced by a file is deleted (keeping what the filter protects) in any case"},
    {"ignore-errors", 0, false, How::kDifferent, nullptr,
     "a deletion that fails is retried; others go on"},
    {"timeout", 0, true, How::kDifferent, nullptr,
     "syncd's SSH keepalive (ServerAliveInterval) detects a dead standby"},
    {"contimeout", 0, true, How::kDifferent, nullptr, "ssh's ConnectTimeout applies"},
    {"ipv4", '4', false, How::kDifferent, nullptr, "the standby's address is resolved as ssh would"},
    {"ipv6", '6', false, How::kDifferent, nullptr, "the standby's address is resolved as ssh would"},
    {"bwlimit", 0, true, How::kCode},
    {"compress-level", 0, true, How::kDifferent, nullptr, "syncd compresses with zstd's own level"},
    {"compress-choice", 0, true, How::kDifferent, nullptr, "syncd compresses with zstd"},
    {"zc", 0, true, How::kDifferent, nullptr, "syncd compresses with zstd"},
    {"skip-compress", 0, true, How::kDifferent, nullptr, "syncd compresses every file alike"},
    {"checksum-choice", 0, true, How::kDifferent, nullptr, "syncd's checksums are its own"},
    {"cc", 0, true, How::kDifferent, nullptr, "syncd's checksums are its own"},
    {"checksum-seed", 0, true, How::kDifferent, nullptr, "syncd's checksums are its own"},
    {"block-size", 'B', true, How::kDifferent, nullptr, "syncd chooses the delta block size"},
    {"blocking-io", 0, false, How::kDifferent, nullptr, "no effect on what the standby holds"},
    {"open-noatime", 0, false, How::kDifferent, nullptr, "no effect on what the standby holds"},
    {"no-implied-dirs", 0, false, How::kDifferent, nullptr, "only has effect with --relative"},
    {"mkpath", 0, false, How::kDifferent, nullptr, "the agent creates the target directory"},
    {"password-file", 0, true, How::kDifferent, nullptr,
     "for rsync daemons only; syncd authenticates with SSH keys"},
    {"port", 0, true, How::kDifferent, nullptr, "for rsync daemons only"},
    {"super", 0, false, How::kDifferent, nullptr,
     "the agent keeps owners when it runs as root, as rsync's receiver does"},
    {"modify-window", '@', true, How::kDifferent, nullptr,
     "times are compared to the nanosecond, as rsync does by default"},
    // Refused.
    {"dry-run", 'n', false, How::kRefused, nullptr,
     "lsyncd with it changes nothing on the standby, and syncd has no dry run (syncd --check "
     "shows what a config does)"},
    {"list-only", 0, false, How::kRefused, nullptr, "syncd always transfers"},
    {"files-from", 0, true, How::kRefused, nullptr,
     "syncd replicates the whole source tree; use filter rules to choose what is sent"},
    {"from0", '0', false, How::kRefused, nullptr, "only has effect with --files-from"},
    {"remove-source-files", 0, false, How::kRefused, nullptr,
     "syncd never deletes on the active node"},
    {"relative", 'R', false, How::kRefused, nullptr,
     "syncd does not rebuild the source's path beneath the target"},
    {"dirs", 'd', false, How::kRefused, nullptr, "syncd always replicates the whole tree"},
    {"fake-super", 0, false, How::kRefused, nullptr, kNotYet},
    {"executability", 'E', false, How::kRefused, nullptr, kNotYet},
    {"copy-dirlinks", 'k', false, How::kRefused, nullptr, kNotYet},
    {"keep-dirlinks", 'K', false, How::kRefused, nullptr, kNotYet},
    {"munge-links", 0, false, How::kRefused, nullptr, kNotYet},
    {"one-file-system", 'x', false, How::kFlag, &RsyncOptions::one_file_system},
    {"cvs-exclude", 'C', false, How::kRefused, nullptr,
     "it reads .cvsignore files in every directory, a merge rule syncd does not carry"},
    {"append", 0, false, How::kRefused, nullptr,
     "it leaves a standby file whose start differs from the source's as it is"},
    {"append-verify", 0, false, How::kRefused, nullptr,
     "it skips files that are longer on the standby"},
    {"max-delete", 0, true, How::kRefused, nullptr, kNotYet},
    {"link-dest", 0, true, How::kRefused, nullptr, kNotYet},
    {"copy-dest", 0, true, How::kRefused, nullptr, kNotYet},
    {"compare-dest", 0, true, How::kRefused, nullptr, kNotYet},
    {"iconv", 0, true, How::kRefused, nullptr, "syncd does not convert file names"},
    {"copy-devices", 0, false, How::kRefused, nullptr, kNotYet},
    {"write-devices", 0, false, How::kRefused, nullptr, kNotYet},
    {"write-batch", 0, true, How::kRefused, nullptr, "syncd writes no batch files"},
    {"only-write-batch", 0, true, How::kRefused, nullptr, "syncd writes no batch files"},
    {"read-batch", 0, true, How::kRefused, nullptr, "syncd reads no batch files"},
    {"remote-option", 'M', true, How::kRefused, nullptr, "the standby runs syncd's agent"},
    {"daemon", 0, false, How::kRefused, nullptr, "not an option for a client"},
    {"server", 0, false, How::kRefused, nullptr, "not an option for a client"},
    {"sender", 0, false, How::kRefused, nullptr, "not an option for a client"},
    {"ignore-missing-args", 0, false, How::kRefused, nullptr, "only has effect with --files-from"},
    {"delete-missing-args", 0, false, How::kRefused, nullptr, "only has effect with --files-from"},
};

}  // namespace

const Spec* ByName(std::string_view name) {
  for (const Spec& s : kSpecs)
    if (s.name == name) return &s;
  return nullptr;
}

const Spec* ByKey(std::string_view key) {
  std::string name(key);
  for (char& c : name)
    if (c == '_') c = '-';
  return ByName(name);
}

const Spec* ByLetter(char c) {
  for (const Spec& s : kSpecs)
    if (s.letter == c) return &s;
  return nullptr;
}

}  // namespace syncd::lua
