package dev.starserve.model.parallel;

import dev.starserve.checkpoint.TensorView;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Pieces of checkpoint tensors for one rank. A run of whole rows of a row-major {@code [out × in]}
 * weight (or of a vector) is contiguous and stays a view of the mapped file; anything else (a
 * column range, or rows gathered from two places) is copied into {@code arena}, byte for byte in
 * the stored dtype.
 *
 * <pre>
 *   rows(t, a, b)                 columns(t, a, b)          gatherRows(t, [a,b), [c,d))
 *   ┌──────────┐                  ┌──┬────┬──┐              ┌──────────┐
 *   │          │                  │  │####│  │              │##########│ a..b
 *   │##########│ a..b  (a view)   │  │####│  │  (a copy)    │          │
 *   │          │                  │  │####│  │              │##########│ c..d   (a copy)
 *   └──────────┘                  └──┴────┴──┘              └──────────┘
 * </pre>
 */
final class TensorSlices {
  private final Arena arena;

  TensorSlices(Arena arena) {
    this.arena = arena;
  }

  /** Rows {@code [from, to)} of a 2-D tensor, or elements {@code [from, to)} of a 1-D one. */
  static TensorView rows(TensorView t, long from, long to, String suffix) {
    long rowBytes = rowBytes(t);
    MemorySegment data = t.data().asSlice(from * rowBytes, (to - from) * rowBytes);
    return new TensorView(
        t.name() + suffix, t.dtype(), shapeWithRows(t, to - from), data, t.file());
  }

  /** Rows {@code [a0, a1)} then {@code [b0, b1)} of a 2-D (or 1-D) tensor, as one new tensor. */
  TensorView gatherRows(TensorView t, long a0, long a1, long b0, long b1, String suffix) {
    long rowBytes = rowBytes(t);
    long rows = (a1 - a0) + (b1 - b0);
    MemorySegment dst = arena.allocate(rows * rowBytes, 64);
    MemorySegment.copy(t.data(), a0 * rowBytes, dst, 0, (a1 - a0) * rowBytes);
    MemorySegment.copy(t.data(), b0 * rowBytes, dst, (a1 - a0) * rowBytes, (b1 - b0) * rowBytes);
    return new TensorView(t.name() + suffix, t.dtype(), shapeWithRows(t, rows), dst, t.file());
  }

  /** Columns {@code [from, to)} of a 2-D tensor {@code [rows × cols]}, as a new tensor. */
  TensorView columns(TensorView t, long from, long to, String suffix) {
    if (t.rank() != 2) {
      throw new IllegalArgumentException(t.name() + " is not a matrix");
    }
    long rows = t.dim(0);
    long es = t.dtype().byteSize();
    long srcRow = t.dim(1) * es;
    long dstRow = (to - from) * es;
    MemorySegment dst = arena.allocate(rows * dstRow, 64);
    for (long r = 0; r < rows; r++) {
      MemorySegment.copy(t.data(), r * srcRow + from * es, dst, r * dstRow, dstRow);
    }
    return new TensorView(
        t.name() + suffix, t.dtype(), new long[] {rows, to - from}, dst, t.file());
  }

  private static long rowBytes(TensorView t) {
    return (t.rank() == 1 ? 1 : t.dim(1)) * t.dtype().byteSize();
  }

  private static long[] shapeWithRows(TensorView t, long rows) {
    return t.rank() == 1 ? new long[] {rows} : new long[] {rows, t.dim(1)};
  }
}
