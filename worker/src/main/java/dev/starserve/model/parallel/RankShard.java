package dev.starserve.model.parallel;

import dev.starserve.backend.AttentionShape;
import dev.starserve.backend.Backend;
import dev.starserve.backend.BatchLayout;
import dev.starserve.backend.Buffer;
import dev.starserve.backend.KvCache;
import dev.starserve.backend.KvDType;
import dev.starserve.backend.Matrix;
import dev.starserve.backend.Quantization;
import dev.starserve.checkpoint.TensorView;
import dev.starserve.model.GptBigCodeConfig;
import dev.starserve.model.GptBigCodeWeights;
import dev.starserve.model.LayerWeights;
import java.util.function.Function;

/**
 * One tensor-parallel rank: its slice of every layer on its own backend, and its part of the
 * forward pass. With {@code N} ranks, rank {@code r} holds
 *
 * <pre>
 * c_attn      rows of its H/N query heads (+ the K/V rows)      [E/N + 2·kvDim_r × E]
 *               multi-query: q rows r·E/N..(r+1)·E/N, then the one K and V head (replicated)
 *               multi-head:  the [q k v] row groups of its H/N heads (contiguous in HF's layout)
 * attn.c_proj input columns r·E/N..(r+1)·E/N                     [E × E/N]
 * c_fc        rows r·inner/N..(r+1)·inner/N                        [inner/N × E]
 * mlp.c_proj  input columns r·inner/N..(r+1)·inner/N               [E × inner/N]
 * lm_head     rows r·V/N..(r+1)·V/N (its slice of the vocabulary)  [V_r × E]
 * wte, wpe, LayerNorms, ln_f                                       replicated
 * </pre>
 *
 * The two c_proj outputs are partial sums: an {@link AllReduce} adds them up over the ranks, and
 * their biases are added once, by rank 0. The residual stream {@code x} is replicated: every rank
 * holds the same values, since it starts from the same embedding and adds the same all-reduced
 * sums.
 */
final class RankShard implements AutoCloseable {
  private final int rank;
  private final GptBigCodeConfig config;
  private final Backend backend;
  private final AttentionShape shape; // this rank's heads
  private final int innerWidth; // inner / N
  private final int vocabFrom;
  private final int vocabTo;

  private final Matrix wte; // [vocab × E]
  private final Matrix wpe; // [n_positions × E]
  private final Layer[] layers;
  private final Matrix lnFWeight; // [1 × E]
  private final Matrix lnFBias; // [1 × E]
  private final Matrix lmHead; // [V_r × E]

  private final TensorSlices slices = new TensorSlices(); // the copied pieces the backend reads
  private Workspace ws;
  private float[] logitScratch = new float[0]; // [R × V_r] read back before scattering

  /** One block's slice as the backend holds it; the c_proj biases are null except on rank 0. */
  private record Layer(
      Matrix ln1Weight, // [1 × E]
      Matrix ln1Bias, // [1 × E]
      Matrix cAttnWeight, // [E/N + 2·kvDim_r × E]
      Matrix cAttnBias, // [1 × E/N + 2·kvDim_r]
      Matrix attnCProjWeight, // [E × E/N]
      Matrix attnCProjBias, // [1 × E] on rank 0, else null
      Matrix ln2Weight, // [1 × E]
      Matrix ln2Bias, // [1 × E]
      Matrix cFcWeight, // [inner/N × E]
      Matrix cFcBias, // [1 × inner/N]
      Matrix mlpCProjWeight, // [E × inner/N]
      Matrix mlpCProjBias) {} // [1 × E] on rank 0, else null

  private record Workspace(
      int tokens,
      int logitRows,
      Buffer x, // [T × E]      the residual stream (replicated)
      Buffer a, // [T × E]
      Buffer qkv, // [T × E/N + 2·kvDim_r]
      Buffer att, // [T × E/N]
      Buffer projA, // [T × E]     partial attn.c_proj output (see AllReduce: two alternate)
      Buffer projB, // [T × E]     partial mlp.c_proj output
      Buffer sum, // [T × E]       an all-reduced c_proj output
      Buffer m, // [T × inner/N]
      Buffer sel, // [R × E]
      Buffer selNorm, // [R × E]
      Buffer logits) {} // [R × V_r]

