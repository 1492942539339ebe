package dev.starserve.backend.cuda;

import dev.starserve.backend.AttentionShape;
import dev.starserve.backend.Backend;
import dev.starserve.backend.BatchLayout;
import dev.starserve.backend.Buffer;
import dev.starserve.backend.KvCache;
import dev.starserve.backend.KvDType;
import dev.starserve.backend.Matrix;
import dev.starserve.backend.host.HostBuffer;
import dev.starserve.backend.ref.ReferenceBackend;
import dev.starserve.checkpoint.Bf16;
import dev.starserve.checkpoint.DType;
import dev.starserve.checkpoint.TensorView;
import dev.starserve.model.Activation;
import dev.starserve.model.GptBigCodeModel;
import dev.starserve.model.ModelDirectory;
import dev.starserve.model.ModelShape;
import dev.starserve.model.RandomModelWriter;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * Every CUDA kernel against the scalar {@link ReferenceBackend} on fresh random inputs, and a small
 * random model's forward pass: the GPU tests ({@code CudaBackendTest} runs each check) and, since a
 * GPU machine may have no Maven, a main in the shaded jar:
 *
 * <pre>java -cp starserve.jar dev.starserve.backend.cuda.CudaSelfCheck</pre>
 *
 * prints one line per check and the device's copy bandwidth; exit 0 when all pass, 1 when one
 * fails, 2 without a usable GPU.
 */
public final class CudaSelfCheck {
  private CudaSelfCheck() {}

  /** Element-wise tolerance of the kernel checks: float32 sums in another order. */
  static final double ATOL = 1e-4;

  static final double RTOL = 1e-3;

  /** A failed comparison, naming the check and the first element out of tolerance. */
  public static final class Mismatch extends AssertionError {
    private static final long serialVersionUID = 1L;

    Mismatch(String message) {
      super(message);
    }
  }

  /** A named check of the backend it is given. */
  public record Check(String name, Consumer<CudaBackend> body) {
    @Override
    public String toString() {
      return name;
    }
  }

  /** Every check (listing them needs no GPU). */
  public static List<Check> checks() {
    List<Check> all = new ArrayList<>();
    for (DType d : DType.values()) {
      all.add(new Check("linear " + d, gpu -> linear(gpu, d)));
      all.add(new Check("layerNorm " + d, gpu -> layerNorm(gpu, d)));
      all.add(new Check("embed " + d, gpu -> embed(gpu, d)));
    }
    for (Activation a : Activation.values()) {
      all.add(new Check("activation " + a, gpu -> activation(gpu, a)));
    }
    all.add(new Check("addInPlace + gatherRows", CudaSelfCheck::addAndGather));
    for (KvDType kv : KvDType.values()) {
      // {nHead, kvHeads, headDim}: multi-query and multi-head, an odd head width, StarCoder's
      // 48 heads of 128 (more than 48 KiB of shared memory per block), tiny_starcoder's 12 of 64.
      int[][] shapes = {{4, 1, 16}, {4, 4, 16}, {4, 1, 23}, {4, 4, 23}, {48, 1, 128}, {12, 1, 64}};
      for (int[] s : shapes) {
        String name =
            String.format(
                Locale.ROOT, "attention nHead=%d kvHeads=%d hd=%d %s", s[0], s[1], s[2], kv);
        all.add(new Check(name, gpu -> attention(gpu, s[0], s[1], s[2], kv)));
      }
    }
    for (KvDType kv : KvDType.values()) {
      all.add(new Check("tiny model forward, " + kv + " KV", gpu -> modelForward(gpu, kv)));
    }
    return all;
  }

  // ---- inputs --------------------------------------------------------------------------------

