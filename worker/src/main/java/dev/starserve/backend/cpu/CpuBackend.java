package dev.starserve.backend.cpu;

import dev.starserve.backend.AttentionShape;
import dev.starserve.backend.BatchLayout;
import dev.starserve.backend.Buffer;
import dev.starserve.backend.KvCache;
import dev.starserve.backend.Matrix;
import dev.starserve.backend.ParallelTask;
import dev.starserve.backend.Quantization;
import dev.starserve.backend.host.Gelu;
import dev.starserve.backend.host.HostBackend;
import dev.starserve.backend.host.HostBuffer;
import dev.starserve.backend.host.HostKvCache;
import dev.starserve.backend.host.HostMatrix;
import dev.starserve.checkpoint.TensorView;
import dev.starserve.model.Activation;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;

/**
 * The CPU backend: Vector API kernels over heap activations and weights mapped from the checkpoint,
 * split over the engine's own {@link ComputePool}.
 *
 * <p>Parallel split per operation: linear layers by panels of output rows ({@link PanelGemm}: each
 * thread reads a disjoint slice of the weight, packed at load by {@link PackedMatrix}, as stored or
 * quantized to int8), attention by (token, head) pairs, element-wise work by rows.
 */
public final class CpuBackend extends HostBackend {
  private static final float SQRT_2_OVER_PI = (float) Math.sqrt(2.0 / Math.PI);

  private final ComputePool pool;
  private final WeightSlab slab = new WeightSlab(); // the packed weights of every linear layer
  private float[][] scores; // [worker][context] attention scratch, grown outside parallel regions
  private final PanelGemm gemm;
  // Multi-query attention scratch per worker: one chunk's scores of every head lane, the
  // transposed query, one token's chunk results (grown outside parallel regions).
  private float[][] mqaScores;
  private float[][] mqaQuery;
  private float[][] mqaPart; // [worker][chunks × unit] one token's chunk results
  private float[] mqaShared = new float[0]; // [units × unit] every chunk's result (split calls)
  private int[] mqaUnitStart = new int[0]; // [tokens + 1] first chunk of each token
  private int[] mqaUnitToken = new int[0]; // [units] the token of each chunk
  private final LayerNormTask layerNormTask = new LayerNormTask();
  private final ActivationTask activationTask = new ActivationTask();
  private final MqaCall mqa = new MqaCall();
  private final ParallelTask mqaWholeTokens = mqa::wholeTokens;
  private final ParallelTask mqaChunks = mqa::chunkRange;
  private final ParallelTask mqaMerges = mqa::mergeRange;

  public CpuBackend(int threads) {
    this.pool = new ComputePool(threads);
    this.gemm = new PanelGemm(pool);
    this.scores = new float[threads][256];
    this.mqaScores = new float[threads][256];
    this.mqaQuery = new float[threads][0];
    this.mqaPart = new float[threads][0];
  }

  @Override
  public String name() {
    return "cpu";
  }

  public int threads() {
    return pool.parallelism();
  }

  @Override
  public void layerNorm(Buffer x, int n, Matrix gamma, Matrix beta, float eps, Buffer out) {
    float[] in = HostBuffer.of(x).data();
    float[] o = HostBuffer.of(out).data();
    HostMatrix g = HostMatrix.of(gamma);
    HostMatrix b = HostMatrix.of(beta);
    layerNormTask.set(in, o, g, b, eps, x.cols());
    pool.parallelFor(n, 4, layerNormTask);
  }

  /**
   * Rows {@code [from, to)} of a LayerNorm. NOTE: this backend's parallel calls go through reusable
   * task objects (arguments set before each call, published by the pool's volatile hand-off), not
   * capturing lambdas, which allocated one object per call on the engine thread, about 160 per
   * decode step (see also {@link PanelGemm}).
   */
  private static final class LayerNormTask implements ParallelTask {
    private float[] in;
    private float[] o;
    private HostMatrix g;
    private HostMatrix b;
    private float eps;
    private int d;

