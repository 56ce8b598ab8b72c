// Error values for expected failures. Messages name the call and the object, e.g.
// "open /srv/a.txt: Permission denied".
#pragma once

#include <cerrno>
#include <cstring>
#include <expected>
#include <string>
#include <utility>

namespace syncd {

struct Error {
  std::string message;
  int code = 0;         // errno when the failure came from the OS, else 0.
  bool fatal = false;   // Retrying will not help (bad config, untrusted host key, refused key).

  static Error FromErrno(std::string what, int err = errno) {
    return Error{std::move(what) + ": " + std::strerror(err), err};
  }
};

template <typename T>
using Result = std::expected<T, Error>;

inline std::unexpected<Error> Fail(std::string message, int code = 0, bool fatal = false) {
  return std::unexpected(Error{std::move(message), code, fatal});
}
inline std::unexpected<Error> FailErrno(std::string what, int err = errno) {
  return std::unexpected(Error::FromErrno(std::move(what), err));
}

}  // namespace syncd

// Evaluates a Result expression; on error returns it from the enclosing function.
#define SYNCD_TRY(expr)                                         \
  do {                                                          \
    auto&& syncd_try_result_ = (expr);                          \
    if (!syncd_try_result_) return std::unexpected(syncd_try_result_.error()); \
  } while (0)

// Broken invariant: prints and aborts. Not for expected failures.
#define SYNCD_CHECK(cond)                                                       \
  do {                                                                          \
    if (!(cond)) ::syncd::CheckFailed(#cond, __FILE__, __LINE__);               \
  } while (0)

namespace syncd {
[[noreturn]] void CheckFailed(const char* cond, const char* file, int line);
}