  RankShard(
      int rank,
      int size,
      GptBigCodeConfig config,
      GptBigCodeWeights weights,
      Backend backend,
      Quantization quantization) {
    this.rank = rank;
    this.config = config;
    this.backend = backend;
    int e = config.nEmbd();
    int hd = config.headDim();
    int heads = config.nHead() / size;
    float scale = config.scaleAttnWeights() ? (float) (1.0 / Math.sqrt(hd)) : 1f;
    this.shape = new AttentionShape(heads, config.multiQuery() ? 1 : heads, hd, scale);
    long qFrom = (long) rank * heads * hd;
    long qTo = qFrom + (long) heads * hd;
    this.innerWidth = config.nInner() / size;
    long innerFrom = (long) rank * innerWidth;
    long innerTo = innerFrom + innerWidth;
    this.vocabFrom = (int) ((long) config.vocabSize() * rank / size);
    this.vocabTo = (int) ((long) config.vocabSize() * (rank + 1) / size);
    String tag = "[rank " + rank + " of " + size + "]";

    this.wte = backend.upload(weights.wte());
    this.wpe = backend.upload(weights.wpe());
    this.layers = new Layer[config.nLayer()];
    Function<TensorView, Matrix> linear = t -> backend.uploadLinear(t, quantization);
    for (int i = 0; i < layers.length; i++) {
      LayerWeights l = weights.layers().get(i);
      Matrix cAttnW;
      Matrix cAttnB;
      if (config.multiQuery()) {
        long kv = e + 2L * hd; // the K and V rows follow the n_embd query rows
        cAttnW =
            slices.upload(
                a -> TensorSlices.gatherRows(l.cAttnWeight(), qFrom, qTo, e, kv, tag, a), linear);
        cAttnB =
            slices.upload(
                a -> TensorSlices.gatherRows(l.cAttnBias(), qFrom, qTo, e, kv, tag, a),
                backend::upload);
      } else {
        cAttnW = linear.apply(TensorSlices.rows(l.cAttnWeight(), 3 * qFrom, 3 * qTo, tag));
        cAttnB = backend.upload(TensorSlices.rows(l.cAttnBias(), 3 * qFrom, 3 * qTo, tag));
      }
      layers[i] =
          new Layer(
              backend.upload(l.ln1Weight()),
              backend.upload(l.ln1Bias()),
              cAttnW,
              cAttnB,
              slices.upload(
                  a -> TensorSlices.columns(l.attnCProjWeight(), qFrom, qTo, tag, a), linear),
              rank == 0 ? backend.upload(l.attnCProjBias()) : null,
              backend.upload(l.ln2Weight()),
              backend.upload(l.ln2Bias()),
              linear.apply(TensorSlices.rows(l.cFcWeight(), innerFrom, innerTo, tag)),
              backend.upload(TensorSlices.rows(l.cFcBias(), innerFrom, innerTo, tag)),
              slices.upload(
                  a -> TensorSlices.columns(l.mlpCProjWeight(), innerFrom, innerTo, tag, a),
                  linear),
              rank == 0 ? backend.upload(l.mlpCProjBias()) : null);
    }
    this.lnFWeight = backend.upload(weights.lnFWeight());
    this.lnFBias = backend.upload(weights.lnFBias());
    this.lmHead =
        backend.uploadLinear(
            TensorSlices.rows(weights.lmHead(), vocabFrom, vocabTo, tag), quantization);
  }

  Backend backend() {
    return backend;
  }

  /** This rank's attention heads. */
  AttentionShape attentionShape() {
    return shape;
  }

  KvCache newKvCache(int numBlocks, int blockSize, KvDType dtype) {
    return backend.allocateKvCache(config.nLayer(), numBlocks, blockSize, shape.kvDim(), dtype);
  }

  /** Bytes of this rank's linear weights (c_attn, attn.c_proj, c_fc, mlp.c_proj, lm_head). */
  long linearWeightBytes() {
    long b = lmHead.byteSize();
    for (Layer l : layers) {
      b += l.cAttnWeight().byteSize() + l.attnCProjWeight().byteSize();
      b += l.cFcWeight().byteSize() + l.mlpCProjWeight().byteSize();
    }
    return b;
  }