    void set(float[] in, float[] o, HostMatrix g, HostMatrix b, float eps, int d) {
      this.in = in;
      this.o = o;
      this.g = g;
      this.b = b;
      this.eps = eps;
      this.d = d;
    }

    @Override
    public void run(int from, int to, int worker) {
      for (int t = from; t < to; t++) {
        layerNormRow(in, t * d, d, g, b, eps, o);
      }
    }
  }

  private static void layerNormRow(
      float[] in, int off, int d, HostMatrix g, HostMatrix b, float eps, float[] o) {
    int bound = VectorKernels.F.loopBound(d);
    FloatVector acc = FloatVector.zero(VectorKernels.F);
    int c = 0;
    for (; c < bound; c += VectorKernels.L) {
      acc = acc.add(FloatVector.fromArray(VectorKernels.F, in, off + c));
    }
    float sum = VectorMath.sum(acc);
    for (; c < d; c++) {
      sum += in[off + c];
    }
    float mean = sum / d;
    FloatVector mv = FloatVector.broadcast(VectorKernels.F, mean);
    FloatVector vacc = FloatVector.zero(VectorKernels.F);
    c = 0;
    for (; c < bound; c += VectorKernels.L) {
      FloatVector dev = FloatVector.fromArray(VectorKernels.F, in, off + c).sub(mv);
      vacc = dev.fma(dev, vacc);
    }
    float var = VectorMath.sum(vacc);
    for (; c < d; c++) {
      float dev = in[off + c] - mean;
      var += dev * dev;
    }
    float inv = (float) (1.0 / Math.sqrt(var / d + eps));
    FloatVector iv = FloatVector.broadcast(VectorKernels.F, inv);
    c = 0;
    for (; c < bound; c += VectorKernels.L) {
      FloatVector gv = VectorKernels.load(g.dtype(), g.data(), c);
      FloatVector bv = VectorKernels.load(b.dtype(), b.data(), c);
      FloatVector.fromArray(VectorKernels.F, in, off + c)
          .sub(mv)
          .mul(iv)
          .fma(gv, bv)
          .intoArray(o, off + c);
    }
    for (; c < d; c++) {
      o[off + c] =
          (in[off + c] - mean) * inv * VectorKernels.get(g.dtype(), g.data(), c)
              + VectorKernels.get(b.dtype(), b.data(), c);
    }
  }

  /**
   * Mapped tensors of up to this many bytes are copied at upload: biases and LayerNorm parameters
   * always, and for tiny_starcoder_py also the position table (12.6 MB), not its 75 MB token table.
   */
  static final long COPIED_TENSOR_BYTES = 16L << 20;

  /**
   * A mapped tensor of up to {@link #COPIED_TENSOR_BYTES} is copied out of the checkpoint, and its
   * pages handed back, so that serving faults on the checkpoint only for the rows of the larger
   * embedding tables. NOTE: the page cache can hold the file in large folios, and then one fault on
   * a bias maps a whole folio around it: with the biases read in place, the first request made 88
   * MiB of the packed layers' checkpoint pages resident again (tiny_starcoder_py, 2026-11-29).
   */
  @Override
  public Matrix upload(TensorView tensor) {
    MemorySegment src = tensor.data();
    if (!src.isMapped() || src.byteSize() > COPIED_TENSOR_BYTES) {
      return super.upload(tensor);
    }
    HostMatrix view = HostMatrix.of(tensor);
    MemorySegment copy = Arena.ofAuto().allocate(src.byteSize(), 64);
    copy.copyFrom(src);
    src.unload();
    return new HostMatrix(copy, view.dtype(), view.rows(), view.cols());
  }

