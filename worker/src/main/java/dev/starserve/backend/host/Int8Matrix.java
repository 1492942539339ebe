package dev.starserve.backend.host;

import dev.starserve.backend.Matrix;
import dev.starserve.backend.Quantization;
import dev.starserve.checkpoint.DType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A linear weight quantized to int8 ({@link Int8Quantizer}), kept row-major for the scalar path:
 * the reference backend reads it element by element, dequantized.
 *
 * <pre>
 * quants  [rows × cols]            int8, row-major
 * scales  [rows × blocks(cols)]    float32, scale of block b of row r at r·blocks + b
 * </pre>
 */
public final class Int8Matrix implements Matrix {
  private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT;

  private final DType source;
  private final int rows;
  private final int cols;
  private final int blocks;
  private final MemorySegment quants; // [rows × cols] int8
  private final MemorySegment scales; // [rows × blocks] float32

  private Int8Matrix(DType source, int rows, int cols, MemorySegment quants, MemorySegment scales) {
    this.source = source;
    this.rows = rows;
    this.cols = cols;
    this.blocks = Int8Quantizer.blocks(cols);
    this.quants = quants;
    this.scales = scales;
  }

  /** Quantizes {@code src} row by row (off-heap; the mapped checkpoint is not touched again). */
  public static Int8Matrix quantize(HostMatrix src) {
    int rows = src.rows();
    int cols = src.cols();
    int blocks = Int8Quantizer.blocks(cols);
    Arena arena = Arena.ofAuto();
    MemorySegment quants = arena.allocate((long) rows * cols, 64);
    MemorySegment scales = arena.allocate((long) rows * blocks * 4, 64);
    float[] w = new float[cols];
    byte[] q = new byte[cols];
    float[] s = new float[blocks];
    for (int r = 0; r < rows; r++) {
      src.readRow(r, w);
      try {
        Int8Quantizer.quantizeRow(w, cols, q, s);
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("row " + r + ": " + e.getMessage(), e);
      }
      MemorySegment.copy(q, 0, quants, ValueLayout.JAVA_BYTE, (long) r * cols, cols);
      MemorySegment.copy(s, 0, scales, F32, (long) r * blocks * 4, blocks);
    }
    return new Int8Matrix(src.dtype(), rows, cols, quants, scales);
  }

  @Override
  public int rows() {
    return rows;
  }

  @Override
  public int cols() {
    return cols;
  }

  @Override
  public DType dtype() {
    return source;
  }

  @Override
  public Quantization quantization() {
    return Quantization.INT8;
  }

  @Override
  public long byteSize() {
    return quants.byteSize() + scales.byteSize();
  }

  /** The int8 value at {@code (r, c)}. */
  public byte quant(int r, int c) {
    return quants.get(ValueLayout.JAVA_BYTE, (long) r * cols + c);
  }

  /** The scale of the block holding column {@code c} of row {@code r}. */
  public float scale(int r, int c) {
    return scales.getAtIndex(F32, (long) r * blocks + c / Int8Quantizer.BLOCK);
  }

  /** Element {@code (r, c)} dequantized: the slow, obviously right path. */
  public float get(int r, int c) {
    return Int8Quantizer.dequantize(quant(r, c), scale(r, c));
  }

  /** Casts a matrix that a host backend quantized. */
  public static Int8Matrix of(Matrix m) {
    if (m instanceof Int8Matrix q) {
      return q;
    }
    throw new IllegalArgumentException("not a host int8 matrix: " + m.getClass().getName());
  }
}
