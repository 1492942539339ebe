package dev.starserve.backend;

import dev.starserve.checkpoint.DType;
import dev.starserve.checkpoint.TensorView;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.SplittableRandom;

/** Random tensors in any checkpoint dtype, for kernel tests. */
public final class TestTensors {
  private TestTensors() {}

  private static final ValueLayout.OfFloat F32 =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfShort I16 =
      ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  /** A tensor of N(mean, std) values stored as {@code dtype} (rounded to nearest even). */
  public static TensorView random(
      Arena arena, String name, DType dtype, long seed, double mean, double std, long... shape) {
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    MemorySegment seg = arena.allocate(n * dtype.byteSize(), 8);
    SplittableRandom rnd = new SplittableRandom(seed);
    for (long i = 0; i < n; i++) {
      float v = (float) (mean + std * rnd.nextGaussian());
      switch (dtype) {
        case F32 -> seg.setAtIndex(F32, i, v);
        case BF16 -> seg.setAtIndex(I16, i, toBf16(v));
        case F16 -> seg.setAtIndex(I16, i, Float.floatToFloat16(v));
      }
    }
    return new TensorView(name, dtype, shape, seg, Path.of("test"));
  }

  /** float32 → bfloat16 bits, round to nearest even. */
  public static short toBf16(float v) {
    int bits = Float.floatToRawIntBits(v);
    int rounding = 0x7fff + ((bits >>> 16) & 1);
    return (short) ((bits + rounding) >>> 16);
  }

  /** Fills an array with N(0, std) values. */
  public static float[] randomArray(long seed, int n, double std) {
    SplittableRandom rnd = new SplittableRandom(seed);
    float[] a = new float[n];
    for (int i = 0; i < n; i++) {
      a[i] = (float) (std * rnd.nextGaussian());
    }
    return a;
  }

  /** Asserts {@code |a − b| ≤ atol + rtol·|ref|} element-wise over {@code n} elements. */
  public static void assertClose(
      float[] ref, float[] got, int n, double atol, double rtol, String what) {
    for (int i = 0; i < n; i++) {
      double diff = Math.abs((double) ref[i] - got[i]);
      if (!(diff <= atol + rtol * Math.abs(ref[i]))) {
        throw new AssertionError(
            what
                + ": element "
                + i
                + " differs: reference "
                + ref[i]
                + ", got "
                + got[i]
                + " (|diff| "
                + diff
                + " > "
                + (atol + rtol * Math.abs(ref[i]))
                + ")");
      }
    }
  }
}
