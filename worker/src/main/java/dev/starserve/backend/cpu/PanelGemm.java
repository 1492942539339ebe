package dev.starserve.backend.cpu;

import dev.starserve.backend.ParallelTask;
import dev.starserve.backend.host.Int8Quantizer;
import dev.starserve.checkpoint.DType;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import jdk.incubator.vector.FloatVector;

/**
 * {@code out[t·rows + r] = Σ_k x[t·cols + k] · w[r, k] + bias[r]} over a {@link PackedMatrix}, the
 * weight split between the pool's threads by panels (each thread reads its own part of the weight
 * and writes its own output columns).
 *
 * <p>One token (decoding) reads the activations in place and the weights once: bandwidth-bound.
 * Several tokens are first interleaved in groups of four ({@code xp}) so that one weight load feeds
 * eight fused multiply-adds: compute-bound. The tokens are taken in blocks whose activations stay
 * in the L2 cache while every panel of the thread passes over them. An int8 panel is widened to
 * floats once per token block, in a per-thread scratch, before its tiles run.
 *
 * <p>NOTE: groups of four, not six, for bf16 and f32. A six-token tile needs twelve accumulators,
 * and C2 loads all of a column's activation broadcasts at the top of the loop body, one register
 * each: with the two weight vectors (and the bf16 mask) that is more than AVX2's sixteen, so C2
 * spilled one or two accumulators to the stack, putting a store and a load on their dependency
 * chains every column (seen in the disassembly). Four tokens (8 + 4 + 2 + 1 registers) do not
 * spill: the same command ({@code bench jmh LinearBench -p layer=mlp.c_fc -p tokens=512 -p
 * threads=1}) went from 38 to 55 GFLOP/s for bf16 and from 37 to 72 for f32. The f16 widening is
 * long enough that six tokens still pay more than the spill (32 vs 22 GFLOP/s), so f16 keeps groups
 * of six.
 *
 * <pre>
 * xp, a group of size g from token t0 (zero past n):  x[t0][0] x[t0+1][0] … x[t0+g-1][0] x[t0][1] …
 *   (int8: stride = cols rounded up to whole blocks of 32, the extra columns zero)
 * </pre>
 *
 * <p>Not thread-safe: one owner (the engine loop) calls it.
 */
final class PanelGemm {
  private static final int P = PackedMatrix.P;
  private static final int MAX_GROUP = 6;
  // Activations of one token block: half of a typical 1 MiB L2, leaving room for the panels.
  private static final int BLOCK_FLOATS = 128 * 1024;
  // Activations (tokens × columns) from which the interleaving is split over the pool.
  private static final int PARALLEL_INTERLEAVE = 64 * 1024;

  private final ComputePool pool;
  private final float[][] scratch; // [worker][6 × P] outputs of a partial tile
  private final float[][] int8Q; // [worker][(cols + 1) × P] a dequantized int8 panel, grown by use
  private final float[][] int8S; // [worker][blocks × P] its scales
  private float[] xp = new float[0]; // [padded tokens × stride], group by group
  private float[] xd = new float[0]; // int8: one token's activations as Int8Panels.prepareDecode
  private float[] xs = new float[0]; // int8: 128 · Σ x per token and block (Int8Panels.blockSums)
  private int[] groupStart = new int[0]; // first token of each group
  private int[] groupSize = new int[0]; // 4 tokens, or 6 (f16)
  private final DecodeTask decodeTask = new DecodeTask();
  private final GemmTask gemmTask = new GemmTask();
  private final InterleaveTask interleaveTask = new InterleaveTask();

  PanelGemm(ComputePool pool) {
    this.pool = pool;
    this.scratch = new float[pool.parallelism()][MAX_GROUP * P];
    this.int8Q = new float[pool.parallelism()][0];
    this.int8S = new float[pool.parallelism()][0];
  }

