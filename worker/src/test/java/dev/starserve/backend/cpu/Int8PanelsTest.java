package dev.starserve.backend.cpu;

import static dev.starserve.backend.TestTensors.assertClose;
import static dev.starserve.backend.TestTensors.random;
import static dev.starserve.backend.TestTensors.randomArray;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.backend.Backend;
import dev.starserve.backend.Buffer;
import dev.starserve.backend.Matrix;
import dev.starserve.backend.Quantization;
import dev.starserve.backend.host.HostBuffer;
import dev.starserve.backend.host.Int8Matrix;
import dev.starserve.backend.host.Int8Quantizer;
import dev.starserve.backend.ref.ReferenceBackend;
import dev.starserve.checkpoint.DType;
import dev.starserve.checkpoint.TensorView;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The CPU backend's int8 panels against the reference backend's scalar twin (the same integers and
 * scales, dequantized element by element) on fresh random inputs.
 */
class Int8PanelsTest {
  private static final double ATOL = 1e-5;
  private static final double RTOL = 1e-4;

  private static final Backend REF = new ReferenceBackend();
  private static final CpuBackend CPU = new CpuBackend(2);
  private final Arena arena = Arena.ofAuto();

  @AfterAll
  static void close() {
    CPU.close();
  }

  private static float[] runLinear(Backend be, Matrix w, float[] x, int n, TensorView bias) {
    int in = w.cols();
    int out = w.rows();
    Buffer xb = be.allocate(n + 2, in); // extra rows must be ignored
    System.arraycopy(x, 0, HostBuffer.of(xb).data(), 0, n * in);
    Buffer ob = be.allocate(n + 2, out);
    be.linear(xb, n, w, bias == null ? null : be.upload(bias), ob);
    float[] res = new float[n * out];
    be.readRows(ob, n, res);
    return res;
  }

  /**
   * Shapes {in, out}: whole blocks and panel pairs (64×64), an odd panel count (48), inputs that
   * end in a short block or are shorter than one (67, 33, 200, 31, 1, 95), outputs that end in a
   * partial panel (33, 130, 1, 17, 5, 3); token counts: decode, part of a group, whole groups of 4
   * and 6, groups plus a tail, a batch large enough to be interleaved in parallel.
   */
  @ParameterizedTest
  @EnumSource(DType.class)
  void int8LinearMatchesTheScalarTwinForEveryDtypeTokenCountAndRaggedShape(DType dtype) {
    int[][] shapes = {
      {64, 64}, {64, 48}, {67, 33}, {200, 130}, {16, 1}, {31, 17}, {1, 5}, {95, 3}, {768, 80}
    };
    // 90 tokens of 768 columns are enough activations to interleave on the pool's threads.
    int[] tokenCounts = {1, 2, 3, 4, 5, 6, 7, 9, 12, 17, 90};
    long seed = 1;
    for (int[] s : shapes) {
      int in = s[0];
      int out = s[1];
      TensorView w = random(arena, "w", dtype, seed++, 0, 0.5, out, in);
      TensorView b = random(arena, "b", dtype, seed++, 0, 0.5, out);
      Matrix refW = REF.uploadLinear(w, Quantization.INT8);
      Matrix cpuW = CPU.uploadLinear(w, Quantization.INT8);
      assertEquals(Quantization.INT8, refW.quantization());
      assertEquals(Quantization.INT8, cpuW.quantization());
      for (int n : tokenCounts) {
        float[] x = randomArray(seed++, n * in, 1.0);
        // Both sum ~N(0, 0.5·sqrt(in)) terms in float, in different orders: the rounding of
        // either grows like sqrt(in), and outputs near zero see it unscaled.
        double atol = ATOL * Math.max(1, Math.sqrt(in / 64.0));
        for (TensorView bias : new TensorView[] {b, null}) {
          float[] ref = runLinear(REF, refW, x, n, bias);
          float[] got = runLinear(CPU, cpuW, x, n, bias);
          assertClose(
              ref,
              got,
              n * out,
              atol,
              RTOL,
              dtype + " int8 linear " + in + "→" + out + " n=" + n + " bias=" + (bias != null));
        }
      }
    }
  }

