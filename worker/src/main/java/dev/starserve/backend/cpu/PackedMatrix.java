package dev.starserve.backend.cpu;

import dev.starserve.backend.Matrix;
import dev.starserve.backend.host.HostMatrix;
import dev.starserve.checkpoint.DType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * A linear layer's weight {@code [rows × cols]} re-laid out once, at load, into panels of {@code P
 * = 2L} rows (L = float lanes of the vector species) so that the kernels of {@link PanelGemm} read
 * one contiguous stream per panel and load the weights of P output rows for one input column with a
 * single vector load. The dtype is kept (bf16 stays 2 bytes per weight); rows past {@code rows} in
 * the last panel are zero.
 *
 * <pre>
 * panel p, column k:  2P bytes (bf16/f16) or 4P bytes (f32), panels one after another
 *
 *   bf16/f16, as L int lanes:  lane l = row (p·P + l) in the low half | row (p·P + L + l) high half
 *     → (lane &lt;&lt; 16) widens rows 0..L-1 of the panel, (lane &amp; 0xffff0000) rows L..P-1
 *   f32:  rows p·P .. p·P+P-1 in order (two float vectors)
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

  private final DType dtype;
  private final int rows;
  private final int cols;
  private final int panels;
  private final MemorySegment data; // [panels × cols × P] elements of dtype, laid out as above

  private PackedMatrix(DType dtype, int rows, int cols, MemorySegment data) {
    this.dtype = dtype;
    this.rows = rows;
    this.cols = cols;
    this.panels = (rows + P - 1) / P;
    this.data = data;
  }

  /** Packs {@code src} with the pool's threads (panels split between them). */
  static PackedMatrix pack(HostMatrix src, ComputePool pool) {
    int rows = src.rows();
    int cols = src.cols();
    int panels = (rows + P - 1) / P;
    long bytes = (long) panels * cols * P * src.dtype().byteSize();
    MemorySegment data = Arena.ofAuto().allocate(bytes, 64);
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
    return new PackedMatrix(src.dtype(), rows, cols, data);
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

  int panels() {
    return panels;
  }

  MemorySegment data() {
    return data;
  }

  /** Byte offset of panel {@code p}. */
  long panelOffset(int p) {
    return (long) p * cols * P * dtype.byteSize();
  }
}