  void linear(float[] x, int n, PackedMatrix w, DType bt, MemorySegment bias, float[] out) {
    int cols = w.cols();
    boolean int8 = w.format() == PackedMatrix.Format.INT8;
    // int8 kernels run whole blocks of 32 columns: the activations get zero columns to match.
    int blocks = Int8Quantizer.blocks(cols);
    int stride = int8 ? blocks * Int8Quantizer.BLOCK : cols;
    if (n == 1) {
      float[] x1 = x;
      if (int8) {
        if (xd.length < 2 * stride) {
          xd = new float[2 * stride];
        }
        if (xs.length < blocks) {
          xs = new float[blocks];
        }
        Int8Panels.prepareDecode(x, cols, stride, xd, xs);
        x1 = xd;
      }
      // Work items of as many panels as the format's widest decoding kernel takes.
      int per = decodePanels(w);
      decodeTask.set(x1, w, out, bt, bias, per);
      pool.parallelFor((w.panels() + per - 1) / per, 1, decodeTask);
      return;
    }
    int groups = plan(n, w.format() == PackedMatrix.Format.F16 ? 6 : 4);
    int padded = groupStart[groups - 1] + groupSize[groups - 1];
    if (xp.length < padded * stride) {
      xp = new float[padded * stride];
    }
    interleaveTask.set(x, n, cols, stride, xp);
    // NOTE: the layout pass costs about as much as 2% of a large prefill's GEMM; on one thread the
    // others would wait it out. A small batch is not worth a hand-off (a few microseconds).
    pool.parallelFor(groups, n * cols >= PARALLEL_INTERLEAVE ? 1 : groups, interleaveTask);
    if (int8) {
      if (xs.length < padded * blocks) {
        xs = new float[padded * blocks];
      }
      for (int t = 0; t < n; t++) {
        Int8Panels.blockSums(x, t * cols, cols, blocks, xs, t * blocks);
      }
      Arrays.fill(xs, n * blocks, padded * blocks, 0f); // the padding tokens of the last group
    }
    gemmTask.set(xp, stride, n, w, out, groups, Math.max(6, BLOCK_FLOATS / cols), bt, bias);
    pool.parallelFor(w.panels(), 1, gemmTask);
  }

  /**
   * One token × work items {@code [from, to)} of {@link #decodePanels} panels. NOTE: one reusable
   * task object per kind of call (its arguments set before each call, published to the pool's
   * threads by the pool's volatile hand-off) rather than a capturing lambda, which allocated one
   * object per call: about 80 per decode step.
   */
  private final class DecodeTask implements ParallelTask {
    private int per; // panels per work item
    private float[] x;
    private PackedMatrix w;
    private float[] out;
    private DType bt;
    private MemorySegment bias;

    void set(float[] x, PackedMatrix w, float[] out, DType bt, MemorySegment bias, int per) {
      this.per = per;
      this.x = x;
      this.w = w;
      this.out = out;
      this.bt = bt;
      this.bias = bias;
    }

    @Override
    public void run(int from, int to, int worker) {
      int rows = w.rows();
      decode(x, w, out, per * from, Math.min(per * to, w.panels()), worker);
      addBias(out, 1, rows, bt, bias, per * from * P, Math.min(per * to * P, rows));
    }
  }

  /** Several tokens × panels {@code [from, to)}, token block by token block. */
  private final class GemmTask implements ParallelTask {
    private float[] packed;
    private int stride;
    private int n;
    private PackedMatrix w;
    private float[] out;
    private int groups;
    private int tokensPerBlock;
    private DType bt;
    private MemorySegment bias;

    void set(
        float[] packed,
        int stride,
        int n,
        PackedMatrix w,
        float[] out,
        int groups,
        int tokensPerBlock,
        DType bt,
        MemorySegment bias) {
      this.packed = packed;
      this.stride = stride;
      this.n = n;
      this.w = w;
      this.out = out;
      this.groups = groups;
      this.tokensPerBlock = tokensPerBlock;
      this.bt = bt;
      this.bias = bias;
    }

    @Override
    public void run(int from, int to, int worker) {
      for (int g0 = 0; g0 < groups; ) {
        int g1 = g0 + 1;
        while (g1 < groups && groupStart[g1] + groupSize[g1] - groupStart[g0] <= tokensPerBlock) {
          g1++;
        }
        for (int p = from; p < to; p++) {
          if (w.format() == PackedMatrix.Format.INT8) {
            dequantizeInt8(w, p, worker); // once for every group of the token block
          }
          for (int g = g0; g < g1; g++) {
            tile(packed, stride, groupStart[g], groupSize[g], n, w, p, out, worker);
          }
        }
        g0 = g1;
      }
      addBias(out, n, w.rows(), bt, bias, from * P, Math.min(to * P, w.rows()));
    }
  }