  private static final ValueLayout.OfFloat F32 =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfShort I16 =
      ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  /** A tensor of N(mean, std) values stored as {@code dtype}, in native memory. */
  static TensorView tensor(
      Arena arena, DType dtype, long seed, double mean, double std, long... shape) {
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
        case BF16 -> seg.setAtIndex(I16, i, Bf16.round(v));
        case F16 -> seg.setAtIndex(I16, i, Float.floatToFloat16(v));
      }
    }
    return new TensorView("t" + seed, dtype, shape, seg, Path.of("selfcheck"));
  }

  static float[] randoms(long seed, int n, double std) {
    SplittableRandom rnd = new SplittableRandom(seed);
    float[] a = new float[n];
    for (int i = 0; i < n; i++) {
      a[i] = (float) (std * rnd.nextGaussian());
    }
    return a;
  }

  private static Buffer load(Backend b, float[] values, int rows, int cols) {
    Buffer buf = b.allocate(rows, cols);
    if (b instanceof CudaBackend gpu) {
      gpu.write(buf, values, values.length / cols);
    } else {
      System.arraycopy(values, 0, HostBuffer.of(buf).data(), 0, values.length);
    }
    return buf;
  }

  private static float[] read(Backend b, Buffer x, int rows) {
    float[] out = new float[rows * x.cols()];
    b.readRows(x, rows, out);
    return out;
  }

  /** Throws {@link Mismatch} unless {@code |ref − got| ≤ atol + rtol·|ref|} everywhere. */
  static void assertClose(float[] ref, float[] got, double atol, double rtol, String what) {
    if (ref.length != got.length) {
      throw new Mismatch(what + ": " + ref.length + " reference values, " + got.length + " got");
    }
    for (int i = 0; i < ref.length; i++) {
      double diff = Math.abs((double) ref[i] - got[i]);
      if (!(diff <= atol + rtol * Math.abs(ref[i]))) {
        throw new Mismatch(what + ": element " + i + " is " + got[i] + ", the reference " + ref[i]);
      }
    }
  }

  // ---- the checks ----------------------------------------------------------------------------

  static void linear(CudaBackend gpu, DType dtype) {
    Backend ref = new ReferenceBackend();
    int[][] shapes = {{64, 64}, {67, 33}, {200, 130}, {768, 2304}, {16, 1}};
    int[] tokenCounts = {1, 3, 8, 9, 17, 64, 65, 130}; // 1..8: the warp-per-row path
    long seed = 1;
    try (Arena arena = Arena.ofConfined()) {
      for (int[] s : shapes) {
        int in = s[0];
        int out = s[1];
        TensorView w = tensor(arena, dtype, seed++, 0, 0.5, out, in);
        TensorView b = tensor(arena, dtype, seed++, 0, 0.5, out);
        Matrix rw = ref.uploadLinear(w);
        Matrix rb = ref.upload(b);
        Matrix gw = gpu.uploadLinear(w);
        Matrix gb = gpu.upload(b);
        for (int n : tokenCounts) {
          float[] x = randoms(seed++, n * in, 1.0);
          for (boolean bias : new boolean[] {true, false}) {
            float[][] res = new float[2][];
            int k = 0;
            for (Backend be : new Backend[] {ref, gpu}) {
              Buffer xb = load(be, x, n, in);
              Buffer ob = be.allocate(n + 2, out); // rows beyond n must be ignored
              be.linear(xb, n, be == ref ? rw : gw, bias ? (be == ref ? rb : gb) : null, ob);
              res[k++] = read(be, ob, n);
            }
            assertClose(
                res[0],
                res[1],
                ATOL,
                RTOL,
                dtype + " linear " + in + "→" + out + " n=" + n + (bias ? " +bias" : ""));
          }
        }
      }
    }
  }

  static void layerNorm(CudaBackend gpu, DType dtype) {
    Backend ref = new ReferenceBackend();
    try (Arena arena = Arena.ofConfined()) {
      for (int d : new int[] {64, 67, 768, 6144}) {
        int n = 5;
        float[] x = randoms(d, n * d, 2.0);
        for (int i = 0; i < x.length; i++) {
          x[i] += 0.7f; // a non-zero mean must be removed
        }
        TensorView g = tensor(arena, dtype, 11, 1.0, 0.1, d);
        TensorView b = tensor(arena, dtype, 12, 0.0, 0.1, d);
        float[][] res = new float[2][];
        int k = 0;
        for (Backend be : new Backend[] {ref, gpu}) {
          Buffer xb = load(be, x, n, d);
          Buffer ob = be.allocate(n, d);
          be.layerNorm(xb, n, be.upload(g), be.upload(b), 1e-5f, ob);
          res[k++] = read(be, ob, n);
        }
        assertClose(res[0], res[1], ATOL, RTOL, dtype + " layerNorm d=" + d);
      }
    }
  }

  static void activation(CudaBackend gpu, Activation kind) {
    Backend ref = new ReferenceBackend();
    int n = 3;
    int d = 1000;
    float[] x = randoms(5, n * d, 3.0);
    float[][] res = new float[2][];
    int k = 0;
    for (Backend be : new Backend[] {ref, gpu}) {
      Buffer xb = load(be, x, n, d);
      be.activation(xb, n - 1, kind); // the last row must stay as it was
      res[k++] = read(be, xb, n);
    }
    assertClose(res[0], res[1], ATOL, RTOL, kind.toString());
  }

  static void addAndGather(CudaBackend gpu) {
    Backend ref = new ReferenceBackend();
    int n = 4;
    int d = 37;
    float[] x = randoms(1, n * d, 1);
    float[] y = randoms(2, n * d, 1);
    int[] rows = {3, 0, 3};
    float[][] res = new float[2][];
    int k = 0;
    for (Backend be : new Backend[] {ref, gpu}) {
      Buffer xb = load(be, x, n, d);
      be.addInPlace(xb, load(be, y, n, d), n - 1); // row 3 stays x
      Buffer g = be.allocate(rows.length, d);
      be.gatherRows(xb, rows, g);
      res[k++] = read(be, g, rows.length);
    }
    assertClose(res[0], res[1], 0, 0, "addInPlace + gatherRows");
  }

  static void embed(CudaBackend gpu, DType dtype) {
    Backend ref = new ReferenceBackend();
    try (Arena arena = Arena.ofConfined()) {
      TensorView wte = tensor(arena, dtype, 3, 0, 1, 50, 24);
      TensorView wpe = tensor(arena, dtype, 4, 0, 1, 16, 24);
      BatchLayout batch = BatchLayout.singleSequence(new int[] {7, 0, 49, 7}, 3, new int[] {0}, 16);
      float[][] res = new float[2][];
      int k = 0;
      for (Backend be : new Backend[] {ref, gpu}) {
        Buffer out = be.allocate(4, 24);
        be.embed(batch, be.upload(wte), be.upload(wpe), out);
        res[k++] = read(be, out, 4);
      }
      assertClose(res[0], res[1], 0, 0, dtype + " embed");
    }
  }

  /**
   * Three sequences with scattered block tables: prefill chunks (one longer than a query group),
   * second chunks and decode tokens, mixed in one step as the engine mixes them.
   */
  static void attention(CudaBackend gpu, int nHead, int kvHeads, int hd, KvDType dtype) {
    Backend ref = new ReferenceBackend();
    AttentionShape shape = new AttentionShape(nHead, kvHeads, hd, (float) (1 / Math.sqrt(hd)));
    int blockSize = 16;
    int numBlocks = 40;
    int[][] tables = {
      {5, 1, 7, 2, 0, 11, 12, 13, 14, 15}, {3, 6, 4, 8, 9, 16, 17, 18, 19, 20}, {39, 38, 37, 36}
    };
    // {start, len} per sequence and step: prefill 70 + 5 + 9 tokens, then more, then decode.
    int[][][] steps = {
      {{0, 70}, {0, 5}, {0, 9}},
      {{70, 30}, {5, 1}, {9, 20}},
      {{100, 1}, {6, 1}, {29, 1}},
      {{101, 1}, {7, 40}, {30, 1}},
    };
    KvCache refCache = ref.allocateKvCache(2, numBlocks, blockSize, shape.kvDim(), dtype);
    KvCache gpuCache = gpu.allocateKvCache(2, numBlocks, blockSize, shape.kvDim(), dtype);
    long seed = 100;
    for (int[][] st : steps) {
      int n = 0;
      for (int[] s : st) {
        n += s[1];
      }
      int[] ids = new int[n];
      int[] pos = new int[n];
      int[] seq = new int[n];
      int[] slots = new int[n];
      int i = 0;
      for (int s = 0; s < st.length; s++) {
        for (int j = 0; j < st[s][1]; j++, i++) {
          seq[i] = s;
          pos[i] = st[s][0] + j;
          slots[i] = tables[s][pos[i] / blockSize] * blockSize + pos[i] % blockSize;
        }
      }
      BatchLayout batch = new BatchLayout(ids, pos, slots, seq, tables, blockSize);
      float[] qkv = randoms(seed++, n * shape.qkvDim(), 1.0);
      float[][] res = new float[2][];
      int k = 0;
      for (Backend be : new Backend[] {ref, gpu}) {
        Buffer in = load(be, qkv, n, shape.qkvDim());
        Buffer out = be.allocate(n, shape.outDim());
        be.attention(in, batch, shape, be == ref ? refCache : gpuCache, 1, out);
        res[k++] = read(be, out, n);
      }
      assertClose(
          res[0],
          res[1],
          ATOL,
          RTOL,
          dtype + " attention nHead=" + nHead + " kvHeads=" + kvHeads + " hd=" + hd);
    }
  }

  /**
   * The tiny random model (bf16 weights): a prompt of 40 tokens in chunks of 25 and 15, then 5
   * decode steps, logits of the last token of each step against the reference backend.
   */
  static void modelForward(CudaBackend gpu, KvDType kv) {
    // A bf16 KV cache may round a K or V the other way when its input differs in the last bit.
    double tol = kv == KvDType.FP32 ? 1e-3 : 2e-2;
    Path dir = null;
    try {
      dir = Files.createTempDirectory("starserve-cuda-check");
      Path modelDir = dir.resolve("tiny");
      RandomModelWriter.write(modelDir, ModelShape.TINY.config(), DType.BF16, 7, 0.1, 1);
      try (ModelDirectory md = ModelDirectory.open(modelDir)) {
        GptBigCodeModel refModel = new GptBigCodeModel(md.config(), md.weights(), ref());
        GptBigCodeModel gpuModel = new GptBigCodeModel(md.config(), md.weights(), gpu);
        int blockSize = 16;
        int[] table = {3, 0, 2, 1};
        KvCache rc = refModel.newKvCache(4, blockSize, kv);
        KvCache gc = gpuModel.newKvCache(4, blockSize, kv);
        int[] prompt = randomIds(40, md.config().vocabSize());
        int[][] chunks = {slice(prompt, 0, 25), slice(prompt, 25, 40)};
        int start = 0;
        int vocab = md.config().vocabSize();
        for (int step = 0; step < chunks.length + 5; step++) {
          int[] ids = step < chunks.length ? chunks[step] : new int[] {(step * 7919) % vocab};
          BatchLayout b = BatchLayout.singleSequence(ids, start, table, blockSize);
          int[] rows = {ids.length - 1};
          float[] want = refModel.forward(b, rows, rc);
          float[] got = gpuModel.forward(b, rows, gc);
          assertClose(want, got, tol, tol, "tiny model logits at step " + step + ", " + kv);
          start += ids.length;
        }
      }
    } catch (IOException e) {
      throw new IllegalStateException("cannot write the random model", e);
    } finally {
      deleteQuietly(dir);
    }
  }

  private static Backend ref() {
    return new ReferenceBackend();
  }

  private static int[] randomIds(int n, int vocab) {
    SplittableRandom rnd = new SplittableRandom(9);
    int[] ids = new int[n];
    for (int i = 0; i < n; i++) {
      ids[i] = rnd.nextInt(vocab);
    }
    return ids;
  }

  private static int[] slice(int[] a, int from, int to) {
    int[] s = new int[to - from];
    System.arraycopy(a, from, s, 0, s.length);
    return s;
  }

  private static void deleteQuietly(Path dir) {
    if (dir == null) {
      return;
    }
    try (Stream<Path> files = Files.walk(dir)) {
      for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    } catch (IOException e) {
      // A temporary directory left behind is not worth failing the check for.
    }
  }

  /** Runs every check and the bandwidth measurement; see the class comment for exit codes. */
  public static void main(String[] args) {
    CudaProbe.Result probe = CudaProbe.get();
    if (!probe.usable()) {
      System.out.println("CUDA self-check: no usable GPU: " + probe.describe());
      System.exit(2);
    }
    int failed = 0;
    try (CudaBackend gpu = new CudaBackend()) {
      System.out.println("CUDA self-check on " + gpu.description());
      for (Check c : checks()) {
        long t0 = System.nanoTime();
        String verdict;
        try {
          c.body().accept(gpu);
          verdict = "PASS";
        } catch (Mismatch | RuntimeException e) {
          verdict = "FAIL " + e.getMessage();
          failed++;
        }
        System.out.printf(
            Locale.ROOT, "%-48s %s (%.2f s)%n", c.name(), verdict, (System.nanoTime() - t0) / 1e9);
      }
      double gbs = gpu.measureCopyBandwidth(1L << 30, 10);
      System.out.printf(
          Locale.ROOT,
          "device memory bandwidth (float4 copy of 1 GiB, read + write, best of 10): %.0f GB/s%n",
          gbs);
    }
    System.out.println(failed == 0 ? "all checks passed" : failed + " checks FAILED");
    System.exit(failed == 0 ? 0 : 1);
  }
}
