package dev.starserve.backend.host;

import dev.starserve.backend.Matrix;
import dev.starserve.checkpoint.DType;
import dev.starserve.checkpoint.TensorView;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * A weight read in place from the mapped checkpoint: {@code [rows × cols]} little-endian elements
 * of {@code dtype}. Nothing is copied (the CPU backend hands out copies of small tensors in the
 * same form).
 */
public record HostMatrix(MemorySegment data, DType dtype, int rows, int cols) implements Matrix {
  static final ValueLayout.OfFloat F32 =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  static final ValueLayout.OfShort I16 =
      ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  public HostMatrix {
    if (rows <= 0 || cols <= 0) {
      throw new IllegalArgumentException("matrix shape must be positive, got " + rows + "×" + cols);
    }
    if (data.byteSize() != (long) rows * cols * dtype.byteSize()) {
      throw new IllegalArgumentException(
          "matrix "
              + rows
              + "×"
              + cols
              + " of "
              + dtype
              + " needs "
              + (long) rows * cols
              + " elements, segment has "
              + data.byteSize()
              + " bytes");
    }
  }

  /** Views a checkpoint tensor: 2-D as is, 1-D as one row. */
  public static HostMatrix of(TensorView t) {
    return switch (t.rank()) {
      case 1 -> new HostMatrix(t.data(), t.dtype(), 1, Math.toIntExact(t.dim(0)));
      case 2 ->
          new HostMatrix(t.data(), t.dtype(), Math.toIntExact(t.dim(0)), Math.toIntExact(t.dim(1)));
      default ->
          throw new IllegalArgumentException(
              "tensor " + t.name() + " has rank " + t.rank() + ", expected 1 or 2");
    };
  }

  /** Casts a matrix that a host backend prepared. */
  public static HostMatrix of(Matrix m) {
    if (m instanceof HostMatrix h) {
      return h;
    }
    throw new IllegalArgumentException("not a host matrix: " + m.getClass().getName());
  }

  /** Element {@code (r, c)} widened to float: the slow, obviously right path. */
  public float get(int r, int c) {
    long i = (long) r * cols + c;
    return switch (dtype) {
      case F32 -> data.getAtIndex(F32, i);
      case BF16 -> Float.intBitsToFloat((data.getAtIndex(I16, i) & 0xffff) << 16);
      case F16 -> Float.float16ToFloat(data.getAtIndex(I16, i));
    };
  }

  /** Row {@code r} widened to float into {@code dst[0..cols)}. */
  public void readRow(int r, float[] dst) {
    long base = (long) r * cols;
    switch (dtype) {
      case F32 -> MemorySegment.copy(data, F32, base * 4, dst, 0, cols);
      case BF16 -> {
        for (int c = 0; c < cols; c++) {
          dst[c] = Float.intBitsToFloat((data.getAtIndex(I16, base + c) & 0xffff) << 16);
        }
      }
      case F16 -> {
        for (int c = 0; c < cols; c++) {
          dst[c] = Float.float16ToFloat(data.getAtIndex(I16, base + c));
        }
      }
    }
  }
}
