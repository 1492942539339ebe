package dev.starserve.checkpoint;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * One tensor of a checkpoint: a read-only slice of a memory-mapped safetensors file.
 *
 * <p>{@code data} holds {@code numel() * dtype.byteSize()} little-endian bytes in row-major order.
 * Nothing is copied: the segment lives as long as the checkpoint's arena.
 */
public record TensorView(String name, DType dtype, long[] shape, MemorySegment data, Path file) {

  private static final ValueLayout.OfFloat F32 =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfShort I16 =
      ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  public TensorView {
    if (name == null || name.isEmpty()) {
      throw new IllegalArgumentException("tensor name must not be empty");
    }
    if (dtype == null || data == null) {
      throw new IllegalArgumentException("tensor " + name + ": dtype and data are required");
    }
    shape = shape.clone();
    long n = 1;
    for (long d : shape) {
      if (d < 0) {
        throw new IllegalArgumentException(
            "tensor " + name + ": negative dimension in " + Arrays.toString(shape));
      }
      n = Math.multiplyExact(n, d);
    }
    if (data.byteSize() != n * dtype.byteSize()) {
      throw new IllegalArgumentException(
          "tensor "
              + name
              + ": "
              + data.byteSize()
              + " bytes do not hold shape "
              + Arrays.toString(shape)
              + " of "
              + dtype);
    }
  }

  @Override
  public long[] shape() {
    return shape.clone();
  }

  /** Size of dimension {@code i}. */
  public long dim(int i) {
    return shape[i];
  }

  /** Number of dimensions. */
  public int rank() {
    return shape.length;
  }

  /** Number of elements. */
  public long numel() {
    return data.byteSize() / dtype.byteSize();
  }

  /** Element {@code i} (row-major) widened to float. Slow path: for tests, loading, oracles. */
  public float getFloat(long i) {
    return switch (dtype) {
      case F32 -> data.getAtIndex(F32, i);
      case BF16 -> Float.intBitsToFloat((data.getAtIndex(I16, i) & 0xffff) << 16);
      case F16 -> Float.float16ToFloat(data.getAtIndex(I16, i));
    };
  }

  /** True when the shape equals {@code expected}. */
  public boolean hasShape(long... expected) {
    return Arrays.equals(shape, expected);
  }
}
