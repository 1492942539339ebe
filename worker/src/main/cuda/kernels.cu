// StarServe CUDA kernels: every operation of dev.starserve.backend.Backend for the CUDA backend
// (dev.starserve.backend.cuda.CudaBackend), compiled to PTX by build-ptx.sh and loaded with the
// driver API (cuModuleLoadData), so the driver JIT-compiles it for whatever GPU runs it.
//
// Conventions (the Backend contract):
//   - activations are float32, row-major [rows x cols]; a kernel touches rows 0..n-1 only;
//   - weights stay as the checkpoint stores them: DT_F32, DT_BF16 or DT_F16 (little-endian bits),
//     widened to float32 when read; every sum accumulates in float32;
//   - the paged K/V cache holds float32 or bf16 (round to nearest even, as Java's Bf16.round);
//     attention stores this step's K/V first and reads every K/V (its own too) from the cache.
//
// Correctness over speed: plain shared-memory tiles, no tensor cores yet.

#include <cuda_fp16.h>

// Storage dtype codes: the ordinal of dev.starserve.checkpoint.DType, checked by CudaBackend.
#define DT_F32 0
#define DT_BF16 1
#define DT_F16 2

// Activation codes: the ordinal of dev.starserve.model.Activation.
#define ACT_GELU_TANH 0
#define ACT_GELU_ERF 1
#define ACT_RELU 2

__device__ __forceinline__ float bf16_to_f32(unsigned short h) {
  return __uint_as_float(((unsigned int)h) << 16);
}

__device__ __forceinline__ float f16_to_f32(unsigned short h) {
  return __half2float(__ushort_as_half(h));
}

// float32 -> bf16 bits, round to nearest even; NaN stays a quiet NaN with its sign
// (bit-identical to dev.starserve.checkpoint.Bf16.round).
__device__ __forceinline__ unsigned short f32_to_bf16(float f) {
  unsigned int bits = __float_as_uint(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) {
    return (unsigned short)((bits >> 16) | 0x0040u);
  }
  unsigned int lsb = (bits >> 16) & 1u;
  return (unsigned short)((bits + 0x7fffu + lsb) >> 16);
}

// Element i of a weight stored as `dtype`, widened to float32.
__device__ __forceinline__ float load_any(const void* p, long long i, int dtype) {
  if (dtype == DT_F32) {
    return ((const float*)p)[i];
  }
  unsigned short h = ((const unsigned short*)p)[i];
  return dtype == DT_BF16 ? bf16_to_f32(h) : f16_to_f32(h);
}

// ---------------------------------------------------------------------------------------------
// embed: out[t] = wte[ids[t]] + wpe[positions[t]].   grid (n), block (256)
// ids and positions are checked on the host before launch.
extern "C" __global__ void embed(const int* __restrict__ ids, const int* __restrict__ positions,
                                 const void* __restrict__ wte, int wteType,
                                 const void* __restrict__ wpe, int wpeType, int d,
                                 float* __restrict__ out) {
  int t = blockIdx.x;
  long long te = (long long)ids[t] * d;
  long long pe = (long long)positions[t] * d;
  for (int c = threadIdx.x; c < d; c += blockDim.x) {
    out[(long long)t * d + c] = load_any(wte, te + c, wteType) + load_any(wpe, pe + c, wpeType);
  }
}

// ---------------------------------------------------------------------------------------------
// Block-wide sum of one float per thread; every thread gets the total. blockDim.x must be a
// multiple of 32 and at most 1024. `scratch` holds 32 floats.
__device__ float block_sum(float v, float* scratch) {
  for (int o = 16; o > 0; o >>= 1) {
    v += __shfl_xor_sync(0xffffffffu, v, o);
  }
  int warp = threadIdx.x >> 5;
  int lane = threadIdx.x & 31;
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) {
    scratch[warp] = v;
  }
  __syncthreads();
  int warps = blockDim.x >> 5;
  float s = lane < warps ? scratch[lane] : 0.0f;
  for (int o = 16; o > 0; o >>= 1) {
    s += __shfl_xor_sync(0xffffffffu, s, o);
  }
  return s;
}

