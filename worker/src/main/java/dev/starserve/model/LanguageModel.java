package dev.starserve.model;

import dev.starserve.backend.BatchLayout;
import dev.starserve.backend.KvCache;
import dev.starserve.backend.KvDType;
import dev.starserve.backend.ParallelTask;
import dev.starserve.backend.Quantization;

/**
 * A gpt_bigcode forward pass as the engine drives it: batches of scheduled tokens through a paged
 * K/V cache, raw logits out. {@link GptBigCodeModel} runs it on one backend; {@link
 * dev.starserve.model.parallel.TensorParallelModel} splits it over tensor-parallel ranks. Callers
 * neither know nor care which.
 *
 * <p>Not thread-safe: one engine loop owns a model, its workspace and its caches.
 */
public interface LanguageModel extends AutoCloseable {

  GptBigCodeConfig config();

  /** How the linear layers' weights are held. */
  Quantization quantization();

  /** Ranks the forward pass is split over; 1 when it runs on one backend. */
  default int tensorParallelSize() {
    return 1;
  }

  /**
   * Bytes of weights one decode step reads as the backends hold them, summed over every rank: every
   * layer's linear weights, biases and LayerNorms, ln_f and lm_head (the embeddings contribute one
   * row each, left out).
   */
  long decodeWeightBytes();

  /**
   * A K/V cache for this model: {@code numBlocks} blocks of {@code blockSize} positions, storing
   * {@code dtype}. Only this model's {@link #forward} can read it.
   */
  KvCache newKvCache(int numBlocks, int blockSize, KvDType dtype);

  /** A float32 K/V cache (the exact one; the sequential paths and tests use it). */
  default KvCache newKvCache(int numBlocks, int blockSize) {
    return newKvCache(numBlocks, blockSize, KvDType.FP32);
  }

  /**
   * Runs every token of {@code batch} through the model, storing their K/V in {@code cache}, and
   * writes the raw logits of the tokens at {@code logitRows} (indices into the batch) to {@code
   * logitsOut} as {@code [logitRows.length × vocab]} row-major.
   */
  void forward(BatchLayout batch, int[] logitRows, KvCache cache, float[] logitsOut);

  /**
   * Runs host work over {@code [0, n)} on the model's compute threads between forward passes (see
   * {@link dev.starserve.backend.Backend#parallelFor}); by default on the caller, as one range.
   */
  default void parallelFor(int n, ParallelTask task) {
    if (n > 0) {
      task.run(0, n, 0);
    }
  }

  /** Convenience: logits of the given rows as a new array {@code [rows × vocab]}. */
  default float[] forward(BatchLayout batch, int[] logitRows, KvCache cache) {
    float[] out = new float[logitRows.length * config().vocabSize()];
    forward(batch, logitRows, cache, out);
    return out;
  }

  @Override
  void close();
}
