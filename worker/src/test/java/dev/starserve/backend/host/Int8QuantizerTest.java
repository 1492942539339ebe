package dev.starserve.backend.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.backend.TestTensors;
import dev.starserve.checkpoint.DType;
import dev.starserve.checkpoint.TensorView;
import java.lang.foreign.Arena;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The int8 block quantizer: error bounds, the scale, edge values, and the row-major matrix. */
class Int8QuantizerTest {
  private static final int B = Int8Quantizer.BLOCK;

  /** Quantizes {@code w} and checks every block's scale and every element's error bound. */
  private static void assertRoundTripWithinHalfAStep(float[] w) {
    int cols = w.length;
    byte[] q = new byte[cols];
    float[] s = new float[Int8Quantizer.blocks(cols)];
    Int8Quantizer.quantizeRow(w, cols, q, s);
    for (int b = 0; b < s.length; b++) {
      int c0 = b * B;
      int c1 = Math.min(c0 + B, cols);
      float max = 0;
      for (int c = c0; c < c1; c++) {
        max = Math.max(max, Math.abs(w[c]));
      }
      // max / 127, rounded down when rounding to nearest would make 127 · scale exceed max.
      assertTrue(
          (double) s[b] * 127 <= max && (s[b] == max / 127f || s[b] == Math.nextDown(max / 127f)),
          "scale of block " + b + ": " + s[b] + " for max " + max);
      boolean hitsTheEnd = false;
      for (int c = c0; c < c1; c++) {
        assertTrue(q[c] >= -127 && q[c] <= 127, "q[" + c + "] = " + q[c]);
        double back = Int8Quantizer.dequantize(q[c], s[b]);
        // Half a quantization step, plus the float rounding of w / scale and of q · scale; the
        // absolute term only matters for subnormal blocks, whose scale loses bits or underflows.
        double bound = s[b] * (0.5 + 1e-5) + Math.ulp(Math.abs(w[c])) + 127.0 * Float.MIN_VALUE;
        assertTrue(
            Math.abs(back - w[c]) <= bound,
            "column " + c + ": " + w[c] + " came back as " + back + " (bound " + bound + ")");
        hitsTheEnd |= Math.abs(q[c]) == 127;
      }
      assertTrue(
          max == 0 || s[b] == 0 || hitsTheEnd, "the block maximum maps to ±127 in block " + b);
    }
  }

  @Test
  void randomRowsComeBackWithinHalfAStepPerBlockIncludingARaggedLastBlock() {
    SplittableRandom rnd = new SplittableRandom(1);
    for (int cols : new int[] {1, 7, 31, 32, 33, 64, 100, 768}) {
      for (int rep = 0; rep < 20; rep++) {
        float[] w = new float[cols];
        double std = Math.pow(10, rnd.nextInt(-6, 3)); // magnitudes 1e-6 .. 100
        for (int c = 0; c < cols; c++) {
          w[c] = (float) (std * rnd.nextGaussian());
        }
        assertRoundTripWithinHalfAStep(w);
      }
    }
  }

  @Test
  void relativeErrorOfARealisticRowIsAboutAPercent() {
    // Gaussian weights: the block max is ~2.5 std, so a step is ~2% of std and the rms error
    // (step / sqrt(12)) about 0.6% of std.
    SplittableRandom rnd = new SplittableRandom(2);
    int cols = 4096;
    float[] w = new float[cols];
    for (int c = 0; c < cols; c++) {
      w[c] = (float) (0.02 * rnd.nextGaussian());
    }
    byte[] q = new byte[cols];
    float[] s = new float[Int8Quantizer.blocks(cols)];
    Int8Quantizer.quantizeRow(w, cols, q, s);
    double err = 0;
    double norm = 0;
    for (int c = 0; c < cols; c++) {
      double d = Int8Quantizer.dequantize(q[c], s[c / B]) - w[c];
      err += d * d;
      norm += (double) w[c] * w[c];
    }
    double rel = Math.sqrt(err / norm);
    assertTrue(rel > 1e-3 && rel < 1.5e-2, "relative rms error " + rel);
  }