// layer_norm: out[t] = (x[t] - mean) / sqrt(var + eps) * gamma + beta, two passes (mean, then the
// variance of the deviations) as the reference does.   grid (n), block (256)
extern "C" __global__ void layer_norm(const float* __restrict__ x, int d,
                                      const void* __restrict__ gamma, int gammaType,
                                      const void* __restrict__ beta, int betaType, float eps,
                                      float* __restrict__ out) {
  __shared__ float scratch[32];
  const float* row = x + (long long)blockIdx.x * d;
  float* o = out + (long long)blockIdx.x * d;
  float s = 0.0f;
  for (int c = threadIdx.x; c < d; c += blockDim.x) {
    s += row[c];
  }
  float mean = block_sum(s, scratch) / d;
  float v = 0.0f;
  for (int c = threadIdx.x; c < d; c += blockDim.x) {
    float dev = row[c] - mean;
    v += dev * dev;
  }
  float var = block_sum(v, scratch) / d;
  float inv = 1.0f / sqrtf(var + eps);  // IEEE sqrt and division, not the approximate rsqrtf
  for (int c = threadIdx.x; c < d; c += blockDim.x) {
    o[c] = (row[c] - mean) * inv * load_any(gamma, c, gammaType) + load_any(beta, c, betaType);
  }
}

// ---------------------------------------------------------------------------------------------
// linear: out[t][r] = sum_c x[t][c] * w[r][c] + bias[r] for t < n, r < outDim.
// x [n x in] float32, w [outDim x in] as stored, bias [outDim] as stored or null.
//
// Tiles: a block computes a 64 (tokens) x 64 (output features) tile of out, walking `in` in
// steps of 16. 256 threads as 16 x 16; thread (tx, ty) owns rows ty + 16i and columns tx + 16j,
// i, j < 4, so that neighbouring threads write neighbouring columns.
//   smem xs[16][64+1], ws[16][64+1]  (k-major; +1 keeps the transposing stores conflict-free)
// grid (ceil(outDim / 64), ceil(n / 64)), block (256)
#define LIN_BM 64
#define LIN_BN 64
#define LIN_BK 16

template <int DTYPE>
__device__ __forceinline__ float load_w(const void* w, long long i) {
  if (DTYPE == DT_F32) {
    return ((const float*)w)[i];
  } else if (DTYPE == DT_BF16) {
    return bf16_to_f32(((const unsigned short*)w)[i]);
  } else {
    return f16_to_f32(((const unsigned short*)w)[i]);
  }
}