  @Override
  public Matrix uploadLinear(TensorView tensor) {
    PackedMatrix packed = PackedMatrix.pack(HostMatrix.of(tensor), slab, pool);
    // NOTE: the kernels read the packed copy only, so the checkpoint's pages of this tensor are
    // handed back to the OS (resident once, not twice); a page something else still reads (a tied
    // wte's embedding rows) is simply read in again from the page cache.
    if (tensor.data().isMapped()) {
      tensor.data().unload();
    }
    return packed;
  }

  @Override
  public Matrix uploadLinear(TensorView tensor, Quantization quantization) {
    return switch (quantization) {
      case NONE -> uploadLinear(tensor);
      case INT8 -> {
        try {
          PackedMatrix packed = PackedMatrix.packInt8(HostMatrix.of(tensor), slab, pool);
          if (tensor.data().isMapped()) {
            tensor.data().unload(); // as for bf16: the kernels read the int8 panels only
          }
          yield packed;
        } catch (IllegalArgumentException e) {
          throw new IllegalArgumentException(
              "cannot quantize " + tensor.name() + " to int8: " + e.getMessage(), e);
        }
      }
    };
  }

  @Override
  public void linear(Buffer x, int n, Matrix w, Matrix bias, Buffer out) {
    PackedMatrix wm = PackedMatrix.of(w);
    HostMatrix bm = bias == null ? null : HostMatrix.of(bias);
    if (x.cols() != wm.cols() || out.cols() != wm.rows()) {
      throw new IllegalArgumentException(
          "linear: input width "
              + x.cols()
              + " / output width "
              + out.cols()
              + " do not match weight "
              + wm.rows()
              + "×"
              + wm.cols());
    }
    gemm.linear(
        HostBuffer.of(x).data(),
        n,
        wm,
        bm == null ? null : bm.dtype(),
        bm == null ? null : bm.data(),
        HostBuffer.of(out).data());
  }

  @Override
  public void activation(Buffer x, int n, Activation kind) {
    float[] a = HostBuffer.of(x).data();
    int d = x.cols();
    // NOTE: split by rows, never inside one: every row then takes the same vector-body/scalar-tail
    // path whatever the batch size, so a token's activations do not depend on its batch.
    activationTask.set(a, d, kind);
    pool.parallelFor(n, 1, activationTask);
  }

  /** Rows {@code [from, to)} of an activation, in place. */
  private static final class ActivationTask implements ParallelTask {
    private float[] a;
    private int d;
    private Activation kind;

    void set(float[] a, int d, Activation kind) {
      this.a = a;
      this.d = d;
      this.kind = kind;
    }

    @Override
    public void run(int from, int to, int worker) {
      for (int row = from; row < to; row++) {
        int lo = row * d;
        int hi = lo + d;
        switch (kind) {
          case GELU_TANH -> geluTanh(a, lo, hi);
          case GELU_ERF -> {
            for (int i = lo; i < hi; i++) {
              a[i] = Gelu.erf(a[i]);
            }
          }
          case RELU -> {
            for (int i = lo; i < hi; i++) {
              a[i] = Math.max(0f, a[i]);
            }
          }
        }
      }
    }
  }

  /**
   * GELU (tanh form) in place: {@code 0.5·x·(1 + tanh(u)) = x / (1 + e^(−2u))} for the vector body
   * (the same function, with no cancellation where {@code tanh(u)} nears −1, and {@link
   * VectorMath#exp} rather than the JIT-dependent {@code TANH}), {@link Gelu#tanh} for the tail.
   */
  private static void geluTanh(float[] a, int from, int to) {
    int i = from;
    int bound = from + VectorKernels.F.loopBound(to - from);
    for (; i < bound; i += VectorKernels.L) {
      FloatVector x = FloatVector.fromArray(VectorKernels.F, a, i);
      FloatVector inner = x.mul(x).mul(x).mul(0.044715f).add(x).mul(SQRT_2_OVER_PI);
      x.div(VectorMath.exp(inner.mul(-2f)).add(1f)).intoArray(a, i);
    }
    for (; i < to; i++) {
      a[i] = Gelu.tanh(a[i]);
    }
  }