  @Test
  void int8LinearIsCloseToTheUnquantizedWeightsButNotEqual() {
    // The twin test above cannot see a quantizer that is wrong the same way in both backends:
    // this one ties both to the unquantized weights. Gaussian weights: a step is about
    // 2.5·std/127, the rms weight error step/sqrt(12) ≈ 0.57% of std, and so is the rms output
    // error relative to the rms output (independent errors over the inputs).
    int in = 256;
    int out = 64;
    int n = 8;
    TensorView w = random(arena, "w", DType.F32, 5, 0, 0.5, out, in);
    float[] x = randomArray(6, n * in, 1.0);
    float[] exact = runLinear(CPU, CPU.uploadLinear(w), x, n, null);
    float[] q8 = runLinear(CPU, CPU.uploadLinear(w, Quantization.INT8), x, n, null);
    double err = 0;
    double norm = 0;
    for (int i = 0; i < exact.length; i++) {
      err += (double) (exact[i] - q8[i]) * (exact[i] - q8[i]);
      norm += (double) exact[i] * exact[i];
    }
    double rel = Math.sqrt(err / norm);
    assertTrue(rel > 2e-3 && rel < 1.2e-2, "relative rms error of int8 outputs " + rel);
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void int8GivesEachTokenBitIdenticalResultsWhateverItsBatch(DType dtype) {
    int in = 100; // three whole blocks and a short one
    int out = 80; // five panels: a pair, a pair and a single on the decoding path
    TensorView w = random(arena, "w", dtype, 41, 0, 0.5, out, in);
    TensorView b = random(arena, "b", dtype, 42, 0, 0.5, out);
    Matrix m = CPU.uploadLinear(w, Quantization.INT8);
    // 11 tokens run as groups of 4+4+4 (one padded), 16 as 6+6+4.
    for (int n : new int[] {11, 16}) {
      float[] x = randomArray(43 + n, n * in, 1.0);
      float[] batched = runLinear(CPU, m, x, n, b);
      for (int t = 0; t < n; t++) {
        float[] one = new float[in];
        System.arraycopy(x, t * in, one, 0, in);
        float[] alone = runLinear(CPU, m, one, 1, b);
        for (int r = 0; r < out; r++) {
          assertEquals(
              Float.floatToIntBits(alone[r]),
              Float.floatToIntBits(batched[t * out + r]),
              dtype + " token " + t + " row " + r + " alone vs in a batch of " + n);
        }
      }
    }
  }

  @Test
  void int8PanelsHoldTheReferenceIntegersAndScalesInTheDocumentedLayout() {
    int rows = 130; // 9 panels, the last holding 2 rows
    int cols = 69; // blocks of 32, 32 and 5 (padded with zero columns to 32)
    TensorView w = random(arena, "w", DType.BF16, 9, 0, 0.5, rows, cols);
    Int8Matrix ref = Int8Matrix.of(REF.uploadLinear(w, Quantization.INT8));
    PackedMatrix packed = PackedMatrix.of(CPU.uploadLinear(w, Quantization.INT8));
    int p = PackedMatrix.P;
    int blocks = Int8Quantizer.blocks(cols);
    long blockBytes = 32L * p + 4L * p;
    long panelBytes = blocks * blockBytes;
    assertEquals(9 * panelBytes, packed.byteSize());
    assertEquals((long) rows * cols + 4L * rows * blocks, ref.byteSize());
    MemorySegment d = packed.data();
    ValueLayout.OfFloat f32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    for (int r = 0; r < 9 * p; r++) {
      int panel = r / p;
      int j = r % p;
      for (int b = 0; b < blocks; b++) {
        long block = panel * panelBytes + b * blockBytes;
        for (int c = 0; c < 32; c++) {
          // Pair c/2 is 2P bytes; int lane j % L holds rows j and j + L of both columns.
          long at = block + (c / 2) * 2L * p + 4L * (j % (p / 2)) + 2 * (c % 2) + j / (p / 2);
          byte got = d.get(ValueLayout.JAVA_BYTE, at);
          int col = 32 * b + c;
          // Stored as u = q + 128 (0..255); the padding is zero bytes.
          int want = r < rows && col < cols ? ref.quant(r, col) + 128 : 0;
          assertEquals(want, got & 0xff, "row " + r + " col " + col);
        }
        float scale = d.get(f32, block + 32L * p + 4L * j);
        assertEquals(r < rows ? ref.scale(r, 32 * b) : 0f, scale, 0f, "scale row " + r);
      }
    }
  }

  @Test
  void aNonFiniteWeightFailsTheUploadNamingTensorRowAndColumn() {
    MemorySegment seg = arena.allocate(4L * 6 * 40, 8);
    seg.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, 3 * 40 + 35, Float.NaN);
    TensorView w =
        new TensorView("h.0.mlp.c_fc.weight", DType.F32, new long[] {6, 40}, seg, Path.of("t"));
    for (Backend be : new Backend[] {REF, CPU}) {
      IllegalArgumentException e =
          assertThrows(IllegalArgumentException.class, () -> be.uploadLinear(w, Quantization.INT8));
      assertEquals(
          "cannot quantize h.0.mlp.c_fc.weight to int8: row 3: column 35 holds NaN, which int8"
              + " cannot represent",
          e.getMessage(),
          be.name());
    }
    // Unquantized, the same tensor loads (NaN weights are the checkpoint's business).
    CPU.uploadLinear(w, Quantization.NONE);
  }
}
