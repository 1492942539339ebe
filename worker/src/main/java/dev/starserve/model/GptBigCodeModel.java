package dev.starserve.model;

import dev.starserve.backend.AttentionShape;
import dev.starserve.backend.Backend;
import dev.starserve.backend.BatchLayout;
import dev.starserve.backend.Buffer;
import dev.starserve.backend.KvCache;
import dev.starserve.backend.KvDType;
import dev.starserve.backend.Matrix;
import dev.starserve.backend.ParallelTask;
import dev.starserve.backend.Quantization;
import dev.starserve.checkpoint.TensorView;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The gpt_bigcode forward pass as a flat list of named backend operations, batch-shaped: every
 * scheduled token of every sequence is one row, so the same call serves a whole prompt, a chunk of
 * one, or one decode token each of many sequences.
 *
 * <pre>
 * x = wte[ids] + wpe[positions]                                   [T × E]
 * per layer:
 *   a   = ln_1(x)                                                 [T × E]
 *   qkv = c_attn(a)                                               [T × (E + 2·kvDim)]
 *   att = attention(qkv, KV cache)   (stores this step's K, V)    [T × E]
 *   x  += attn.c_proj(att)
 *   a   = ln_2(x)
 *   m   = act(mlp.c_fc(a))                                        [T × inner]
 *   x  += mlp.c_proj(m)
 * logits = ln_f(x[rows]) · lm_headᵀ                               [R × vocab]
 * </pre>
 *
 * The five linear weights (c_attn, attn.c_proj, c_fc, mlp.c_proj, lm_head) may be held quantized
 * ({@link Quantization}); everything else runs as the checkpoint stores it.
 *
 * <p>Not thread-safe: one engine loop owns a model and its workspace.
 */
public final class GptBigCodeModel implements LanguageModel {
  private static final Logger LOG = LoggerFactory.getLogger(GptBigCodeModel.class);

  private final GptBigCodeConfig config;
  private final Backend backend;
  private final Quantization quantization;
  private final AttentionShape shape;

  private final Matrix wte; // [vocab × E]
  private final Matrix wpe; // [n_positions × E]
  private final Layer[] layers;
  private final Matrix lnFWeight; // [1 × E]
  private final Matrix lnFBias; // [1 × E]
  private final Matrix lmHead; // [vocab × E] (wte when tied)

  private Workspace ws;

  /** One transformer block's weights as the backend holds them. */
  private record Layer(
      Matrix ln1Weight, // [1 × E]
      Matrix ln1Bias, // [1 × E]
      Matrix cAttnWeight, // [E + 2·kvDim × E]
      Matrix cAttnBias, // [1 × E + 2·kvDim]
      Matrix attnCProjWeight, // [E × E]
      Matrix attnCProjBias, // [1 × E]
      Matrix ln2Weight, // [1 × E]
      Matrix ln2Bias, // [1 × E]
      Matrix cFcWeight, // [inner × E]
      Matrix cFcBias, // [1 × inner]
      Matrix mlpCProjWeight, // [E × inner]
      Matrix mlpCProjBias) {} // [1 × E]

  /** Activation buffers sized for {@code tokens} rows and {@code logitRows} logit rows. */
  private record Workspace(
      int tokens,
      int logitRows,
      Buffer x, // [T × E]   the residual stream
      Buffer a, // [T × E]   normalized input of a sub-block
      Buffer qkv, // [T × E + 2·kvDim]
      Buffer att, // [T × E]
      Buffer proj, // [T × E]   output of a c_proj before the residual add
      Buffer m, // [T × inner]
      Buffer sel, // [R × E]   rows whose logits are wanted
      Buffer selNorm, // [R × E]
      Buffer logits) {} // [R × vocab]

  public GptBigCodeModel(GptBigCodeConfig config, GptBigCodeWeights weights, Backend backend) {
    this(config, weights, backend, Quantization.NONE);
  }

  /**
   * Uploads the weights to {@code backend}, the linear layers' (c_attn, attn.c_proj, c_fc,
   * mlp.c_proj, lm_head) held as {@code quantization}; embeddings, LayerNorms and biases as stored.
   */
  public GptBigCodeModel(
      GptBigCodeConfig config,
      GptBigCodeWeights weights,
      Backend backend,
      Quantization quantization) {
    this.config = config;
    this.quantization = quantization;
    this.backend = backend;
    float scale = config.scaleAttnWeights() ? (float) (1.0 / Math.sqrt(config.headDim())) : 1f;
    this.shape = new AttentionShape(config.nHead(), config.kvHeads(), config.headDim(), scale);
    this.wte = backend.upload(weights.wte());
    this.wpe = backend.upload(weights.wpe());
    this.layers = new Layer[config.nLayer()];
    for (int i = 0; i < layers.length; i++) {
      LayerWeights l = weights.layers().get(i);
      layers[i] =
          new Layer(
              backend.upload(l.ln1Weight()),
              backend.upload(l.ln1Bias()),
              backend.uploadLinear(l.cAttnWeight(), quantization),
              backend.upload(l.cAttnBias()),
              backend.uploadLinear(l.attnCProjWeight(), quantization),
              backend.upload(l.attnCProjBias()),
              backend.upload(l.ln2Weight()),
              backend.upload(l.ln2Bias()),
              backend.uploadLinear(l.cFcWeight(), quantization),
              backend.upload(l.cFcBias()),
              backend.uploadLinear(l.mlpCProjWeight(), quantization),
              backend.upload(l.mlpCProjBias()));
    }
    this.lnFWeight = backend.upload(weights.lnFWeight());
    this.lnFBias = backend.upload(weights.lnFBias());
    // Tied: wte is uploaded twice, as a table for the embedding and as a linear weight.
    this.lmHead = backend.uploadLinear(weights.lmHead(), quantization);
    LOG.info(describeLinearWeights(weights));
  }

  /**
   * One line for the load log: how the linear weights are held and their bytes, against the
   * checkpoint's bytes for the same tensors.
   */
  private String describeLinearWeights(GptBigCodeWeights weights) {
    long held = lmHead.byteSize();
    long stored = weights.lmHead().data().byteSize();
    Set<String> dtypes = new TreeSet<>();
    dtypes.add(weights.lmHead().dtype().safetensorsName());
    for (int i = 0; i < layers.length; i++) {
      Layer l = layers[i];
      held += l.cAttnWeight().byteSize() + l.attnCProjWeight().byteSize();
      held += l.cFcWeight().byteSize() + l.mlpCProjWeight().byteSize();
      LayerWeights w = weights.layers().get(i);
      for (TensorView t :
          List.of(w.cAttnWeight(), w.attnCProjWeight(), w.cFcWeight(), w.mlpCProjWeight())) {
        stored += t.data().byteSize();
        dtypes.add(t.dtype().safetensorsName());
      }
    }
    String from = String.join("/", dtypes).toLowerCase(Locale.ROOT);
    int count = 4 * layers.length + 1;
    String which =
        count
            + " linear weights (c_attn, attn.c_proj, c_fc, mlp.c_proj of "
            + layers.length
            + " layers, lm_head"
            + (weights.tiedLmHead() ? " tied to wte" : "")
            + ")";
    return switch (quantization) {
      case NONE ->
          String.format(
              Locale.ROOT,
              "%s on the %s backend as stored (%s): %.1f MB",
              which,
              backend.name(),
              from,
              held / 1e6);
      case INT8 ->
          String.format(
              Locale.ROOT,
              "quantized %s to int8 on the %s backend (blocks of %d input columns, one float32"
                  + " scale each): %.1f MB of %s became %.1f MB; wte, wpe, LayerNorms and biases"
                  + " stay as stored",
              which,
              backend.name(),
              Quantization.INT8_BLOCK,
              stored / 1e6,
              from,
              held / 1e6);
    };
  }

  @Override
  public Quantization quantization() {
    return quantization;
  }

  /**
   * Bytes of weights one decode step reads as the backend holds them: every layer's linear weights,
   * biases and LayerNorms, ln_f and lm_head (the embeddings contribute one row each, left out).
   */
  @Override
  public long decodeWeightBytes() {
    long b = lnFWeight.byteSize() + lnFBias.byteSize() + lmHead.byteSize();
    for (Layer l : layers) {
      b += l.ln1Weight().byteSize() + l.ln1Bias().byteSize();
      b += l.cAttnWeight().byteSize() + l.cAttnBias().byteSize();
      b += l.attnCProjWeight().byteSize() + l.attnCProjBias().byteSize();
      b += l.ln2Weight().byteSize() + l.ln2Bias().byteSize();
      b += l.cFcWeight().byteSize() + l.cFcBias().byteSize();
      b += l.mlpCProjWeight().byteSize() + l.mlpCProjBias().byteSize();
    }
    return b;
  }

  @Override
  public GptBigCodeConfig config() {
    return config;
  }

  public Backend backend() {
    return backend;
  }

  public AttentionShape attentionShape() {
    return shape;
  }

  @Override
  public KvCache newKvCache(int numBlocks, int blockSize, KvDType dtype) {
    return backend.allocateKvCache(config.nLayer(), numBlocks, blockSize, config.kvDim(), dtype);
  }

  @Override
  public void parallelFor(int n, ParallelTask task) {
    backend.parallelFor(n, task);
  }

  @Override
  public void forward(BatchLayout batch, int[] logitRows, KvCache cache, float[] logitsOut) {
    int n = batch.numTokens();
    int r = logitRows.length;
    int vocab = config.vocabSize();
    if (logitsOut.length < (long) r * vocab) {
      throw new IllegalArgumentException(
          "logitsOut holds " + logitsOut.length + " floats, needs " + (long) r * vocab);
    }
    for (int row : logitRows) {
      if (row < 0 || row >= n) {
        throw new IllegalArgumentException("logit row " + row + " is outside the batch of " + n);
      }
    }
    Workspace w = workspace(n, r);
    float eps = config.layerNormEpsilon();

    backend.embed(batch, wte, wpe, w.x());
    for (int i = 0; i < layers.length; i++) {
      Layer l = layers[i];
      backend.layerNorm(w.x(), n, l.ln1Weight(), l.ln1Bias(), eps, w.a());
      backend.linear(w.a(), n, l.cAttnWeight(), l.cAttnBias(), w.qkv());
      backend.attention(w.qkv(), batch, shape, cache, i, w.att());
      backend.linear(w.att(), n, l.attnCProjWeight(), l.attnCProjBias(), w.proj());
      backend.addInPlace(w.x(), w.proj(), n);
      backend.layerNorm(w.x(), n, l.ln2Weight(), l.ln2Bias(), eps, w.a());
      backend.linear(w.a(), n, l.cFcWeight(), l.cFcBias(), w.m());
      backend.activation(w.m(), n, config.activation());
      backend.linear(w.m(), n, l.mlpCProjWeight(), l.mlpCProjBias(), w.proj());
      backend.addInPlace(w.x(), w.proj(), n);
    }
    if (r == 0) {
      return;
    }
    backend.gatherRows(w.x(), logitRows, w.sel());
    backend.layerNorm(w.sel(), r, lnFWeight, lnFBias, eps, w.selNorm());
    backend.linear(w.selNorm(), r, lmHead, null, w.logits());
    backend.readRows(w.logits(), r, logitsOut);
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
            backend.allocate(tokens, config.qkvDim()),
            backend.allocate(tokens, e),
            backend.allocate(tokens, e),
            backend.allocate(tokens, config.nInner()),
            backend.allocate(rows, e),
            backend.allocate(rows, e),
            backend.allocate(rows, config.vocabSize()));
    return ws;
  }

  @Override
  public void close() {
    backend.close();
  }
}
