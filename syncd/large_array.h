// Room for a whole tree's worth of entries at once (a scan, a startup comparison's operations),
// backed by transparent huge pages where the kernel leaves that to the program
// (/sys/kernel/mm/transparent_hugepage/enabled = madvise, Debian's default). On a virtual
// machine a page fault can cost 20 us: an 80 MB array filled page by page took 0.4 s, as long
// as everything else the comparison does with it; with 2 MiB pages, 0.02 s.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace syncd {

// Advises the whole 2 MiB blocks of [data, data + bytes) onto huge pages. A hint: ignored where
// the kernel has none to give.
inline void AdviseHugePages(const void* data, size_t bytes) {
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + kHuge - 1) & ~(kHuge - 1);
  uintptr_t end = (reinterpret_cast<uintptr_t>(data) + bytes) & ~(kHuge - 1);
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
}

// v.reserve(n), the new room advised onto huge pages before it is written.
template <class T>
void ReserveLarge(std::vector<T>& v, size_t n) {
  if (n <= v.capacity()) return;
  v.reserve(n);
  AdviseHugePages(v.data(), v.capacity() * sizeof(T));
}

}  // namespace syncd