template <int DTYPE>
__device__ void linear_tiled(const float* __restrict__ x, const void* __restrict__ w,
                             const void* __restrict__ bias, int biasType, int n, int in,
                             int outDim, float* __restrict__ out) {
  __shared__ float xs[LIN_BK][LIN_BM + 1];
  __shared__ float ws[LIN_BK][LIN_BN + 1];
  int tid = threadIdx.x;
  int tx = tid & 15;
  int ty = tid >> 4;
  int n0 = blockIdx.x * LIN_BN;  // first output feature of the tile
  int m0 = blockIdx.y * LIN_BM;  // first token of the tile
  float acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; i++) {
#pragma unroll
    for (int j = 0; j < 4; j++) {
      acc[i][j] = 0.0f;
    }
  }
  for (int k0 = 0; k0 < in; k0 += LIN_BK) {
    // 64 rows x 16 columns of each operand: 1024 elements, 4 per thread.
#pragma unroll
    for (int l = 0; l < 4; l++) {
      int e = tid + l * 256;
      int r = e / LIN_BK;
      int k = e % LIN_BK;
      int gk = k0 + k;
      int gm = m0 + r;
      int gn = n0 + r;
      xs[k][r] = (gm < n && gk < in) ? x[(long long)gm * in + gk] : 0.0f;
      ws[k][r] = (gn < outDim && gk < in) ? load_w<DTYPE>(w, (long long)gn * in + gk) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < LIN_BK; k++) {
      float a[4];
      float b[4];
#pragma unroll
      for (int i = 0; i < 4; i++) {
        a[i] = xs[k][ty + 16 * i];
        b[i] = ws[k][tx + 16 * i];
      }
#pragma unroll
      for (int i = 0; i < 4; i++) {
#pragma unroll
        for (int j = 0; j < 4; j++) {
          acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; i++) {
    int gm = m0 + ty + 16 * i;
    if (gm >= n) {
      continue;
    }
#pragma unroll
    for (int j = 0; j < 4; j++) {
      int gn = n0 + tx + 16 * j;
      if (gn < outDim) {
        float b = bias == nullptr ? 0.0f : load_any(bias, gn, biasType);
        out[(long long)gm * outDim + gn] = acc[i][j] + b;
      }
    }
  }
}

extern "C" __global__ void linear_f32(const float* __restrict__ x, const void* __restrict__ w,
                                      const void* __restrict__ bias, int biasType, int n, int in,
                                      int outDim, float* __restrict__ out) {
  linear_tiled<DT_F32>(x, w, bias, biasType, n, in, outDim, out);
}

extern "C" __global__ void linear_bf16(const float* __restrict__ x, const void* __restrict__ w,
                                       const void* __restrict__ bias, int biasType, int n, int in,
                                       int outDim, float* __restrict__ out) {
  linear_tiled<DT_BF16>(x, w, bias, biasType, n, in, outDim, out);
}

extern "C" __global__ void linear_f16(const float* __restrict__ x, const void* __restrict__ w,
                                      const void* __restrict__ bias, int biasType, int n, int in,
                                      int outDim, float* __restrict__ out) {
  linear_tiled<DT_F16>(x, w, bias, biasType, n, in, outDim, out);
}

// linear_gemv: the same product for a few tokens (n <= GEMV_MAX_TOKENS: decode steps), where a
// 64-token tile would leave most of the GPU idle. One warp per output feature r: the lanes walk
// w[r][:] (so every weight is read once, by one warp) and x[t][:] for each token, then reduce
// across the warp with shuffles; lane 0 adds the bias and writes.
// grid (ceil(outDim / 8)), block (256) = 8 warps = 8 output features
#define GEMV_MAX_TOKENS 8

template <int DTYPE>
__device__ void linear_gemv(const float* __restrict__ x, const void* __restrict__ w,
                            const void* __restrict__ bias, int biasType, int n, int in,
                            int outDim, float* __restrict__ out) {
  const int r = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (r >= outDim) {
    return;  // the whole warp leaves together: r is the same for its 32 lanes
  }
  float acc[GEMV_MAX_TOKENS];
#pragma unroll
  for (int t = 0; t < GEMV_MAX_TOKENS; t++) {
    acc[t] = 0.0f;
  }
  const long long row = (long long)r * in;
  for (int c = lane; c < in; c += 32) {
    float wv = load_w<DTYPE>(w, row + c);
#pragma unroll
    for (int t = 0; t < GEMV_MAX_TOKENS; t++) {
      if (t < n) {
        acc[t] = fmaf(x[(long long)t * in + c], wv, acc[t]);
      }
    }
  }
  float b = (lane == 0 && bias != nullptr) ? load_any(bias, r, biasType) : 0.0f;
#pragma unroll
  for (int t = 0; t < GEMV_MAX_TOKENS; t++) {
    if (t < n) {
      float v = acc[t];
      for (int o = 16; o > 0; o >>= 1) {
        v += __shfl_xor_sync(0xffffffffu, v, o);
      }
      if (lane == 0) {
        out[(long long)t * outDim + r] = v + b;
      }
    }
  }
}

extern "C" __global__ void linear_gemv_f32(const float* __restrict__ x, const void* __restrict__ w,
                                           const void* __restrict__ bias, int biasType, int n,
                                           int in, int outDim, float* __restrict__ out) {
  linear_gemv<DT_F32>(x, w, bias, biasType, n, in, outDim, out);
}

extern "C" __global__ void linear_gemv_bf16(const float* __restrict__ x,
                                            const void* __restrict__ w,
                                            const void* __restrict__ bias, int biasType, int n,
                                            int in, int outDim, float* __restrict__ out) {
  linear_gemv<DT_BF16>(x, w, bias, biasType, n, in, outDim, out);
}

extern "C" __global__ void linear_gemv_f16(const float* __restrict__ x, const void* __restrict__ w,
                                           const void* __restrict__ bias, int biasType, int n,
                                           int in, int outDim, float* __restrict__ out) {
  linear_gemv<DT_F16>(x, w, bias, biasType, n, in, outDim, out);
}

// ---------------------------------------------------------------------------------------------
// activation: x = act(x) over len elements (rows 0..n-1 of the buffer).   grid-stride, 1-D
extern "C" __global__ void activation(float* __restrict__ x, long long len, int kind) {
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < len;
       i += (long long)gridDim.x * blockDim.x) {
    float v = x[i];
    float r;
    if (kind == ACT_GELU_TANH) {
      const float k = 0.7978845608028654f;  // sqrt(2 / pi)
      r = 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
    } else if (kind == ACT_GELU_ERF) {
      r = 0.5f * v * (1.0f + erff(v * 0.7071067811865476f));
    } else {
      r = (v > 0.0f || v != v) ? v : 0.0f;  // Java's Math.max(0f, v): NaN stays NaN
    }
    x[i] = r;
  }
}

// add_in_place: x += y over len elements.   grid-stride, 1-D
extern "C" __global__ void add_in_place(float* __restrict__ x, const float* __restrict__ y,
                                        long long len) {
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < len;
       i += (long long)gridDim.x * blockDim.x) {
    x[i] += y[i];
  }
}

