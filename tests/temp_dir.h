// TempDir: a directory under /tmp for one test, removed with everything in it when the test is
// done (kept when SYNCD_KEEP_TMP is set, to look at after a failure). Shared by every test.
#pragma once

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace syncd::testing {

class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    std::string tmpl = "/tmp/syncd-" + tag + ".XXXXXX";
    if (const char* made = ::mkdtemp(tmpl.data())) path_ = made;
  }
  ~TempDir() {
    if (path_.empty() || std::getenv("SYNCD_KEEP_TMP")) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

}  // namespace syncd::testing
