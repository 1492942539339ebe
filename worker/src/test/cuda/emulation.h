// Runs CUDA C kernels on the host, one std::thread per CUDA thread, so that kernels.cu can be
// checked on a machine without a GPU. Blocks run one after another; within a block the threads run
// concurrently, __syncthreads() is a barrier over the block and __shfl_xor_sync a barrier-fenced
// exchange within each warp of 32. __shared__ variables become statics (one block at a time, so
// one copy is enough); dynamic shared memory is a buffer filled with NaN before every block, so a
// read before a write shows up in the results.
//
// What this cannot check: the PTX, the driver, launch limits, the GPU memory model beyond
// barriers, speed.
#pragma once
#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <thread>
#include <vector>

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};

inline thread_local dim3 threadIdx;
inline thread_local dim3 blockIdx;
inline dim3 blockDim;
inline dim3 gridDim;
inline std::barrier<>* g_block_barrier = nullptr;
inline std::vector<std::unique_ptr<std::barrier<>>> g_warp_barriers;
inline float g_shuffle[1024];
inline std::vector<float> g_dynamic_smem;

#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __shared__ static

// CUDA's integer min/max (the kernels use them on int only) and float4.
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
struct float4 {
  float x, y, z, w;
};

inline void __syncthreads() { g_block_barrier->arrive_and_wait(); }

inline float __shfl_xor_sync(unsigned, float v, int laneMask) {
  unsigned t = threadIdx.x;
  unsigned w = t / 32;
  g_shuffle[t] = v;
  g_warp_barriers[w]->arrive_and_wait();
  float r = g_shuffle[t ^ static_cast<unsigned>(laneMask)];
  g_warp_barriers[w]->arrive_and_wait();
  return r;
}

inline unsigned int __float_as_uint(float f) {
  unsigned int u;
  std::memcpy(&u, &f, 4);
  return u;
}

inline float __uint_as_float(unsigned int u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Launches kernel() over grid x block (1-D blocks whose size is a multiple of 32). The block's
// threads are made once per launch and walk the blocks together; a barrier between blocks refills
// the dynamic shared memory with NaN.
template <class Kernel>
void launch(dim3 grid, unsigned block, size_t smemBytes, Kernel kernel) {
  gridDim = grid;
  blockDim = dim3{block, 1, 1};
  auto refill = [smemBytes]() noexcept {
    g_dynamic_smem.assign(smemBytes / sizeof(float) + 1, std::numeric_limits<float>::quiet_NaN());
  };
  refill();
  std::barrier<> bar(block);
  std::barrier between(block, refill);
  g_block_barrier = &bar;
  g_warp_barriers.clear();
  for (unsigned w = 0; w < block / 32; w++) {
    g_warp_barriers.push_back(std::make_unique<std::barrier<>>(32));
  }
  std::vector<std::thread> threads;
  threads.reserve(block);
  for (unsigned t = 0; t < block; t++) {
    threads.emplace_back([=, &between] {
      threadIdx = dim3{t, 0, 0};
      for (unsigned bz = 0; bz < grid.z; bz++) {
        for (unsigned by = 0; by < grid.y; by++) {
          for (unsigned bx = 0; bx < grid.x; bx++) {
            blockIdx = dim3{bx, by, bz};
            kernel();
            between.arrive_and_wait();
          }
        }
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
}
