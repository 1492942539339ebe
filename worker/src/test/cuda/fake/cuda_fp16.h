// Host stand-in for <cuda_fp16.h> in the kernel emulation (emulation.h): only what kernels.cu uses.
#pragma once
#include <cstring>

struct __half {
  unsigned short bits;
};

inline __half __ushort_as_half(unsigned short v) { return __half{v}; }

inline float __half2float(__half h) {
  _Float16 f;
  std::memcpy(&f, &h.bits, 2);
  return static_cast<float>(f);
}
