package dev.starserve.backend;

import dev.starserve.checkpoint.DType;

/**
 * A weight tensor prepared by a backend: {@code [rows × cols]} in the checkpoint's dtype, or
 * quantized from it. Linear weights are {@code [out × in]} as HuggingFace stores them; vectors
 * (biases, LayerNorm) are {@code [1 × n]}.
 */
public interface Matrix {
  int rows();

  int cols();

  /** The checkpoint's dtype: the stored one, or the one a quantized matrix was made from. */
  DType dtype();

  /** How the values are held: as {@link #dtype()}, or quantized. */
  default Quantization quantization() {
    return Quantization.NONE;
  }

  /** Bytes this weight occupies as the backend holds it (what a pass over it reads). */
  default long byteSize() {
    return (long) rows() * cols() * dtype().byteSize();
  }
}