// gather_rows: out[i] = x[rows[i]].   grid (count), block (256)
extern "C" __global__ void gather_rows(const float* __restrict__ x, const int* __restrict__ rows,
                                       int d, float* __restrict__ out) {
  long long src = (long long)rows[blockIdx.x] * d;
  long long dst = (long long)blockIdx.x * d;
  for (int c = threadIdx.x; c < d; c += blockDim.x) {
    out[dst + c] = x[src + c];
  }
}

// copy_f32: dst = src over len floats; only the bandwidth check of benchmarks/gpu uses it.
extern "C" __global__ void copy_f32(const float4* __restrict__ src, float4* __restrict__ dst,
                                    long long len4) {
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < len4;
       i += (long long)gridDim.x * blockDim.x) {
    dst[i] = src[i];
  }
}

// ---------------------------------------------------------------------------------------------
// The c_attn output row of one token (AttentionShape):
//   multi-query (kvHeads = 1):  [ q0 q1 ... q(H-1) | k | v ]
//   multi-head  (kvHeads = H):  [ q0 k0 v0 | q1 k1 v1 | ... ]
__device__ __forceinline__ int q_offset(int h, int nHead, int kvHeads, int hd) {
  return kvHeads == 1 ? h * hd : h * 3 * hd;
}
__device__ __forceinline__ int k_offset(int kh, int nHead, int kvHeads, int hd) {
  return kvHeads == 1 ? nHead * hd : kh * 3 * hd + hd;
}
__device__ __forceinline__ int v_offset(int kh, int nHead, int kvHeads, int hd) {
  return kvHeads == 1 ? nHead * hd + hd : kh * 3 * hd + 2 * hd;
}

// kv_store: K and V of token t go to cache slot slots[t] (element slot * kvDim + kh * hd + c).
// grid (n), block (128)
template <typename KV>
__device__ __forceinline__ void store_kv(KV* p, long long i, float v);
template <>
__device__ __forceinline__ void store_kv<float>(float* p, long long i, float v) {
  p[i] = v;
}
template <>
__device__ __forceinline__ void store_kv<unsigned short>(unsigned short* p, long long i, float v) {
  p[i] = f32_to_bf16(v);
}

template <typename KV>
__device__ void kv_store(const float* __restrict__ qkv, const int* __restrict__ slots,
                         int qkvDim, int nHead, int kvHeads, int hd, KV* __restrict__ kCache,
                         KV* __restrict__ vCache) {
  int t = blockIdx.x;
  int kvDim = kvHeads * hd;
  const float* row = qkv + (long long)t * qkvDim;
  long long base = (long long)slots[t] * kvDim;
  for (int e = threadIdx.x; e < kvDim; e += blockDim.x) {
    int kh = e / hd;
    int c = e % hd;
    store_kv<KV>(kCache, base + e, row[k_offset(kh, nHead, kvHeads, hd) + c]);
    store_kv<KV>(vCache, base + e, row[v_offset(kh, nHead, kvHeads, hd) + c]);
  }
}

extern "C" __global__ void kv_store_f32(const float* __restrict__ qkv,
                                        const int* __restrict__ slots, int qkvDim, int nHead,
                                        int kvHeads, int hd, float* __restrict__ kCache,
                                        float* __restrict__ vCache) {
  kv_store<float>(qkv, slots, qkvDim, nHead, kvHeads, hd, kCache, vCache);
}

extern "C" __global__ void kv_store_bf16(const float* __restrict__ qkv,
                                         const int* __restrict__ slots, int qkvDim, int nHead,
                                         int kvHeads, int hd, unsigned short* __restrict__ kCache,
                                         unsigned short* __restrict__ vCache) {
  kv_store<unsigned short>(qkv, slots, qkvDim, nHead, kvHeads, hd, kCache, vCache);
}

