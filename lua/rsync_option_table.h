// The rsync options syncd knows, by long name: what each does to the standby and how syncd
// carries it (a flag of RsyncOptions, code in the argument reader, nothing, or a refusal with
// the reason). Internal to the configuration loader.
#pragma once

#include <cstdint>
#include <string_view>

#include "syncd/config.h"

namespace syncd::lua {

enum class How : uint8_t {
  kFlag,       // Sets (or, as --no-NAME, clears) a bool of RsyncOptions.
  kCode,       // Handled by name in ApplyOne.
  kOutput,     // Changes what rsync prints, nothing on the standby.
  kNothing,    // How rsync's own command line is passed: nothing to note.
  kDifferent,  // Accepted; syncd reaches the same standby its own way (the note says how).
  kRefused,    // The configuration is refused, with the reason.
};

struct Spec {
  std::string_view name;  // rsync's long name.
  char letter;            // Its short flag, or 0.
  bool takes_value;
  How how;
  bool RsyncOptions::*field = nullptr;
  std::string_view why = {};  // kDifferent and kRefused.
};

// The option of this long name, of this lsyncd rsync{} key ("hard_links" is --hard-links), of
// this short flag; null if syncd does not know it.
const Spec* ByName(std::string_view name);
const Spec* ByKey(std::string_view key);
const Spec* ByLetter(char c);

}  // namespace syncd::lua
