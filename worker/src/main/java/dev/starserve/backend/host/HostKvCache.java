package dev.starserve.backend.host;

import dev.starserve.backend.KvCache;

/**
 * The paged K/V cache on the Java heap, float32.
 *
 * <pre>
 * keys[layer]   = float[numBlocks · blockSize · kvDim]   slot s starts at s · kvDim
 * values[layer] = float[numBlocks · blockSize · kvDim]
 * </pre>
 */
public final class HostKvCache implements KvCache {
  private final float[][] keys; // [layers][slots × kvDim]
  private final float[][] values; // [layers][slots × kvDim]
  private final int numBlocks;
  private final int blockSize;
  private final int kvDim;

  public HostKvCache(int layers, int numBlocks, int blockSize, int kvDim) {
    if (layers <= 0 || numBlocks <= 0 || blockSize <= 0 || kvDim <= 0) {
      throw new IllegalArgumentException(
          "KV cache dimensions must be positive: layers="
              + layers
              + " blocks="
              + numBlocks
              + " blockSize="
              + blockSize
              + " kvDim="
              + kvDim);
    }
    long perLayer = (long) numBlocks * blockSize * kvDim;
    if (perLayer > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException(
          "KV cache of "
              + numBlocks
              + " blocks × "
              + blockSize
              + " tokens × "
              + kvDim
              + " values is too large for one heap array per layer; use fewer blocks");
    }
    this.numBlocks = numBlocks;
    this.blockSize = blockSize;
    this.kvDim = kvDim;
    this.keys = new float[layers][(int) perLayer];
    this.values = new float[layers][(int) perLayer];
  }

  @Override
  public int layers() {
    return keys.length;
  }

  @Override
  public int numBlocks() {
    return numBlocks;
  }

  @Override
  public int blockSize() {
    return blockSize;
  }

  @Override
  public int kvDim() {
    return kvDim;
  }

  public float[] keys(int layer) {
    return keys[layer];
  }

  public float[] values(int layer) {
    return values[layer];
  }

  /** Casts a cache that a host backend allocated. */
  public static HostKvCache of(KvCache c) {
    if (c instanceof HostKvCache h) {
      return h;
    }
    throw new IllegalArgumentException("not a host KV cache: " + c.getClass().getName());
  }
}