  @Override
  public void addInPlace(Buffer x, Buffer y, int n) {
    float[] a = HostBuffer.of(x).data();
    float[] b = HostBuffer.of(y).data();
    int len = n * x.cols();
    int bound = VectorKernels.F.loopBound(len);
    int i = 0;
    for (; i < bound; i += VectorKernels.L) {
      FloatVector.fromArray(VectorKernels.F, a, i)
          .add(FloatVector.fromArray(VectorKernels.F, b, i))
          .intoArray(a, i);
    }
    for (; i < len; i++) {
      a[i] += b[i];
    }
  }

  @Override
  public void attention(
      Buffer qkv, BatchLayout batch, AttentionShape shape, KvCache cache, int layer, Buffer out) {
    float[] in = HostBuffer.of(qkv).data();
    float[] o = HostBuffer.of(out).data();
    HostKvCache kv = HostKvCache.of(cache);
    int hd = shape.headDim();
    int qkvDim = shape.qkvDim();
    int kvDim = shape.kvDim();
    int outDim = shape.outDim();
    int n = batch.numTokens();
    int maxLen = 0;
    for (int t = 0; t < n; t++) {
      int slot = batch.slotMapping()[t];
      for (int kh = 0; kh < shape.kvHeads(); kh++) {
        kv.storeKey(layer, slot * kvDim + kh * hd, in, t * qkvDim + shape.kOffset(kh), hd);
        kv.storeValue(layer, slot * kvDim + kh * hd, in, t * qkvDim + shape.vOffset(kh), hd);
      }
      maxLen = Math.max(maxLen, batch.positions()[t] + 1);
    }
    if (scores[0].length < maxLen) {
      float[][] grown = new float[scores.length][Math.max(maxLen, scores[0].length * 2)];
      scores = grown;
    }
    if (shape.multiQuery()) {
      multiQueryAttention(in, batch, shape, kv, layer, maxLen, o);
      return;
    }
    // NOTE: one pair of arrays is null; the storage is picked per position with a null test (a
    // branch that always goes the same way) rather than a type test inside the loop.
    float[] keysF = kv instanceof HostKvCache.F32Cache f ? f.keys(layer) : null;
    float[] valuesF = kv instanceof HostKvCache.F32Cache f ? f.values(layer) : null;
    short[] keysB = kv instanceof HostKvCache.Bf16Cache b ? b.keys(layer) : null;
    short[] valuesB = kv instanceof HostKvCache.Bf16Cache b ? b.values(layer) : null;
    float[][] scratch = scores;
    int nHead = shape.nHead();
    float scale = shape.scale();
    int bs = batch.blockSize();
    pool.parallelFor(
        n * nHead,
        1,
        (from, to, worker) -> {
          float[] s = scratch[worker];
          for (int i = from; i < to; i++) {
            int t = i / nHead;
            int h = i % nHead;
            int seq = batch.tokenSeq()[t];
            int len = batch.positions()[t] + 1;
            int kvOff = shape.kvHeadOf(h) * hd;
            int q = t * qkvDim + shape.qOffset(h);
            int[] table = batch.blockTables()[seq];
            // Positions block by block: slot = table[b]·bs + offset, with no division per position.
            float max =
                keysF != null
                    ? VectorKernels.scores(in, q, len, table, bs, kvDim, kvOff, keysF, scale, s, hd)
                    : KvBf16Kernels.scores(
                        in, q, len, table, bs, kvDim, kvOff, keysB, scale, s, hd);
            float sum = 0;
            for (int j = 0; j < len; j++) {
              float e = (float) Math.exp(s[j] - max);
              s[j] = e;
              sum += e;
            }
            int dst = t * outDim + h * hd;
            float inv = 1f / sum;
            if (valuesF != null) {
              VectorKernels.weightedSum(
                  s, len, table, 0, bs, kvDim, kvOff, valuesF, inv, o, dst, hd);
            } else {
              KvBf16Kernels.weightedSum(
                  s, len, table, 0, bs, kvDim, kvOff, valuesB, inv, o, dst, hd);
            }
          }
        });
  }

