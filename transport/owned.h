// Owners for the C libraries' state objects (xxhash, zstd): each is freed by its library's
// own function when its owner goes, on every path out of the scope.
#pragma once

#include <xxhash.h>
#include <zstd.h>

#include <memory>

namespace syncd::transport {

template <auto Free>
struct FreeWith {
  template <typename T>
  void operator()(T* p) const {
    if (p) Free(p);
  }
};

using XxhState = std::unique_ptr<XXH3_state_t, FreeWith<XXH3_freeState>>;
using ZstdCompressor = std::unique_ptr<ZSTD_CCtx, FreeWith<ZSTD_freeCCtx>>;
using ZstdDecompressor = std::unique_ptr<ZSTD_DCtx, FreeWith<ZSTD_freeDCtx>>;

// A fresh xxh3-128 state, ready for updates.
inline XxhState NewXxhState() {
  XxhState state(XXH3_createState());
  XXH3_128bits_reset(state.get());
  return state;
}

}  // namespace syncd::transport
