package dev.starserve.backend.cuda;

import dev.starserve.backend.Matrix;
import dev.starserve.checkpoint.DType;
import jcuda.driver.CUdeviceptr;

/**
 * A weight in device memory, {@code [rows × cols]} little-endian elements of {@code dtype} exactly
 * as the checkpoint stores them (the kernels widen to float32 when they read).
 */
record CudaMatrix(CUdeviceptr ptr, DType dtype, int rows, int cols) implements Matrix {

  static CudaMatrix of(Matrix m) {
    if (m instanceof CudaMatrix c) {
      return c;
    }
    throw new IllegalArgumentException("not a CUDA matrix: " + m.getClass().getName());
  }
}
