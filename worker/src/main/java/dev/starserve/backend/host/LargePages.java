package dev.starserve.backend.host;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.Locale;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Zeroed off-heap memory for large arrays that are streamed from memory (packed weights, the
 * bandwidth benchmark), backed by transparent huge pages where Linux offers them.
 *
 * <p>Reading a weight matrix walks every 4 KiB page of it once per decode step; on a VM each TLB
 * miss is a two-level page walk. With 2 MiB pages, a plain read loop over 512 MiB on the 2-core
 * development VM went from 26.0-26.6 to 29.6-30.8 GB/s on 2 threads (a C program, 2026-11-29).
 *
 * <p>The memory is mapped anonymously, aligned to 2 MiB, and advised with {@code MADV_HUGEPAGE}
 * (which takes effect where {@code /sys/kernel/mm/transparent_hugepage/enabled} is {@code madvise}
 * or {@code always}) except for its last partial 2 MiB, which stays in small pages so that no
 * allocation holds more resident memory than it asked for. Elsewhere (not Linux, no {@code mmap},
 * or a failed mapping) it is {@link Arena#allocate} memory.
 */
@SuppressWarnings("restricted") // mmap, munmap and madvise through the native linker
public final class LargePages {
  private LargePages() {}

  private static final Logger LOG = LoggerFactory.getLogger(LargePages.class);

  /** Allocations below this are left to the arena: a huge page would not fit inside them. */
  public static final long HUGE = 2L << 20;

  private static final int PROT_READ = 1;
  private static final int PROT_WRITE = 2;
  private static final int MAP_PRIVATE = 2;
  private static final int MAP_ANONYMOUS = 0x20;
  private static final int MADV_HUGEPAGE = 14;
  private static final long PAGE = 4096;

  private static final MethodHandle MMAP;
  private static final MethodHandle MUNMAP;
  private static final MethodHandle MADVISE;

  static {
    MethodHandle mmap = null;
    MethodHandle munmap = null;
    MethodHandle madvise = null;
    String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
    if (os.contains("linux")) {
      try {
        Linker linker = Linker.nativeLinker();
        SymbolLookup libc = linker.defaultLookup();
        mmap =
            linker.downcallHandle(
                libc.find("mmap").orElseThrow(),
                FunctionDescriptor.of(
                    ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));
        munmap =
            linker.downcallHandle(
                libc.find("munmap").orElseThrow(),
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
        madvise =
            linker.downcallHandle(
                libc.find("madvise").orElseThrow(),
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
        MethodHandle pageSize =
            linker.downcallHandle(
                libc.find("getpagesize").orElseThrow(), FunctionDescriptor.of(JAVA_INT));
        int page = (int) pageSize.invokeExact();
        if (page != PAGE) {
          // The trimming below assumes 4 KiB pages (a 64 KiB-page kernel has no 2 MiB THP).
          LOG.info("the page size is {} bytes, not {}; large arrays use the arena", page, PAGE);
          mmap = null;
        }
      } catch (Throwable e) {
        LOG.info(
            "no mmap through the native linker ({}); large arrays use the arena", e.toString());
        mmap = null;
      }
    }
    MMAP = mmap;
    MUNMAP = munmap;
    MADVISE = madvise;
  }

  /**
   * {@code bytes} of zeroed memory, aligned to at least 64 bytes, freed when {@code arena} closes
   * (for an automatic arena: once neither it nor the segment is reachable).
   */
  public static MemorySegment allocate(long bytes, Arena arena) {
    if (bytes < 0) {
      throw new IllegalArgumentException("bytes must be >= 0, got " + bytes);
    }
    if (MMAP == null || bytes < HUGE) {
      return arena.allocate(bytes, 64);
    }
    long size = (bytes + PAGE - 1) / PAGE * PAGE;
    long reserve = size + HUGE;
    long base;
    try {
      base =
          ((MemorySegment)
                  MMAP.invokeExact(
                      MemorySegment.NULL,
                      reserve,
                      PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS,
                      -1,
                      0L))
              .address();
    } catch (Throwable e) {
      throw new IllegalStateException("mmap of " + reserve + " bytes failed", e);
    }
    if (base == -1L) {
      return arena.allocate(bytes, 64); // MAP_FAILED: let the arena try, and name the failure
    }
    long start = (base + HUGE - 1) / HUGE * HUGE;
    unmap(base, start - base);
    unmap(start + size, base + reserve - (start + size));
    long advised = size / HUGE * HUGE;
    try {
      // A kernel without transparent huge pages answers EINVAL: the memory is simply small pages.
      int ignored =
          (int) MADVISE.invokeExact(MemorySegment.ofAddress(start), advised, MADV_HUGEPAGE);
    } catch (Throwable e) {
      throw new IllegalStateException("madvise failed", e);
    }
    try {
      return MemorySegment.ofAddress(start)
          .reinterpret(size, arena, s -> unmap(s.address(), size))
          .asSlice(0, bytes);
    } catch (RuntimeException e) { // a closed arena, or a confined one of another thread
      unmap(start, size);
      throw e;
    }
  }

  private static void unmap(long address, long length) {
    if (length == 0) {
      return;
    }
    int rc;
    try {
      rc = (int) MUNMAP.invokeExact(MemorySegment.ofAddress(address), length);
    } catch (Throwable e) {
      throw new IllegalStateException("munmap failed", e);
    }
    if (rc != 0) {
      LOG.warn("munmap of {} bytes at {} failed", length, Long.toHexString(address));
    }
  }
}