  /**
   * Multi-query attention with the heads in vector lanes ({@link MqaKernels}). Each token's
   * positions are cut into chunks of {@link #MQA_CHUNK} (rounded to whole blocks); a chunk gives
   * partial results (scores of every head at once, the softmax numerators against the chunk's own
   * maximum, one weighted sum of value rows per head), and {@link MqaKernels#merge} joins a token's
   * chunks in order. With enough tokens to share out, each thread takes whole tokens and runs their
   * chunks one after another; with fewer tokens than twice the threads (one stream decoding a long
   * context) the chunks of all tokens are shared out first and the merges run after. Either way a
   * token's arithmetic is the same, so its result does not depend on its batch.
   */
  private void multiQueryAttention(
      float[] in,
      BatchLayout batch,
      AttentionShape shape,
      HostKvCache kv,
      int layer,
      int maxLen,
      float[] o) {
    MqaCall c = mqa;
    c.in = in;
    c.o = o;
    c.batch = batch;
    c.nHead = shape.nHead();
    c.hd = shape.headDim();
    c.hp = MqaKernels.headLanes(c.nHead);
    c.qkvDim = shape.qkvDim();
    c.kvDim = shape.kvDim();
    c.outDim = shape.outDim();
    c.q0 = shape.qOffset(0);
    c.scale = shape.scale();
    c.bs = batch.blockSize();
    c.chunk = Math.max(c.bs, MQA_CHUNK / c.bs * c.bs);
    c.unit = c.nHead * c.hd + 2 * c.hp;
    c.keysF = kv instanceof HostKvCache.F32Cache f ? f.keys(layer) : null;
    c.valuesF = kv instanceof HostKvCache.F32Cache f ? f.values(layer) : null;
    c.keysB = kv instanceof HostKvCache.Bf16Cache b ? b.keys(layer) : null;
    c.valuesB = kv instanceof HostKvCache.Bf16Cache b ? b.values(layer) : null;
    int maxChunks = (maxLen + c.chunk - 1) / c.chunk;
    int threads = mqaScores.length;
    if (mqaScores[0].length < c.chunk * c.hp
        || mqaQuery[0].length < c.hd * c.hp
        || mqaPart[0].length < maxChunks * c.unit) {
      mqaScores = new float[threads][Math.max(c.chunk * c.hp, mqaScores[0].length)];
      mqaQuery = new float[threads][Math.max(c.hd * c.hp, mqaQuery[0].length)];
      mqaPart = new float[threads][Math.max(maxChunks * c.unit, 2 * mqaPart[0].length)];
    }
    int n = batch.numTokens();
    if (n >= 2 * pool.parallelism() || maxChunks == 1) {
      pool.parallelFor(n, 1, mqaWholeTokens);
      return;
    }
    if (mqaUnitStart.length < n + 1) {
      mqaUnitStart = new int[n + 1];
    }
    int units = 0;
    for (int t = 0; t < n; t++) {
      mqaUnitStart[t] = units;
      units += c.chunks(t);
    }
    mqaUnitStart[n] = units;
    if (mqaUnitToken.length < units) {
      mqaUnitToken = new int[Math.max(units, 2 * mqaUnitToken.length)];
    }
    for (int t = 0; t < n; t++) {
      for (int u = mqaUnitStart[t]; u < mqaUnitStart[t + 1]; u++) {
        mqaUnitToken[u] = t;
      }
    }
    if (mqaShared.length < units * c.unit) {
      mqaShared = new float[Math.max(units * c.unit, 2 * mqaShared.length)];
    }
    pool.parallelFor(units, 1, mqaChunks);
    pool.parallelFor(n, 1, mqaMerges);
  }

