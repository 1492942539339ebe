package dev.starserve.backend.host;

import dev.starserve.backend.KvCache;
import dev.starserve.backend.KvDType;
import dev.starserve.checkpoint.Bf16;

/**
 * The paged K/V cache on the Java heap, one final class per storage dtype.
 *
 * <pre>
 * F32Cache:   keys[layer]   = float[numBlocks · blockSize · kvDim]   slot s starts at s · kvDim
 *             values[layer] = float[numBlocks · blockSize · kvDim]
 * Bf16Cache:  keys[layer]   = short[numBlocks · blockSize · kvDim]   bf16 bits, same layout
 *             values[layer] = short[numBlocks · blockSize · kvDim]
 * </pre>
 *
 * Every backend stores through {@link #storeKey}/{@link #storeValue}, so the same input gives the
 * same stored bits whichever backend wrote it; fast backends then read the arrays of the concrete
 * class, the reference backend reads element by element through {@link #key}/{@link #value}.
 */
public abstract sealed class HostKvCache implements KvCache
    permits HostKvCache.F32Cache, HostKvCache.Bf16Cache {
  private final int layers;
  private final int numBlocks;
  private final int blockSize;
  private final int kvDim;

  private HostKvCache(int layers, int numBlocks, int blockSize, int kvDim) {
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
    this.layers = layers;
    this.numBlocks = numBlocks;
    this.blockSize = blockSize;
    this.kvDim = kvDim;
  }

  /** A zeroed cache storing {@code dtype}. */
  public static HostKvCache allocate(
      int layers, int numBlocks, int blockSize, int kvDim, KvDType dtype) {
    return switch (dtype) {
      case FP32 -> new F32Cache(layers, numBlocks, blockSize, kvDim);
      case BF16 -> new Bf16Cache(layers, numBlocks, blockSize, kvDim);
    };
  }

  @Override
  public int layers() {
    return layers;
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

  /** Values per layer array: slots × kvDim. */
  final int perLayer() {
    return numBlocks * blockSize * kvDim;
  }

  /** Stores {@code src[srcOff..srcOff+len)} at element {@code dst} of the layer's keys. */
  public abstract void storeKey(int layer, int dst, float[] src, int srcOff, int len);

  /** Stores {@code src[srcOff..srcOff+len)} at element {@code dst} of the layer's values. */
  public abstract void storeValue(int layer, int dst, float[] src, int srcOff, int len);

  /** Element {@code i} of the layer's keys as float32 (the scalar path). */
  public abstract float key(int layer, int i);

  /** Element {@code i} of the layer's values as float32 (the scalar path). */
  public abstract float value(int layer, int i);

  /** Casts a cache that a host backend allocated. */
  public static HostKvCache of(KvCache c) {
    if (c instanceof HostKvCache h) {
      return h;
    }
    throw new IllegalArgumentException("not a host KV cache: " + c.getClass().getName());
  }

  /** float32 storage: values kept exactly. */
  public static final class F32Cache extends HostKvCache {
    private final float[][] keys; // [layers][slots × kvDim]
    private final float[][] values; // [layers][slots × kvDim]

    private F32Cache(int layers, int numBlocks, int blockSize, int kvDim) {
      super(layers, numBlocks, blockSize, kvDim);
      this.keys = new float[layers][perLayer()];
      this.values = new float[layers][perLayer()];
    }

    @Override
    public KvDType dtype() {
      return KvDType.FP32;
    }

    public float[] keys(int layer) {
      return keys[layer];
    }

    public float[] values(int layer) {
      return values[layer];
    }

    @Override
    public void storeKey(int layer, int dst, float[] src, int srcOff, int len) {
      System.arraycopy(src, srcOff, keys[layer], dst, len);
    }

    @Override
    public void storeValue(int layer, int dst, float[] src, int srcOff, int len) {
      System.arraycopy(src, srcOff, values[layer], dst, len);
    }

    @Override
    public float key(int layer, int i) {
      return keys[layer][i];
    }

    @Override
    public float value(int layer, int i) {
      return values[layer][i];
    }
  }

  /**
   * bfloat16 storage: each value rounded to nearest even when stored ({@link Bf16#round}), widened
   * exactly when read. NOTE: short[] rather than an off-heap segment, so the cache lives and dies
   * with the engine like the float32 one and the Vector API loads it with {@code
   * ShortVector.fromArray}.
   */
  public static final class Bf16Cache extends HostKvCache {
    private final short[][] keys; // [layers][slots × kvDim] bf16 bits
    private final short[][] values; // [layers][slots × kvDim] bf16 bits

    private Bf16Cache(int layers, int numBlocks, int blockSize, int kvDim) {
      super(layers, numBlocks, blockSize, kvDim);
      this.keys = new short[layers][perLayer()];
      this.values = new short[layers][perLayer()];
    }

    @Override
    public KvDType dtype() {
      return KvDType.BF16;
    }

    public short[] keys(int layer) {
      return keys[layer];
    }

    public short[] values(int layer) {
      return values[layer];
    }

    @Override
    public void storeKey(int layer, int dst, float[] src, int srcOff, int len) {
      round(src, srcOff, keys[layer], dst, len);
    }

    @Override
    public void storeValue(int layer, int dst, float[] src, int srcOff, int len) {
      round(src, srcOff, values[layer], dst, len);
    }

    private static void round(float[] src, int srcOff, short[] dst, int dstOff, int len) {
      for (int c = 0; c < len; c++) {
        dst[dstOff + c] = Bf16.round(src[srcOff + c]);
      }
    }

    @Override
    public float key(int layer, int i) {
      return Bf16.widen(keys[layer][i]);
    }

    @Override
    public float value(int layer, int i) {
      return Bf16.widen(values[layer][i]);
    }
  }
}
