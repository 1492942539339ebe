package dev.starserve.backend.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
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
  void onLinuxALargeAllocationStartsOnAHugePageBoundary() {
    assumeTrue(LINUX, "huge pages are mapped on Linux only");
    try (Arena arena = Arena.ofConfined()) {
      for (int i = 0; i < 3; i++) {
        MemorySegment s = LargePages.allocate(LargePages.HUGE + i * 4096L + 1, arena);
        assertEquals(0, s.address() % LargePages.HUGE, "allocation " + i);
      }
    }
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