  /**
   * Panels per decoding work item: four for bf16 and f32 (their four-panel kernels), two for f16
   * and int8, whose widening limits them more than their weight streams (int8 measured no faster
   * with four), and two wherever four would leave fewer than two items per thread (a small matrix
   * on many cores). NOTE: not eight per thread: on 2 threads that put attn.c_attn, attn.c_proj and
   * mlp.c_proj (48-56 panels) back on pairs, 60% of a layer's weights.
   */
  private int decodePanels(PackedMatrix w) {
    return hasFourPanelKernel(w.format()) && w.panels() >= 4 * 2 * pool.parallelism() ? 4 : 2;
  }

  /** Whether the format has a four-panel decoding kernel (bf16 and f32). */
  private static boolean hasFourPanelKernel(PackedMatrix.Format format) {
    return format == PackedMatrix.Format.BF16 || format == PackedMatrix.Format.F32;
  }

  /**
   * Splits {@code n} tokens into groups of {@code big} (4 or 6), then four, wasting the fewest
   * padded slots (with six: 32 = 4×6 + 2×4); fills {@link #groupStart} and {@link #groupSize} and
   * returns the number of groups.
   */
  private int plan(int n, int big) {
    int best6 = 0;
    int bestWaste = Integer.MAX_VALUE;
    for (int n6 = n / big; n6 >= Math.max(0, n / big - 2); n6--) {
      int n4 = (n - big * n6 + 3) / 4;
      int waste = big * n6 + 4 * n4 - n;
      if (waste < bestWaste) {
        bestWaste = waste;
        best6 = n6;
      }
    }
    int n4 = (n - big * best6 + 3) / 4;
    int groups = best6 + n4;
    if (groupStart.length < groups) {
      groupStart = new int[groups];
      groupSize = new int[groups];
    }
    int t = 0;
    for (int g = 0; g < groups; g++) {
      groupSize[g] = g < best6 ? big : 4;
      groupStart[g] = t;
      t += groupSize[g];
    }
    return groups;
  }

  /**
   * {@code size} tokens from {@code t0} × panel p, through the scratch tile when either is partial.
   */
  private void tile(
      float[] xpk,
      int stride,
      int t0,
      int size,
      int n,
      PackedMatrix w,
      int p,
      float[] out,
      int worker) {
    int rows = w.rows();
    int cols = w.cols();
    int r0 = p * P;
    boolean full = t0 + size <= n && r0 + P <= rows;
    float[] dst = full ? out : scratch[worker];
    int o0 = full ? t0 * rows + r0 : 0;
    int os = full ? rows : P;
    int xb = t0 * stride;
    int blocks = Int8Quantizer.blocks(cols);
    long wb = w.panelOffset(p);
    float[] q = int8Q[worker];
    float[] sc = int8S[worker];
    if (w.format() == PackedMatrix.Format.INT8) {
      for (int t = 0; t < size; t++) {
        Arrays.fill(dst, o0 + t * os, o0 + t * os + P, 0f); // the int8 tiles add into it
      }
    }
    if (size == 6) {
      F16Panels.tile6(xpk, xb, cols, w.data(), wb, dst, o0, os);
    } else {
      switch (w.format()) {
        case BF16 -> Bf16Panels.tile4(xpk, xb, cols, w.data(), wb, dst, o0, os);
        case F16 -> F16Panels.tile4(xpk, xb, cols, w.data(), wb, dst, o0, os);
        case F32 -> F32Panels.tile4(xpk, xb, cols, w.data(), wb, dst, o0, os);
        case INT8 -> Int8Panels.tile4(xpk, xb, blocks, q, sc, xs, t0 * blocks, dst, o0, os);
      }
    }
    if (!full) {
      int tn = Math.min(size, n - t0);
      int rn = Math.min(P, rows - r0);
      for (int t = 0; t < tn; t++) {
        System.arraycopy(dst, t * P, out, (t0 + t) * rows + r0, rn);
      }
    }
  }

  /**
   * Widens int8 panel p into this worker's float scratch for {@link Int8Panels#tile4}; each worker
   * grows only its own scratch, the first time it meets a wider matrix.
   */
  private void dequantizeInt8(PackedMatrix w, int p, int worker) {
    int blocks = Int8Quantizer.blocks(w.cols());
    int qLen = blocks * Int8Quantizer.BLOCK * P;
    int sLen = blocks * P;
    if (int8Q[worker].length < qLen) {
      int8Q[worker] = new float[qLen];
    }
    if (int8S[worker].length < sLen) {
      int8S[worker] = new float[sLen];
    }
    Int8Panels.dequantize(w.data(), w.panelOffset(p), blocks, int8Q[worker], int8S[worker]);
  }

