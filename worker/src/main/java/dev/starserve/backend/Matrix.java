package dev.starserve.backend;

import dev.starserve.checkpoint.DType;

/**
 * A weight tensor prepared by a backend: {@code [rows × cols]} in the checkpoint's dtype. Linear
 * weights are {@code [out × in]} as HuggingFace stores them; vectors (biases, LayerNorm) are {@code
 * [1 × n]}.
 */
public interface Matrix {
  int rows();

  int cols();

  DType dtype();
}