  @Test
  void anAllZeroBlockHasScaleZeroAndZeroQuantsWithoutDisturbingItsNeighbours() {
    float[] w = new float[3 * B];
    for (int c = 0; c < B; c++) {
      w[c] = c - 10.5f; // block 0: non-zero
      w[2 * B + c] = -0.25f * c; // block 2: non-zero; block 1 stays all zero (and -0)
    }
    w[B + 3] = -0f;
    byte[] q = new byte[w.length];
    float[] s = new float[3];
    Int8Quantizer.quantizeRow(w, w.length, q, s);
    assertEquals(0f, s[1], 0f);
    for (int c = B; c < 2 * B; c++) {
      assertEquals(0, q[c], "column " + c);
    }
    assertEquals(20.5f / 127f, s[0], Math.ulp(s[0])); // block 0 runs from -10.5 to 20.5
    assertEquals(127, q[B - 1]);
    assertEquals(7.75f / 127f, s[2], Math.ulp(s[2]));
    assertEquals(-127, q[3 * B - 1]);
    assertRoundTripWithinHalfAStep(w);
  }

  @Test
  void extremeValuesStayFiniteAndExact() {
    // The largest floats: the scale is finite and ±MAX_VALUE come back within half a step.
    float[] big = new float[B];
    big[0] = Float.MAX_VALUE;
    big[1] = -Float.MAX_VALUE;
    big[2] = 1f; // a small value next to huge ones rounds to 0: within half a (huge) step
    assertRoundTripWithinHalfAStep(big);
    byte[] q = new byte[B];
    float[] s = new float[1];
    Int8Quantizer.quantizeRow(big, B, q, s);
    assertEquals(127, q[0]);
    assertEquals(-127, q[1]);
    assertEquals(0, q[2]);
    assertEquals(Float.MAX_VALUE, Int8Quantizer.dequantize(q[0], s[0]), Math.ulp(s[0]) * 127);
    assertTrue(Float.isFinite(Int8Quantizer.dequantize(q[1], s[0])));

    // Subnormals: the scale underflows to subnormal or zero; errors stay within half a step.
    float[] tiny = new float[B];
    for (int c = 0; c < B; c++) {
      tiny[c] = Float.MIN_VALUE * (c - 16);
    }
    assertRoundTripWithinHalfAStep(tiny);
    float[] smallest = {Float.MIN_NORMAL, -Float.MIN_NORMAL / 3, 0f};
    assertRoundTripWithinHalfAStep(smallest);

    // Exact multiples of the scale come back exactly, and -w quantizes to -q.
    float[] steps = new float[B];
    for (int c = 0; c < B; c++) {
      steps[c] = (c * 8 - 127) / 64f; // max |w| = 127/64: scale 1/64, q = c·8 − 127
    }
    Int8Quantizer.quantizeRow(steps, B, q, s);
    for (int c = 0; c < B; c++) {
      assertEquals(c * 8 - 127, q[c], "column " + c);
      assertEquals(steps[c], Int8Quantizer.dequantize(q[c], s[0]), 0f);
    }
  }

  @Test
  void nonFiniteWeightsAreRejectedNamingTheColumn() {
    for (float bad : new float[] {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
      float[] w = new float[40];
      w[35] = bad;
      IllegalArgumentException e =
          assertThrows(
              IllegalArgumentException.class,
              () -> Int8Quantizer.quantizeRow(w, 40, new byte[40], new float[2]));
      assertEquals(
          "column 35 holds " + bad + ", which int8 cannot represent", e.getMessage(), "" + bad);
    }
  }

  @Test
  void int8MatrixHoldsTheQuantizerOutputForEveryDtypeRowByRow() {
    Arena arena = Arena.ofAuto();
    for (DType dtype : DType.values()) {
      TensorView t = TestTensors.random(arena, "w", dtype, 7, 0, 0.5, 5, 70);
      HostMatrix src = HostMatrix.of(t);
      Int8Matrix m = Int8Matrix.quantize(src);
      assertEquals(5, m.rows());
      assertEquals(70, m.cols());
      assertEquals(dtype, m.dtype());
      assertEquals(5L * 70 + 5L * 3 * 4, m.byteSize());
      float[] w = new float[70];
      byte[] q = new byte[70];
      float[] s = new float[3];
      for (int r = 0; r < 5; r++) {
        src.readRow(r, w);
        for (int c = 0; c < 70; c++) {
          assertEquals(src.get(r, c), w[c], 0f, dtype + " readRow");
        }
        Int8Quantizer.quantizeRow(w, 70, q, s);
        for (int c = 0; c < 70; c++) {
          assertEquals(q[c], m.quant(r, c));
          assertEquals(s[c / B], m.scale(r, c), 0f);
          assertEquals(q[c] * s[c / B], m.get(r, c), 0f);
        }
      }
    }
  }
}
