package dev.starserve.bench.jmh;

import dev.starserve.checkpoint.Bf16;
import dev.starserve.checkpoint.DType;
import dev.starserve.checkpoint.TensorView;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.SplittableRandom;

/**
 * Seeded random inputs for the benchmarks: weights as checkpoint tensors (what a backend uploads),
 * activations as float arrays. Never zeros: a kernel may take a different path on them.
 */
final class RandomData {
  private RandomData() {}

  private static final ValueLayout.OfFloat F32 =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfShort I16 =
      ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  /**
   * A tensor {@code shape} of {@code dtype} with values {@code mean + N(0, std²)}, rounded to the
   * dtype, in {@code arena} (shared: backends read weights from their compute threads).
   */
  static TensorView tensor(
      Arena arena, String name, DType dtype, long seed, float mean, float std, long... shape) {
    long n = 1;
    for (long d : shape) {
      n = Math.multiplyExact(n, d);
    }
    MemorySegment data = arena.allocate(n * dtype.byteSize(), 64);
    SplittableRandom rnd = new SplittableRandom(seed);
    for (long i = 0; i < n; i++) {
      float v = (float) (mean + std * rnd.nextGaussian());
      switch (dtype) {
        case F32 -> data.setAtIndex(F32, i, v);
        case BF16 -> data.setAtIndex(I16, i, Bf16.round(v));
        case F16 -> data.setAtIndex(I16, i, Float.floatToFloat16(v));
      }
    }
    return new TensorView(name, dtype, shape, data, Path.of("random-" + name));
  }

  /** Fills {@code a} with {@code N(0, std²)} values. */
  static void fill(float[] a, long seed, float std) {
    SplittableRandom rnd = new SplittableRandom(seed);
    for (int i = 0; i < a.length; i++) {
      a[i] = (float) (std * rnd.nextGaussian());
    }
  }

  /** The checkpoint dtype of a {@code weights} parameter value: f32, bf16, f16. */
  static DType dtype(String weights) {
    return switch (weights) {
      case "f32" -> DType.F32;
      case "bf16" -> DType.BF16;
      case "f16" -> DType.F16;
      default ->
          throw new IllegalArgumentException(
              "weights must be one of f32, bf16, f16, got '" + weights + "'");
    };
  }
}
