package dev.starserve.backend.cuda;

import dev.starserve.backend.KvCache;
import dev.starserve.backend.KvDType;
import jcuda.driver.CUdeviceptr;

/**
 * The paged K/V cache in device memory, the same layout as the host caches:
 *
 * <pre>
 * keys[layer]   = [numBlocks · blockSize · kvDim] of dtype   slot s starts at element s · kvDim
 * values[layer] = [numBlocks · blockSize · kvDim] of dtype   (fp32, or bf16 bits)
 * </pre>
 */
record CudaKvCache(
    int layers,
    int numBlocks,
    int blockSize,
    int kvDim,
    KvDType dtype,
    CUdeviceptr[] keys, // [layers]
    CUdeviceptr[] values) // [layers]
    implements KvCache {

  static CudaKvCache of(KvCache c) {
    if (c instanceof CudaKvCache k) {
      return k;
    }
    throw new IllegalArgumentException("not a CUDA KV cache: " + c.getClass().getName());
  }
}
