package dev.starserve.backend.cpu;

import static dev.starserve.backend.TestTensors.assertClose;
import static dev.starserve.backend.TestTensors.random;
import static dev.starserve.backend.TestTensors.randomArray;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.backend.AttentionShape;
import dev.starserve.backend.Backend;
import dev.starserve.backend.BatchLayout;
import dev.starserve.backend.Buffer;
import dev.starserve.backend.KvCache;
import dev.starserve.backend.KvDType;
import dev.starserve.backend.Matrix;
import dev.starserve.backend.host.HostBuffer;
import dev.starserve.backend.host.HostMatrix;
import dev.starserve.backend.ref.ReferenceBackend;
import dev.starserve.checkpoint.DType;
import dev.starserve.checkpoint.TensorView;
import dev.starserve.model.Activation;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;

/** Every CPU kernel against the scalar reference backend on fresh random inputs. */
class CpuBackendTest {
  private static final double ATOL = 1e-5;
  private static final double RTOL = 1e-4;

  private static final Backend REF = new ReferenceBackend();
  private static final CpuBackend CPU = new CpuBackend(2);
  private final Arena arena = Arena.ofAuto();

  @AfterAll
  static void close() {
    CPU.close();
  }

  private static Buffer load(Backend b, float[] values, int rows, int cols) {
    Buffer buf = b.allocate(rows, cols);
    System.arraycopy(values, 0, HostBuffer.of(buf).data(), 0, values.length);
    return buf;
  }