  /** Positions per multi-query attention chunk (rounded to whole KV blocks). */
  static final int MQA_CHUNK = 256;

  /**
   * The arguments of the multi-query attention call in progress, set by the engine thread before
   * each call (published to the pool's threads by its volatile hand-off), and the per-chunk work.
   */
  private final class MqaCall {
    float[] in;
    float[] o;
    BatchLayout batch;
    int nHead;
    int hd;
    int hp;
    int qkvDim;
    int kvDim;
    int outDim;
    int q0;
    float scale;
    int bs;
    int chunk;
    int unit; // floats of one chunk's partial result
    float[] keysF;
    float[] valuesF;
    short[] keysB;
    short[] valuesB;

    int chunks(int t) {
      return (batch.positions()[t] + chunk) / chunk; // ceil((position + 1) / chunk)
    }

    /** Chunk r of token t into {@code part[off .. off + unit)}, with worker's scratch. */
    void partial(int t, int r, float[] part, int off, int worker) {
      int len = batch.positions()[t] + 1;
      int j0 = r * chunk;
      int clen = Math.min(chunk, len - j0);
      int[] table = batch.blockTables()[batch.tokenSeq()[t]];
      float[] qt = mqaQuery[worker];
      float[] s = mqaScores[worker];
      float[] p = scores[worker];
      MqaKernels.transposeQuery(in, t * qkvDim + q0, nHead, hd, scale, qt, hp);
      if (keysF != null) {
        MqaKernels.scores(qt, hp, hd, j0, clen, table, bs, kvDim, keysF, s);
      } else {
        MqaKernels.scores(qt, hp, hd, j0, clen, table, bs, kvDim, keysB, s);
      }
      int mOff = off + nHead * hd;
      MqaKernels.softmax(s, clen, hp, part, mOff, part, mOff + hp);
      int b0 = j0 / bs;
      for (int h = 0; h < nHead; h++) {
        MqaKernels.gather(s, clen, hp, h, p);
        int dst = off + h * hd;
        if (valuesF != null) {
          VectorKernels.weightedSum(p, clen, table, b0, bs, kvDim, 0, valuesF, 1f, part, dst, hd);
        } else {
          KvBf16Kernels.weightedSum(p, clen, table, b0, bs, kvDim, 0, valuesB, 1f, part, dst, hd);
        }
      }
    }

    /**
     * Whole tokens {@code [from, to)}: their chunks in order into worker's scratch, then merged.
     */
    void wholeTokens(int from, int to, int worker) {
      float[] part = mqaPart[worker];
      for (int t = from; t < to; t++) {
        int chunks = chunks(t);
        for (int r = 0; r < chunks; r++) {
          partial(t, r, part, r * unit, worker);
        }
        MqaKernels.merge(part, 0, chunks, unit, nHead, hd, hp, o, t * outDim);
      }
    }

    /**
     * Chunks {@code [from, to)} of the call's numbering (token by token) into the shared scratch.
     */
    void chunkRange(int from, int to, int worker) {
      for (int u = from; u < to; u++) {
        int t = mqaUnitToken[u];
        partial(t, u - mqaUnitStart[t], mqaShared, u * unit, worker);
      }
    }

    /** Merges of tokens {@code [from, to)} from the shared scratch. */
    void mergeRange(int from, int to, int worker) {
      for (int t = from; t < to; t++) {
        int u0 = mqaUnitStart[t];
        MqaKernels.merge(
            mqaShared, u0 * unit, mqaUnitStart[t + 1] - u0, unit, nHead, hd, hp, o, t * outDim);
      }
    }
  }

  @Override
  public void parallelFor(int n, ParallelTask task) {
    pool.parallelFor(n, 1, task);
  }

  @Override
  public void close() {
    pool.close();
  }
}