  /** Bytes of weights one decode step reads on this rank (as GptBigCodeModel counts them). */
  long decodeWeightBytes() {
    long b = lnFWeight.byteSize() + lnFBias.byteSize() + lmHead.byteSize();
    for (Layer l : layers) {
      b += l.ln1Weight().byteSize() + l.ln1Bias().byteSize();
      b += l.cAttnWeight().byteSize() + l.cAttnBias().byteSize();
      b += l.attnCProjWeight().byteSize() + bytes(l.attnCProjBias());
      b += l.ln2Weight().byteSize() + l.ln2Bias().byteSize();
      b += l.cFcWeight().byteSize() + l.cFcBias().byteSize();
      b += l.mlpCProjWeight().byteSize() + bytes(l.mlpCProjBias());
    }
    return b;
  }

  private static long bytes(Matrix m) {
    return m == null ? 0 : m.byteSize();
  }

  /**
   * This rank's part of one forward pass, on the rank's own thread; meets the other ranks in {@code
   * allReduce} twice per layer. Writes the logits of its vocabulary columns {@code [vocabFrom,
   * vocabTo)} of each of the {@code logitRows} into {@code logitsOut} {@code [R × vocab]}.
   */
  void forward(
      BatchLayout batch, int[] logitRows, KvCache cache, float[] logitsOut, AllReduce allReduce) {
    int n = batch.numTokens();
    int r = logitRows.length;
    Workspace w = workspace(n, r);
    float eps = config.layerNormEpsilon();

    backend.embed(batch, wte, wpe, w.x());
    for (int i = 0; i < layers.length; i++) {
      Layer l = layers[i];
      backend.layerNorm(w.x(), n, l.ln1Weight(), l.ln1Bias(), eps, w.a());
      backend.linear(w.a(), n, l.cAttnWeight(), l.cAttnBias(), w.qkv());
      backend.attention(w.qkv(), batch, shape, cache, i, w.att());
      backend.linear(w.att(), n, l.attnCProjWeight(), l.attnCProjBias(), w.projA());
      allReduce.sum(rank, w.projA(), w.sum(), n);
      backend.addInPlace(w.x(), w.sum(), n);
      backend.layerNorm(w.x(), n, l.ln2Weight(), l.ln2Bias(), eps, w.a());
      backend.linear(w.a(), n, l.cFcWeight(), l.cFcBias(), w.m());
      backend.activation(w.m(), n, config.activation());
      backend.linear(w.m(), n, l.mlpCProjWeight(), l.mlpCProjBias(), w.projB());
      allReduce.sum(rank, w.projB(), w.sum(), n);
      backend.addInPlace(w.x(), w.sum(), n);
    }
    if (r == 0) {
      return;
    }
    backend.gatherRows(w.x(), logitRows, w.sel());
    backend.layerNorm(w.sel(), r, lnFWeight, lnFBias, eps, w.selNorm());
    backend.linear(w.selNorm(), r, lmHead, null, w.logits());
    int width = vocabTo - vocabFrom;
    backend.readRows(w.logits(), r, logitScratch);
    int vocab = config.vocabSize();
    for (int row = 0; row < r; row++) {
      System.arraycopy(logitScratch, row * width, logitsOut, row * vocab + vocabFrom, width);
    }
  }

  private Workspace workspace(int n, int r) {
    if (ws != null && ws.tokens() >= n && ws.logitRows() >= r) {
      return ws;
    }
    int tokens = Math.max(n, ws == null ? 1 : ws.tokens());
    int rows = Math.max(Math.max(r, 1), ws == null ? 1 : ws.logitRows());
    int e = config.nEmbd();
    ws =
        new Workspace(
            tokens,
            rows,
            backend.allocate(tokens, e),
            backend.allocate(tokens, e),
            backend.allocate(tokens, shape.qkvDim()),
            backend.allocate(tokens, shape.outDim()),
            backend.allocate(tokens, e),
            backend.allocate(tokens, e),
            backend.allocate(tokens, e),
            backend.allocate(tokens, innerWidth),
            backend.allocate(rows, e),
            backend.allocate(rows, e),
            backend.allocate(rows, vocabTo - vocabFrom));
    logitScratch = new float[rows * (vocabTo - vocabFrom)];
    return ws;
  }

  @Override
  public void close() {
    backend.close();
    slices.close();
  }
}