  /**
   * One token × panels {@code [p0, p1)}, four at a time for bf16 and f32, then two at a time
   * ({@code x} padded to whole blocks for int8).
   */
  private void decode(float[] x, PackedMatrix w, float[] out, int p0, int p1, int worker) {
    int rows = w.rows();
    int cols = w.cols();
    int blocks = Int8Quantizer.blocks(cols);
    MemorySegment d = w.data();
    int p = p0;
    if (hasFourPanelKernel(w.format())) {
      for (; p + 4 <= p1 && (p + 4) * P <= rows; p += 4) {
        long wb = w.panelOffset(p);
        if (w.format() == PackedMatrix.Format.BF16) {
          Bf16Panels.tile1x4(x, 0, cols, d, wb, out, p * P);
        } else {
          F32Panels.tile1x4(x, 0, cols, d, wb, out, p * P);
        }
      }
    }
    for (; p + 2 <= p1 && (p + 2) * P <= rows; p += 2) {
      long wb = w.panelOffset(p);
      switch (w.format()) {
        case BF16 -> Bf16Panels.tile1x2(x, 0, cols, d, wb, out, p * P);
        case F16 -> F16Panels.tile1x2(x, 0, cols, d, wb, out, p * P);
        case F32 -> F32Panels.tile1x2(x, 0, cols, d, wb, out, p * P);
        case INT8 -> Int8Panels.tile1x2(x, xs, blocks, d, wb, out, p * P);
      }
    }
    for (; p < p1; p++) {
      int r0 = p * P;
      boolean full = r0 + P <= rows;
      float[] dst = full ? out : scratch[worker];
      int o0 = full ? r0 : 0;
      long wb = w.panelOffset(p);
      switch (w.format()) {
        case BF16 -> Bf16Panels.tile1(x, 0, cols, d, wb, dst, o0);
        case F16 -> F16Panels.tile1(x, 0, cols, d, wb, dst, o0);
        case F32 -> F32Panels.tile1(x, 0, cols, d, wb, dst, o0);
        case INT8 -> Int8Panels.tile1(x, xs, blocks, d, wb, dst, o0);
      }
      if (!full) {
        System.arraycopy(dst, 0, out, r0, rows - r0);
      }
    }
  }

  /** Groups {@code [from, to)} of {@link #interleave}. */
  private final class InterleaveTask implements ParallelTask {
    private float[] x;
    private int n;
    private int cols;
    private int stride;
    private float[] xp;

    void set(float[] x, int n, int cols, int stride, float[] xp) {
      this.x = x;
      this.n = n;
      this.cols = cols;
      this.stride = stride;
      this.xp = xp;
    }

    @Override
    public void run(int from, int to, int worker) {
      interleave(x, n, cols, stride, from, to, xp);
    }
  }

  /**
   * Lays the tokens out group by group: group g (of {@code [g0, g1)}) holds {@code xp[start·stride
   * + k·size + t]}, zero for the padding columns {@code cols ≤ k < stride}.
   */
  private void interleave(float[] x, int n, int cols, int stride, int g0, int g1, float[] xp) {
    for (int g = g0; g < g1; g++) {
      int t0 = groupStart[g];
      int size = groupSize[g];
      int base = t0 * stride;
      Arrays.fill(xp, base + cols * size, base + stride * size, 0f);
      for (int t = 0; t < size; t++) {
        int token = t0 + t;
        if (token < n) {
          int src = token * cols;
          for (int k = 0; k < cols; k++) {
            xp[base + k * size + t] = x[src + k];
          }
        } else {
          for (int k = 0; k < cols; k++) {
            xp[base + k * size + t] = 0f;
          }
        }
      }
    }
  }

  private static void addBias(
      float[] out, int n, int rows, DType bt, MemorySegment bias, int c0, int c1) {
    if (bias == null) {
      return;
    }
    int L = VectorKernels.L;
    for (int t = 0; t < n; t++) {
      int o = t * rows;
      int c = c0;
      for (; c + L <= c1; c += L) {
        FloatVector.fromArray(VectorKernels.F, out, o + c)
            .add(VectorKernels.load(bt, bias, c))
            .intoArray(out, o + c);
      }
      for (; c < c1; c++) {
        out[o + c] += VectorKernels.get(bt, bias, c);
      }
    }
  }
}