  private static float[] read(Backend b, Buffer x, int rows) {
    float[] out = new float[rows * x.cols()];
    b.readRows(x, rows, out);
    return out;
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void linearMatchesReferenceForEveryDtypeTokenCountAndOddWidths(DType dtype) {
    // Output widths: whole panel pairs (64), an odd panel count (48), partial panels (33, 130, 1);
    // token counts: decode, part of a group, whole groups, groups plus a tail.
    int[][] shapes = {{64, 64}, {64, 48}, {67, 33}, {200, 130}, {16, 1}};
    int[] tokenCounts = {1, 2, 3, 4, 5, 9, 17};
    long seed = 1;
    for (int[] s : shapes) {
      int in = s[0];
      int out = s[1];
      var w = random(arena, "w", dtype, seed++, 0, 0.5, out, in);
      var b = random(arena, "b", dtype, seed++, 0, 0.5, out);
      for (int n : tokenCounts) {
        float[] x = randomArray(seed++, n * in, 1.0);
        for (boolean withBias : new boolean[] {true, false}) {
          float[] ref = runLinear(REF, x, n, in, out, w, withBias ? b : null);
          float[] got = runLinear(CPU, x, n, in, out, w, withBias ? b : null);
          assertClose(
              ref, got, n * out, ATOL, RTOL, dtype + " linear " + in + "→" + out + " n=" + n);
        }
      }
    }
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void linearOfALargeBatchAndAWeightOfHugePagesMatchesReference(DType dtype) {
    // 97 tokens × 700 columns: activations interleaved on the pool's threads; 1601 rows: a packed
    // weight of over 2 MiB (mapped on huge pages where Linux offers them) ending in a one-row
    // panel.
    int in = 700;
    int out = 1601;
    int n = 97;
    var w = random(arena, "w", dtype, 51, 0, 0.5, out, in);
    var b = random(arena, "b", dtype, 52, 0, 0.5, out);
    float[] x = randomArray(53, n * in, 1.0);
    float[] ref = runLinear(REF, x, n, in, out, w, b);
    float[] got = runLinear(CPU, x, n, in, out, w, b);
    double atol = ATOL * Math.sqrt(in / 64.0); // float rounding in another order grows like √in
    assertClose(ref, got, n * out, atol, RTOL, dtype + " linear " + in + "→" + out + " n=" + n);
  }

  @Test
  void aSmallMappedTensorIsCopiedOutOfTheCheckpointAndALargeOneIsReadInPlace(@TempDir Path dir)
      throws Exception {
    Path file = dir.resolve("weights.bin");
    int small = 3072; // a bias
    long large = CpuBackend.COPIED_TENSOR_BYTES + 2; // just over the limit, in bf16 elements × 2
    try (FileChannel ch =
            FileChannel.open(
                file,
                StandardOpenOption.CREATE,
                StandardOpenOption.READ,
                StandardOpenOption.WRITE);
        Arena mapArena = Arena.ofConfined()) {
      MemorySegment map = ch.map(FileChannel.MapMode.READ_WRITE, 0, 4L * small + large, mapArena);
      for (int i = 0; i < small; i++) {
        map.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, i * 0.5f - 7f);
      }
      TensorView bias =
          new TensorView("b", DType.F32, new long[] {small}, map.asSlice(0, 4L * small), file);
      TensorView table =
          new TensorView(
              "wte", DType.BF16, new long[] {large / 2}, map.asSlice(4L * small, large), file);
      HostMatrix b = HostMatrix.of(CPU.upload(bias));
      assertFalse(b.data().isMapped(), "a small tensor is copied");
      for (int i = 0; i < small; i++) {
        assertEquals(i * 0.5f - 7f, b.get(0, i), "element " + i);
      }
      HostMatrix t = HostMatrix.of(CPU.upload(table));
      assertTrue(t.data().isMapped(), "a tensor over the limit is read in place");
    }
  }

  private static float[] runLinear(
      Backend be,
      float[] x,
      int n,
      int in,
      int out,
      dev.starserve.checkpoint.TensorView w,
      dev.starserve.checkpoint.TensorView b) {
    Buffer xb = load(be, x, n + 2, in); // extra rows must be ignored
    Buffer ob = be.allocate(n + 2, out);
    Matrix bias = b == null ? null : be.upload(b);
    be.linear(xb, n, be.uploadLinear(w), bias, ob);
    return read(be, ob, n);
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void linearGivesEachTokenBitIdenticalResultsWhateverItsBatch(DType dtype) {
    int in = 96;
    int out = 80; // five panels: a pair, a pair and a single on the decoding path
    var w = random(arena, "w", dtype, 41, 0, 0.5, out, in);
    var b = random(arena, "b", dtype, 42, 0, 0.5, out);
    // 11 tokens run as groups of 4+4+4 (one padded), 16 as 6+6+4.
    for (int n : new int[] {11, 16}) {
      float[] x = randomArray(43 + n, n * in, 1.0);
      float[] batched = runLinear(CPU, x, n, in, out, w, b);
      for (int t = 0; t < n; t++) {
        float[] one = new float[in];
        System.arraycopy(x, t * in, one, 0, in);
        float[] alone = runLinear(CPU, one, 1, in, out, w, b);
        for (int r = 0; r < out; r++) {
          assertEquals(
              Float.floatToIntBits(alone[r]),
              Float.floatToIntBits(batched[t * out + r]),
              dtype + " token " + t + " row " + r + " alone vs in a batch of " + n);
        }
      }
    }
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void layerNormMatchesReference(DType dtype) {
    for (int d : new int[] {64, 67, 768}) {
      int n = 5;
      float[] x = randomArray(d, n * d, 2.0);
      for (int i = 0; i < x.length; i++) {
        x[i] += 0.7f; // a non-zero mean must be removed
      }
      var g = random(arena, "g", dtype, 11, 1.0, 0.1, d);
      var b = random(arena, "b", dtype, 12, 0.0, 0.1, d);
      float[][] res = new float[2][];
      int k = 0;
      for (Backend be : new Backend[] {REF, CPU}) {
        Buffer xb = load(be, x, n, d);
        Buffer ob = be.allocate(n, d);
        be.layerNorm(xb, n, be.upload(g), be.upload(b), 1e-5f, ob);
        res[k++] = read(be, ob, n);
      }
      assertClose(res[0], res[1], n * d, ATOL, RTOL, dtype + " layerNorm d=" + d);
    }
  }

  @ParameterizedTest
  @EnumSource(Activation.class)
  void activationMatchesReference(Activation kind) {
    int n = 3;
    int d = 1000;
    float[] x = randomArray(5, n * d, 3.0);
    float[][] res = new float[2][];
    int k = 0;
    for (Backend be : new Backend[] {REF, CPU}) {
      Buffer xb = load(be, x, n, d);
      be.activation(xb, n, kind);
      res[k++] = read(be, xb, n);
    }
    assertClose(res[0], res[1], n * d, ATOL, RTOL, kind.toString());
  }

  @Test
  void addAndGatherMatchReference() {
    int n = 4;
    int d = 37;
    float[] x = randomArray(1, n * d, 1);
    float[] y = randomArray(2, n * d, 1);
    int[] rows = {3, 0, 3};
    float[][] res = new float[2][];
    int k = 0;
    for (Backend be : new Backend[] {REF, CPU}) {
      Buffer xb = load(be, x, n, d);
      be.addInPlace(xb, load(be, y, n, d), n);
      Buffer g = be.allocate(rows.length, d);
      be.gatherRows(xb, rows, g);
      res[k++] = read(be, g, rows.length);
    }
    assertClose(res[0], res[1], rows.length * d, 0, 0, "add+gather");
    assertEquals(x[3 * d] + y[3 * d], res[0][0], 0f);
  }

  @ParameterizedTest
  @EnumSource(DType.class)
  void embedMatchesReference(DType dtype) {
    var wte = random(arena, "wte", dtype, 3, 0, 1, 50, 24);
    var wpe = random(arena, "wpe", dtype, 4, 0, 1, 16, 24);
    BatchLayout batch = BatchLayout.singleSequence(new int[] {7, 0, 49, 7}, 3, new int[] {0}, 16);
    float[][] res = new float[2][];
    int k = 0;
    for (Backend be : new Backend[] {REF, CPU}) {
      Buffer out = be.allocate(4, 24);
      be.embed(batch, be.upload(wte), be.upload(wpe), out);
      res[k++] = read(be, out, 4);
    }
    assertClose(res[0], res[1], 4 * 24, 0, 0, "embed");
    assertEquals(wte.getFloat(7 * 24) + wpe.getFloat(3 * 24), res[0][0], 0f);
  }

  /**
   * Two sequences with scattered block tables, each filled by a prefill chunk, a second chunk and
   * then one decode token, for multi-query and multi-head layouts and both cache dtypes.
   *
   * <p>Both backends store the same rounded bits in a bf16 cache and read them back widened, so the
   * CPU kernels are held to the float32 tolerance there too. A head width of 23 leaves a scalar
   * tail after the vector body whatever the vector length.
   */
  @ParameterizedTest(name = "kvHeads={0} headDim={1} {2}")
  @CsvSource({
    "1, 16, FP32", "4, 16, FP32", "1, 23, FP32", "4, 23, FP32",
    "1, 16, BF16", "4, 16, BF16", "1, 23, BF16", "4, 23, BF16",
  })
  void pagedAttentionMatchesReferenceOverChunksAndSequences(int kvHeads, int hd, KvDType dtype) {
    int nHead = 4;
    AttentionShape shape = new AttentionShape(nHead, kvHeads, hd, 0.25f);
    int blockSize = 4;
    int[][] tables = {{5, 1, 7, 2, 0}, {3, 6, 4, 8, 9}};
    int[][] steps = {{0, 7, 1, 5}, {7, 6, 5, 3}, {13, 1, 8, 1}}; // {startA, lenA, startB, lenB}
    KvCache refCache = REF.allocateKvCache(1, 10, blockSize, shape.kvDim(), dtype);
    KvCache cpuCache = CPU.allocateKvCache(1, 10, blockSize, shape.kvDim(), dtype);
    long seed = 100;
    for (int[] st : steps) {
      int n = st[1] + st[3];
      int[] ids = new int[n];
      int[] pos = new int[n];
      int[] seq = new int[n];
      int[] slots = new int[n];
      for (int i = 0; i < n; i++) {
        boolean a = i < st[1];
        seq[i] = a ? 0 : 1;
        pos[i] = a ? st[0] + i : st[2] + i - st[1];
        slots[i] = tables[seq[i]][pos[i] / blockSize] * blockSize + pos[i] % blockSize;
      }
      BatchLayout batch = new BatchLayout(ids, pos, slots, seq, tables, blockSize);
      float[] qkv = randomArray(seed++, n * shape.qkvDim(), 1.0);
      float[] ref = runAttention(REF, qkv, batch, shape, refCache);
      float[] got = runAttention(CPU, qkv, batch, shape, cpuCache);
      assertClose(
          ref,
          got,
          n * shape.outDim(),
          ATOL,
          RTOL,
          dtype + " attention kvHeads=" + kvHeads + " hd=" + hd);
    }
  }

  /**
   * Multi-query attention at model-like widths (the heads in vector lanes: 1 head, 12 = one padded
   * pair of vectors, 20 = more than one pair) over contexts long enough for groups of four
   * positions and a tail: three sequences with scattered tables, a prefill chunk each, then decode
   * steps of all three together.
   */
  @ParameterizedTest(name = "nHead={0} headDim={1} {2}")
  @CsvSource({
    "1, 64, FP32", "12, 64, FP32", "20, 23, FP32", "16, 8, FP32",
    "1, 64, BF16", "12, 64, BF16", "20, 23, BF16", "16, 8, BF16",
  })
  void multiQueryAttentionMatchesReferenceAtModelWidths(int nHead, int hd, KvDType dtype) {
    AttentionShape shape = new AttentionShape(nHead, 1, hd, (float) (1 / Math.sqrt(hd)));
    int blockSize = 16;
    int blocks = 24;
    int[][] tables = {{5, 1, 7, 2, 0, 11, 13, 15}, {3, 6, 4, 8, 9, 17, 19, 21}, {10, 12, 14, 16}};
    KvCache refCache = REF.allocateKvCache(1, blocks, blockSize, shape.kvDim(), dtype);
    KvCache cpuCache = CPU.allocateKvCache(1, blocks, blockSize, shape.kvDim(), dtype);
    int[] lens = {0, 0, 0};
    int[][] steps = {{37, 70, 5}, {1, 1, 1}, {1, 1, 1}, {3, 0, 1}, {1, 1, 1}}; // new tokens per seq
    long seed = 300;
    for (int[] st : steps) {
      BatchLayout batch = layout(tables, blockSize, lens, st);
      int n = batch.numTokens();
      float[] qkv = randomArray(seed++, n * shape.qkvDim(), 2.0);
      float[] ref = runAttention(REF, qkv, batch, shape, refCache);
      float[] got = runAttention(CPU, qkv, batch, shape, cpuCache);
      assertClose(
          ref,
          got,
          n * shape.outDim(),
          ATOL,
          RTOL,
          dtype + " multi-query attention nHead=" + nHead + " hd=" + hd + " lens=" + lens[0]);
    }
  }

  /**
   * Contexts longer than one attention chunk ({@link CpuBackend#MQA_CHUNK} positions): a prefill of
   * 600 + 300 tokens (whole tokens per thread, up to three chunks each), then decoding steps of one
   * and two tokens (chunks shared out over the threads, merged after), against the reference; and
   * the same decoding token alone (chunks shared out) and in a batch of five (whole tokens) gives
   * bit-identical outputs.
   */
  @ParameterizedTest(name = "{0}")
  @EnumSource(KvDType.class)
  void multiQueryAttentionOverSeveralChunksMatchesReferenceAndIsBatchInvariant(KvDType dtype) {
    AttentionShape shape = new AttentionShape(12, 1, 64, 0.125f);
    int blockSize = 16;
    int[][] tables = new int[2][];
    int[] order = new int[64];
    for (int i = 0; i < 64; i++) {
      order[i] = (i * 37) % 64; // scattered, every block once
    }
    tables[0] = Arrays.copyOfRange(order, 0, 40);
    tables[1] = Arrays.copyOfRange(order, 40, 64);
    KvCache refCache = REF.allocateKvCache(1, 64, blockSize, shape.kvDim(), dtype);
    KvCache cpuCache = CPU.allocateKvCache(1, 64, blockSize, shape.kvDim(), dtype);
    int[] lens = {0, 0};
    int[][] steps = {{600, 300}, {1, 0}, {1, 1}, {0, 1}};
    long seed = 500;
    for (int[] st : steps) {
      BatchLayout batch = layout(tables, blockSize, lens, st);
      float[] qkv = randomArray(seed++, batch.numTokens() * shape.qkvDim(), 2.0);
      float[] ref = runAttention(REF, qkv, batch, shape, refCache);
      float[] got = runAttention(CPU, qkv, batch, shape, cpuCache);
      assertClose(
          ref,
          got,
          batch.numTokens() * shape.outDim(),
          ATOL,
          RTOL,
          dtype + " chunked multi-query attention, lengths " + lens[0] + ", " + lens[1]);
    }
    // One more token of sequence 0, alone, then again (same row, same slot) with four of sequence
    // 1.
    int[] before = lens.clone();
    BatchLayout alone = layout(tables, blockSize, lens, new int[] {1, 0});
    float[] row = randomArray(seed++, shape.qkvDim(), 2.0);
    float[] aloneOut = runAttention(CPU, row, alone, shape, cpuCache);
    lens[0] = before[0];
    BatchLayout five = layout(tables, blockSize, lens, new int[] {1, 4});
    float[] rows = randomArray(seed, 5 * shape.qkvDim(), 2.0);
    System.arraycopy(row, 0, rows, 0, shape.qkvDim());
    float[] fiveOut = runAttention(CPU, rows, five, shape, cpuCache);
    for (int c = 0; c < shape.outDim(); c++) {
      assertEquals(
          Float.floatToIntBits(aloneOut[c]),
          Float.floatToIntBits(fiveOut[c]),
          dtype + " output " + c + " of a decoding token alone vs in a batch of five");
    }
  }

  /** The next {@code add[q]} tokens of each sequence q, sequence by sequence; advances lens. */
  private static BatchLayout layout(int[][] tables, int blockSize, int[] lens, int[] add) {
    int n = 0;
    for (int a : add) {
      n += a;
    }
    int[] ids = new int[n];
    int[] pos = new int[n];
    int[] seq = new int[n];
    int[] slots = new int[n];
    int i = 0;
    for (int q = 0; q < add.length; q++) {
      for (int k = 0; k < add[q]; k++, i++) {
        seq[i] = q;
        pos[i] = lens[q]++;
        slots[i] = tables[q][pos[i] / blockSize] * blockSize + pos[i] % blockSize;
      }
    }
    return new BatchLayout(ids, pos, slots, seq, tables, blockSize);
  }

  private static float[] runAttention(
      Backend be, float[] qkv, BatchLayout batch, AttentionShape shape, KvCache cache) {
    int n = batch.numTokens();
    Buffer in = load(be, qkv, n, shape.qkvDim());
    Buffer out = be.allocate(n, shape.outDim());
    be.attention(in, batch, shape, cache, 0, out);
    return read(be, out, n);
  }

  @Test
  void computePoolCoversEveryIndexOnceAndPropagatesFailures() {
    try (ComputePool pool = new ComputePool(3)) {
      for (int n : new int[] {1, 2, 3, 7, 1000}) {
        int[] hits = new int[n];
        pool.parallelFor(
            n,
            1,
            (from, to, w) -> {
              for (int i = from; i < to; i++) {
                hits[i]++;
              }
            });
        for (int i = 0; i < n; i++) {
          assertEquals(1, hits[i], "index " + i + " of " + n);
        }
      }
      IllegalStateException e =
          assertThrows(
              IllegalStateException.class,
              () ->
                  pool.parallelFor(
                      90,
                      1,
                      (from, to, w) -> {
                        // Chunks go to whichever thread is free: fail on an index, not a thread.
                        if (from <= 60 && 60 < to) {
                          throw new IllegalStateException("boom at index 60");
                        }
                      }));
      assertEquals("boom at index 60", e.getMessage());
    }
  }
}