// ---------------------------------------------------------------------------------------------
// attention: causal softmax(scale * q.K^T) . V over the paged cache, online (one pass over the
// positions, flash style), float32 throughout.
//
// One block serves one query group and one K/V head:
//   a query group = up to groupMax consecutive tokens of one sequence (in increasing position
//   order), listed by the host as groupFirst[g] (first token) and groupCount[g];
//   rows = tokens of the group x the query heads of K/V head kh that this block takes
//   (heads kh*G + z*headsPerBlock .. + headCount-1, G = nHead / kvHeads).
// Each K/V row of the group's sequence is loaded from the cache once per block and used by every
// row: in decode (one token per group) all query heads of a K/V head share it, in prefill also
// the group's tokens do.
//
// Positions are walked in tiles of ATT_TJ:
//   kvs[ATT_TJ][hd+1]   K of the tile (then V of the tile), widened to float32
//   s[rows][ATT_TJ]     scores, then exp(score - running max)
//   q[rows][hd], acc[rows][hd], m[rows], l[rows], corr[rows]
// grid (groups, kvHeads, ceil(G / headsPerBlock)), block (256), dynamic smem from the host.
#define ATT_TJ 32

template <typename KV>
__device__ __forceinline__ float load_kv(const KV* p, long long i);
template <>
__device__ __forceinline__ float load_kv<float>(const float* p, long long i) {
  return p[i];
}
template <>
__device__ __forceinline__ float load_kv<unsigned short>(const unsigned short* p, long long i) {
  return bf16_to_f32(p[i]);
}

template <typename KV>
__device__ void attention_paged(const float* __restrict__ qkv, const int* __restrict__ positions,
                                const int* __restrict__ tokenSeq,
                                const int* __restrict__ groupFirst,
                                const int* __restrict__ groupCount,
                                const int* __restrict__ blockTables,
                                const int* __restrict__ tableStart, int blockSize, int qkvDim,
                                int nHead, int kvHeads, int hd, int headsPerBlock, float scale,
                                const KV* __restrict__ kCache, const KV* __restrict__ vCache,
                                float* __restrict__ out) {
  extern __shared__ float smem[];
  const int g = blockIdx.x;
  const int kh = blockIdx.y;
  const int chunk = blockIdx.z;  // signed from here on: no unsigned arithmetic below
  const int groupHeads = nHead / kvHeads;
  const int h0 = kh * groupHeads + chunk * headsPerBlock;  // first query head of the block
  const int headCount = min(headsPerBlock, groupHeads - chunk * headsPerBlock);
  const int t0 = groupFirst[g];
  const int tokens = groupCount[g];
  const int rows = tokens * headCount;  // row r: token t0 + r / headCount, head h0 + r % headCount
  const int kvDim = kvHeads * hd;
  const int outDim = nHead * hd;
  const int ks = hd + 1;  // padded K/V tile row: neighbouring positions in different banks
  const int* table = blockTables + tableStart[tokenSeq[t0]];

  float* q = smem;                  // [rows][hd]
  float* acc = q + rows * hd;       // [rows][hd]
  float* kvs = acc + rows * hd;     // [ATT_TJ][hd + 1]
  float* s = kvs + ATT_TJ * ks;     // [rows][ATT_TJ]
  float* m = s + rows * ATT_TJ;     // [rows] running max
  float* l = m + rows;              // [rows] running sum of exp
  float* corr = l + rows;           // [rows] rescale of acc for this tile

  int maxLen = 0;  // positions 0..maxLen-1 are read: the group's last position + 1
  for (int i = 0; i < tokens; i++) {
    maxLen = max(maxLen, positions[t0 + i] + 1);
  }
  for (int e = threadIdx.x; e < rows * hd; e += blockDim.x) {
    int r = e / hd;
    int c = e % hd;
    int t = t0 + r / headCount;
    int h = h0 + r % headCount;
    q[e] = qkv[(long long)t * qkvDim + q_offset(h, nHead, kvHeads, hd) + c];
    acc[e] = 0.0f;
  }
  for (int r = threadIdx.x; r < rows; r += blockDim.x) {
    m[r] = -INFINITY;
    l[r] = 0.0f;
  }
  __syncthreads();

  for (int j0 = 0; j0 < maxLen; j0 += ATT_TJ) {
    const int tj = min(ATT_TJ, maxLen - j0);
    // K rows of positions j0 .. j0+tj-1.
    for (int e = threadIdx.x; e < tj * hd; e += blockDim.x) {
      int jj = e / hd;
      int c = e % hd;
      int p = j0 + jj;
      long long slot = (long long)table[p / blockSize] * blockSize + p % blockSize;
      kvs[jj * ks + c] = load_kv<KV>(kCache, slot * kvDim + (long long)kh * hd + c);
    }
    __syncthreads();
    // Scores; a position after the row's own is masked out.
    for (int e = threadIdx.x; e < rows * ATT_TJ; e += blockDim.x) {
      int r = e / ATT_TJ;
      int jj = e % ATT_TJ;
      int p = j0 + jj;
      float sc = -INFINITY;
      if (jj < tj && p <= positions[t0 + r / headCount]) {
        const float* qr = q + r * hd;
        const float* kr = kvs + jj * ks;
        float dot = 0.0f;
        for (int c = 0; c < hd; c++) {
          dot = fmaf(qr[c], kr[c], dot);
        }
        sc = dot * scale;
      }
      s[e] = sc;
    }
    __syncthreads();
    // Online softmax per row. Position 0 is in the first tile and never masked, so m is finite
    // from the first tile on and exp(-inf - m) = 0 for masked scores.
    for (int r = threadIdx.x; r < rows; r += blockDim.x) {
      float* sr = s + r * ATT_TJ;
      float mx = m[r];
      for (int jj = 0; jj < ATT_TJ; jj++) {
        mx = fmaxf(mx, sr[jj]);
      }
      float sum = 0.0f;
      for (int jj = 0; jj < ATT_TJ; jj++) {
        float pexp = expf(sr[jj] - mx);
        sr[jj] = pexp;
        sum += pexp;
      }
      float c = expf(m[r] - mx);  // 0 on the first tile (m = -inf)
      corr[r] = c;
      l[r] = l[r] * c + sum;
      m[r] = mx;
    }
    // V rows of the same positions, into the same tile (the K reads finished above).
    for (int e = threadIdx.x; e < tj * hd; e += blockDim.x) {
      int jj = e / hd;
      int c = e % hd;
      int p = j0 + jj;
      long long slot = (long long)table[p / blockSize] * blockSize + p % blockSize;
      kvs[jj * ks + c] = load_kv<KV>(vCache, slot * kvDim + (long long)kh * hd + c);
    }
    __syncthreads();
    for (int e = threadIdx.x; e < rows * hd; e += blockDim.x) {
      int r = e / hd;
      int c = e % hd;
      const float* sr = s + r * ATT_TJ;
      float a = acc[e] * corr[r];
      for (int jj = 0; jj < tj; jj++) {
        a = fmaf(sr[jj], kvs[jj * ks + c], a);
      }
      acc[e] = a;
    }
    __syncthreads();
  }

  for (int e = threadIdx.x; e < rows * hd; e += blockDim.x) {
    int r = e / hd;
    int c = e % hd;
    int t = t0 + r / headCount;
    int h = h0 + r % headCount;
    out[(long long)t * outDim + h * hd + c] = acc[e] / l[r];
  }
}

