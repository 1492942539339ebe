package dev.starserve.backend.cuda;

import dev.starserve.backend.Buffer;
import jcuda.driver.CUdeviceptr;

/** A float32 activation buffer {@code [rows × cols]} in device memory, row-major. */
final class CudaBuffer implements Buffer {
  final CUdeviceptr ptr;
  private final int rows;
  private final int cols;

  CudaBuffer(CUdeviceptr ptr, int rows, int cols) {
    this.ptr = ptr;
    this.rows = rows;
    this.cols = cols;
  }

  @Override
  public int rows() {
    return rows;
  }

  @Override
  public int cols() {
    return cols;
  }

  static CudaBuffer of(Buffer b) {
    if (b instanceof CudaBuffer c) {
      return c;
    }
    throw new IllegalArgumentException("not a CUDA buffer: " + b.getClass().getName());
  }
}
