package dev.starserve.backend.cpu;

import dev.starserve.backend.host.LargePages;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Where one backend's packed weights live: matrices side by side in {@link LargePages} slabs of
 * {@link #SLAB} bytes, so that a matrix smaller than a huge page still sits on huge pages (a
 * model's c_attn and attn.c_proj weights are about 1.2-1.4 MB each, a quarter of
 * tiny_starcoder_py's), and no matrix rounds its resident size up to a whole 2 MiB page. A matrix
 * of half a slab or more gets an allocation of its own.
 *
 * <p>A slab is freed once no matrix in it is reachable and the backend has moved on to another slab
 * (or is unreachable itself). The part of a slab past its last matrix is never touched, so resident
 * only up to the end of that matrix's last 2 MiB page. Thread-safe (matrices may be packed
 * concurrently).
 */
final class WeightSlab {
  static final long SLAB = 64L << 20;
  private static final long ALIGN = 64; // one cache line: panels start where a vector load may
  // Matrices below this (test models, not real ones: tiny_starcoder_py's smallest is 1.2 MB) stay
  // in small pages: a slab's first touch makes a whole 2 MiB page resident, and slabs are freed
  // only by the garbage collector, which off-heap memory does not prompt.
  static final long SMALL = 256L << 10;

  private MemorySegment current;
  private long used;

  /** {@code bytes} of zeroed memory, 64-byte aligned, never handed out before. */
  synchronized MemorySegment allocate(long bytes) {
    if (bytes < 0) {
      throw new IllegalArgumentException("bytes must be >= 0, got " + bytes);
    }
    if (bytes >= SLAB / 2) {
      return LargePages.allocate(bytes, Arena.ofAuto());
    }
    if (bytes < SMALL) {
      return Arena.ofAuto().allocate(bytes, ALIGN);
    }
    long start = (used + ALIGN - 1) / ALIGN * ALIGN;
    if (current == null || start + bytes > current.byteSize()) {
      current = LargePages.allocate(SLAB, Arena.ofAuto());
      start = 0;
    }
    used = start + bytes;
    return current.asSlice(start, bytes);
  }
}
