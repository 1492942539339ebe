package dev.starserve.backend.cpu;

import dev.starserve.backend.Matrix;
import dev.starserve.backend.Quantization;
import dev.starserve.backend.host.HostMatrix;
import dev.starserve.backend.host.Int8Quantizer;
import dev.starserve.checkpoint.DType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * A linear layer's weight {@code [rows × cols]} re-laid out once, at load, into panels of {@code P
 * = 2L} rows (L = float lanes of the vector species) so that the kernels of {@link PanelGemm} read
 * one contiguous stream per panel and load the weights of P output rows for one input column with a
 * single vector load. The dtype is kept (bf16 stays 2 bytes per weight), or the weight is quantized
 * to int8 ({@link #packInt8}); rows past {@code rows} in the last panel are zero.
 *
 * <pre>
 * panel p, column k:  2P bytes (bf16/f16) or 4P bytes (f32), panels one after another
 *
 *   bf16/f16, as L int lanes:  lane l = row (p·P + l) in the low half | row (p·P + L + l) high half
 *     → (lane &lt;&lt; 16) widens rows 0..L-1 of the panel, (lane &amp; 0xffff0000) rows L..P-1
 *   f32:  rows p·P .. p·P+P-1 in order (two float vectors)
 *
 * int8 panel p: blocks of 32 columns, each followed by its scales; the last block is padded with
 * zero weights (columns cols .. 32·blocks − 1), so that every kernel loop runs exactly 16 pairs
 *
 *   block b:  column pairs (k, k+1), 2P bytes each, as L int lanes:
 *               lane l = bytes [row l col k | row L+l col k | row l col k+1 | row L+l col k+1]
 *               (rows of the panel; byte 0 lowest), each the unsigned u = q + 128 (0..255; the
 *               zero padding reads as u = 0) → lane &amp; 0xff, lane &amp; 0xff00, lane &amp;
 *               0xff0000 and lane &gt;&gt;&gt; 24 isolate the four (see Int8Panels)
 *             [P] float32 scales   (rows p·P .. p·P+P-1 in order: block b's scale of each row)
 *   block b starts at b · (32·P + 4·P) bytes into the panel; its scales at 32·P into the block
 * </pre>
 *
 * <p>NOTE: packing costs one copy of the weights in memory (off-heap); the mapped checkpoint pages
 * are not read again by linear layers and the OS may drop them.
 */
public final class PackedMatrix implements Matrix {
  static final int P = 2 * VectorKernels.L;
  private static final ValueLayout.OfShort I16 =
      ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfFloat F32 =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  /** How a panel stores its weights. */
  enum Format {
    F32,
    BF16,
    F16,
    INT8;

    static Format of(DType dtype) {
      return switch (dtype) {
        case F32 -> F32;
        case BF16 -> BF16;
        case F16 -> F16;
      };
    }
  }

  private final Format format;
  private final DType dtype; // the checkpoint's (for INT8: what was quantized)
  private final int rows;
  private final int cols;
  private final int panels;
  private final long panelBytes;
  private final MemorySegment data; // [panels × panelBytes], laid out as above

  private PackedMatrix(Format format, DType dtype, int rows, int cols, MemorySegment data) {
    this.format = format;
    this.dtype = dtype;
    this.rows = rows;
    this.cols = cols;
    this.panels = (rows + P - 1) / P;
    this.panelBytes = panelBytes(format, dtype, cols);
    this.data = data;
  }

  private static long panelBytes(Format format, DType dtype, int cols) {
    return format == Format.INT8
        ? INT8_BLOCK_BYTES * Int8Quantizer.blocks(cols)
        : (long) cols * P * dtype.byteSize();
  }

  /** Bytes of one int8 block of 32 columns and its scales. */
  static final long INT8_BLOCK_BYTES = (long) Int8Quantizer.BLOCK * P + 4L * P;

  /** Packs {@code src} into {@code slab} with the pool's threads (panels split between them). */
  static PackedMatrix pack(HostMatrix src, WeightSlab slab, ComputePool pool) {
    int rows = src.rows();
    int cols = src.cols();
    int panels = (rows + P - 1) / P;
    long bytes = (long) panels * cols * P * src.dtype().byteSize();
    MemorySegment data = slab.allocate(bytes);
    MemorySegment s = src.data();
    pool.parallelFor(
        panels,
        1,
        (from, to, worker) -> {
          for (int p = from; p < to; p++) {
            for (int j = 0; j < P; j++) {
              int r = p * P + j;
              if (r >= rows) {
                continue; // the allocation is zeroed
              }
              long srcRow = (long) r * cols;
              long dst = (long) p * cols * P + slot(src.dtype(), j);
              switch (src.dtype()) {
                case F32 -> {
                  for (int k = 0; k < cols; k++) {
                    data.setAtIndex(F32, dst + (long) k * P, s.getAtIndex(F32, srcRow + k));
                  }
                }
                case BF16, F16 -> {
                  for (int k = 0; k < cols; k++) {
                    data.setAtIndex(I16, dst + (long) k * P, s.getAtIndex(I16, srcRow + k));
                  }
                }
              }
            }
          }
        });
    return new PackedMatrix(Format.of(src.dtype()), src.dtype(), rows, cols, data);
  }

  /**
   * Quantizes {@code src} to int8 ({@link Int8Quantizer}: the integers and scales every backend
   * computes) straight into int8 panels, with the pool's threads (panels split between them).
   *
   * @throws IllegalArgumentException when a weight is not finite (naming its row and column)
   */
  static PackedMatrix packInt8(HostMatrix src, WeightSlab slab, ComputePool pool) {
    int rows = src.rows();
    int cols = src.cols();
    int panels = (rows + P - 1) / P;
    int blocks = Int8Quantizer.blocks(cols);
    long panelBytes = panelBytes(Format.INT8, src.dtype(), cols);
    MemorySegment data = slab.allocate(panels * panelBytes);
    pool.parallelFor(
        panels,
        1,
        (from, to, worker) -> {
          float[] w = new float[cols];
          byte[] q = new byte[cols];
          float[] s = new float[blocks];
          for (int p = from; p < to; p++) {
            for (int j = 0; j < P && p * P + j < rows; j++) {
              int r = p * P + j;
              src.readRow(r, w);
              try {
                Int8Quantizer.quantizeRow(w, cols, q, s);
              } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("row " + r + ": " + e.getMessage(), e);
              }
              for (int b = 0; b < blocks; b++) {
                int c0 = b * Int8Quantizer.BLOCK;
                int kb = Math.min(Int8Quantizer.BLOCK, cols - c0);
                long block = p * panelBytes + b * INT8_BLOCK_BYTES;
                for (int c = 0; c < kb; c++) {
                  data.set(
                      ValueLayout.JAVA_BYTE, block + int8Offset(c, j), (byte) (q[c0 + c] + 128));
                }
                data.set(F32, block + (long) Int8Quantizer.BLOCK * P + 4L * j, s[b]);
              }
            }
          }
        });
    return new PackedMatrix(Format.INT8, src.dtype(), rows, cols, data);
  }

  /** Byte offset of column {@code c}, row {@code j} of an int8 block from the block's start. */
  static long int8Offset(int c, int j) {
    int l = VectorKernels.L;
    int lane = j % l;
    int half = j / l;
    return (long) (c / 2) * 2 * P + 4L * lane + 2 * (c % 2) + half;
  }

  /** Where row {@code j} of a panel sits among the P elements of one column. */
  private static int slot(DType dtype, int j) {
    if (dtype == DType.F32) {
      return j;
    }
    int l = VectorKernels.L;
    return j < l ? 2 * j : 2 * (j - l) + 1;
  }

  /** Casts a matrix that {@link CpuBackend#uploadLinear} prepared. */
  static PackedMatrix of(Matrix m) {
    if (m instanceof PackedMatrix p) {
      return p;
    }
    throw new IllegalArgumentException(
        "the CPU backend's linear layers need weights from uploadLinear, got "
            + m.getClass().getSimpleName());
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
    return dtype;
  }

  @Override
  public Quantization quantization() {
    return format == Format.INT8 ? Quantization.INT8 : Quantization.NONE;
  }

  @Override
  public long byteSize() {
    return data.byteSize();
  }

  Format format() {
    return format;
  }

  int panels() {
    return panels;
  }

  MemorySegment data() {
    return data;
  }

  /** Byte offset of panel {@code p}. */
  long panelOffset(int p) {
    return p * panelBytes;
  }
}
