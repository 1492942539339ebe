package dev.starserve.backend.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import org.junit.jupiter.api.Test;

class LargePagesTest {
  private static final boolean LINUX =
      System.getProperty("os.name", "").toLowerCase(Locale.ROOT).contains("linux");

  @Test
  void aLargeAllocationIsZeroedWritableExactlySizedAndFreedWithItsArena() {
    long bytes = 5 * LargePages.HUGE + 12_345; // ends inside a 2 MiB page and inside a 4 KiB one
    MemorySegment s;
    try (Arena arena = Arena.ofConfined()) {
      s = LargePages.allocate(bytes, arena);
      assertEquals(bytes, s.byteSize());
      assertEquals(0, s.address() % 64);
      for (long i = 0; i < bytes; i += 4093) {
        assertEquals(0, s.get(ValueLayout.JAVA_BYTE, i), "byte " + i);
      }
      assertEquals(0, s.get(ValueLayout.JAVA_BYTE, bytes - 1));
      s.set(ValueLayout.JAVA_LONG_UNALIGNED, bytes - 8, 0x0123456789abcdefL);
      s.set(ValueLayout.JAVA_INT, 0, 42);
      assertEquals(0x0123456789abcdefL, s.get(ValueLayout.JAVA_LONG_UNALIGNED, bytes - 8));
      assertEquals(42, s.get(ValueLayout.JAVA_INT, 0));
      assertThrows(IndexOutOfBoundsException.class, () -> s.get(ValueLayout.JAVA_BYTE, bytes));
    }
    assertFalse(s.scope().isAlive());
    assertThrows(IllegalStateException.class, () -> s.get(ValueLayout.JAVA_BYTE, 0));
  }

  @Test
  void onLinuxALargeAllocationStartsOnAHugePageBoundaryAndIsUnmappedWithItsArena()
      throws Exception {
    assumeTrue(LINUX, "huge pages are mapped on Linux only");
    long[] starts = new long[3];
    long[] ends = new long[3];
    try (Arena arena = Arena.ofConfined()) {
      for (int i = 0; i < 3; i++) {
        MemorySegment s = LargePages.allocate(LargePages.HUGE + i * 4096L + 1, arena);
        assertEquals(0, s.address() % LargePages.HUGE, "allocation " + i);
        starts[i] = s.address();
        ends[i] = s.address() + s.byteSize();
        assertTrue(mapped(starts[i], ends[i]), "allocation " + i + " is mapped");
      }
    }
    for (int i = 0; i < 3; i++) {
      assertFalse(mapped(starts[i], ends[i]), "allocation " + i + " is unmapped after close");
    }
  }

  /** Whether any mapping of this process overlaps {@code [from, to)} (/proc/self/maps). */
  private static boolean mapped(long from, long to) throws Exception {
    for (String line : Files.readAllLines(Path.of("/proc/self/maps"))) {
      String[] range = line.substring(0, line.indexOf(' ')).split("-");
      long a = Long.parseUnsignedLong(range[0], 16);
      long b = Long.parseUnsignedLong(range[1], 16);
      if (a < to && from < b) {
        return true;
      }
    }
    return false;
  }

  @Test
  void smallAndEmptyAllocationsComeFromTheArena() {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment small = LargePages.allocate(1000, arena);
      assertEquals(1000, small.byteSize());
      assertEquals(0, small.address() % 64);
      assertEquals(0, LargePages.allocate(0, arena).byteSize());
      assertTrue(small.scope().isAlive());
    }
  }

  @Test
  void aNegativeSizeIsRefusedByName() {
    try (Arena arena = Arena.ofConfined()) {
      IllegalArgumentException e =
          assertThrows(IllegalArgumentException.class, () -> LargePages.allocate(-1, arena));
      assertTrue(e.getMessage().contains("bytes"), e.getMessage());
    }
  }
}
