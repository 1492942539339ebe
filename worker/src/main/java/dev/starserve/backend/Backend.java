package dev.starserve.backend;

import dev.starserve.checkpoint.TensorView;
import dev.starserve.model.Activation;

/**
 * The operations a gpt_bigcode forward pass is made of. The model calls them in data-path order; a
 * backend decides where the data lives and how the work is done. {@link
 * dev.starserve.backend.ref.ReferenceBackend} is the plain scalar oracle every fast backend is
 * tested against.
 *
 * <p>Every operation works on the first {@code n} rows of its buffers (one row per scheduled
 * token), so one set of buffers sized for the largest step serves every step.
 */
public interface Backend extends AutoCloseable {

  /** A short name for logs: "reference", "cpu", "cuda". */
  String name();

  /** Prepares a weight for this backend: a 2-D tensor as is, a 1-D tensor as {@code [1 × n]}. */
  Matrix upload(TensorView tensor);

  /**
   * Prepares the weight {@code [out × in]} of a linear layer, which only {@link #linear} reads; a
   * backend may lay it out for its kernels (the CPU backend packs it into row panels).
   */
  default Matrix uploadLinear(TensorView tensor) {
    return upload(tensor);
  }

  /**
   * Prepares the weight of a linear layer held as {@code quantization}: {@link Quantization#NONE}
   * is {@link #uploadLinear(TensorView)}; {@link Quantization#INT8} quantizes it once, here.
   *
   * @throws UnsupportedOperationException when this backend cannot hold that quantization
   * @throws IllegalArgumentException when the tensor cannot be quantized (a non-finite weight)
   */
  default Matrix uploadLinear(TensorView tensor, Quantization quantization) {
    if (quantization == Quantization.NONE) {
      return uploadLinear(tensor);
    }
    throw new UnsupportedOperationException(
        "the " + name() + " backend cannot hold " + quantization.cliName() + " weights");
  }

  /** Allocates a float32 activation buffer {@code [rows × cols]}. */
  Buffer allocate(int rows, int cols);

  /** Allocates the paged K/V cache, storing values as {@code dtype}. */
  KvCache allocateKvCache(int layers, int numBlocks, int blockSize, int kvDim, KvDType dtype);

  /** {@code out[t] = wte[ids[t]] + wpe[positions[t]]} for the batch's tokens. */
  void embed(BatchLayout batch, Matrix wte, Matrix wpe, Buffer out);

  /** {@code out[t] = (x[t] − mean) / sqrt(var + eps) · gamma + beta} for rows {@code 0..n-1}. */
  void layerNorm(Buffer x, int n, Matrix gamma, Matrix beta, float eps, Buffer out);

  /**
   * {@code out[t] = x[t] · wᵀ + bias} for rows {@code 0..n-1}: x {@code [n × in]}, w {@code [out ×
   * in]} from {@link #uploadLinear}, bias {@code [1 × out]} or null.
   */
  void linear(Buffer x, int n, Matrix w, Matrix bias, Buffer out);

  /** {@code x = act(x)} element-wise for rows {@code 0..n-1}. */
  void activation(Buffer x, int n, Activation kind);

  /** {@code x += y} for rows {@code 0..n-1}. */
  void addInPlace(Buffer x, Buffer y, int n);

  /** Copies row {@code rows[i]} of {@code x} to row {@code i} of {@code out}. */
  void gatherRows(Buffer x, int[] rows, Buffer out);

  /**
   * Causal attention for every token of the batch: first stores each token's K and V (taken from
   * its {@code qkv} row) in the cache slot {@code batch.slotMapping()}, then for each query head
   * computes {@code softmax(scale · q·Kᵀ) · V} over positions {@code 0..positions[t]} of the
   * token's sequence, read from the cache. Values are rounded to the cache's {@link KvDType} when
   * stored (so a token attends to its own K/V as stored too); scores, softmax and the weighted sum
   * are float32.
   */
  void attention(
      Buffer qkv, BatchLayout batch, AttentionShape shape, KvCache cache, int layer, Buffer out);

  /** Copies the first {@code rows} rows of {@code x} into {@code dst} (row-major). */
  void readRows(Buffer x, int rows, float[] dst);

  /**
   * Runs {@code task} over {@code [0, n)} on the host, split over this backend's compute threads
   * when it has them (the CPU backend's pool; every other backend runs it on the caller as one
   * range), and returns when all of it is done. For host work between forward passes, such as
   * sampling; the caller must not hold the backend busy meanwhile.
   */
  default void parallelFor(int n, ParallelTask task) {
    if (n > 0) {
      task.run(0, n, 0);
    }
  }

  @Override
  void close();
}