extern "C" __global__ void attention_f32(
    const float* __restrict__ qkv, const int* __restrict__ positions,
    const int* __restrict__ tokenSeq, const int* __restrict__ groupFirst,
    const int* __restrict__ groupCount, const int* __restrict__ blockTables,
    const int* __restrict__ tableStart, int blockSize, int qkvDim, int nHead, int kvHeads, int hd,
    int headsPerBlock, float scale, const float* __restrict__ kCache,
    const float* __restrict__ vCache, float* __restrict__ out) {
  attention_paged<float>(qkv, positions, tokenSeq, groupFirst, groupCount, blockTables, tableStart,
                         blockSize, qkvDim, nHead, kvHeads, hd, headsPerBlock, scale, kCache,
                         vCache, out);
}

extern "C" __global__ void attention_bf16(
    const float* __restrict__ qkv, const int* __restrict__ positions,
    const int* __restrict__ tokenSeq, const int* __restrict__ groupFirst,
    const int* __restrict__ groupCount, const int* __restrict__ blockTables,
    const int* __restrict__ tableStart, int blockSize, int qkvDim, int nHead, int kvHeads, int hd,
    int headsPerBlock, float scale, const unsigned short* __restrict__ kCache,
    const unsigned short* __restrict__ vCache, float* __restrict__ out) {
  attention_paged<unsigned short>(qkv, positions, tokenSeq, groupFirst, groupCount, blockTables,
                                  tableStart, blockSize, qkvDim, nHead, kvHeads, hd, headsPerBlock,
                                  scale, kCache, vCache, out);
}
