package dev.starserve.model.parallel;

import dev.starserve.backend.Matrix;
import dev.starserve.backend.host.HostMatrix;
import dev.starserve.checkpoint.TensorView;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

/**
 * Pieces of checkpoint tensors for one rank. A run of whole rows of a row-major {@code [out × in]}
 * weight (or of a vector) is contiguous and stays a view of the mapped file; anything else (a
 * column range, or rows gathered from two places) is copied, byte for byte in the stored dtype.
 *
 * <pre>
 *   rows(t, a, b)                 columns(t, a, b)          gatherRows(t, [a,b), [c,d))
 *   ┌──────────┐                  ┌──┬────┬──┐              ┌──────────┐
 *   │          │                  │  │####│  │              │##########│ a..b
 *   │##########│ a..b  (a view)   │  │####│  │  (a copy)    │          │
 *   │          │                  │  │####│  │              │##########│ c..d   (a copy)
 *   └──────────┘                  └──┴────┴──┘              └──────────┘
 * </pre>
 *
 * A copy lives only as long as its backend needs it: {@link #upload} frees it right after the
 * upload unless the backend reads it in place.
 */
final class TensorSlices implements AutoCloseable {
  private final List<Arena> kept = new ArrayList<>();

  /** Rows {@code [from, to)} of a 2-D tensor, or elements {@code [from, to)} of a 1-D one. */
  static TensorView rows(TensorView t, long from, long to, String suffix) {
    long rowBytes = rowBytes(t);
    MemorySegment data = t.data().asSlice(from * rowBytes, (to - from) * rowBytes);
    return new TensorView(
        t.name() + suffix, t.dtype(), shapeWithRows(t, to - from), data, t.file());
  }

  /**
   * Rows {@code [a0, a1)} then {@code [b0, b1)} of a 2-D (or 1-D) tensor, copied into {@code
   * arena}.
   */
  static TensorView gatherRows(
      TensorView t, long a0, long a1, long b0, long b1, String suffix, Arena arena) {
    long rowBytes = rowBytes(t);
    long rows = (a1 - a0) + (b1 - b0);
    MemorySegment dst = arena.allocate(rows * rowBytes, 64);
    MemorySegment.copy(t.data(), a0 * rowBytes, dst, 0, (a1 - a0) * rowBytes);
    MemorySegment.copy(t.data(), b0 * rowBytes, dst, (a1 - a0) * rowBytes, (b1 - b0) * rowBytes);
    return new TensorView(t.name() + suffix, t.dtype(), shapeWithRows(t, rows), dst, t.file());
  }

  /**
   * Columns {@code [from, to)} of a 2-D tensor {@code [rows × cols]}, copied into {@code arena}.
   */
  static TensorView columns(TensorView t, long from, long to, String suffix, Arena arena) {
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

  /**
   * Makes a copy with {@code copy} in a new arena and hands it to {@code upload}. The arena is kept
   * (until {@link #close}) only when the backend's matrix reads the copy in place (a {@link
   * HostMatrix}); a backend that packs, quantizes or moves the weight to a device has its own copy,
   * and this one is freed at once, so the host holds each split weight once, not twice.
   */
  Matrix upload(Function<Arena, TensorView> copy, Function<TensorView, Matrix> upload) {
    Arena arena = Arena.ofShared();
    try {
      Matrix m = upload.apply(copy.apply(arena));
      if (m instanceof HostMatrix) {
        kept.add(arena);
      } else {
        arena.close();
      }
      return m;
    } catch (RuntimeException e) {
      arena.close();
      throw e;
    }
  }

  private static long rowBytes(TensorView t) {
    return (t.rank() == 1 ? 1 : t.dim(1)) * t.dtype().byteSize();
  }

  private static long[] shapeWithRows(TensorView t, long rows) {
    return t.rank() == 1 ? new long[] {rows} : new long[] {rows, t.dim(1)};
  }

  /** Frees the copies the backend read in place; call after the backend is closed. */
  @Override
  public void close() {
    for (Arena a : kept) {
      a.close();
    }
    kept.clear();
  }
}
