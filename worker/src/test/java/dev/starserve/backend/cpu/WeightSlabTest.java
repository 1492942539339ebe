package dev.starserve.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

class WeightSlabTest {
  @Test
  void matricesGetDisjointAlignedZeroedMemoryAcrossSlabsAndThreads() throws Exception {
    WeightSlab slab = new WeightSlab();
    // Sizes that are not multiples of 64, enough of them to fill more than one slab, and one of
    // half a slab (an allocation of its own).
    long[] sizes = {
      1_376_256 + 3, 1_179_648, 4_718_592 + 17, 100, WeightSlab.SLAB / 2, 1, WeightSlab.SMALL
    };
    List<MemorySegment> all = new ArrayList<>();
    try (ExecutorService pool = Executors.newFixedThreadPool(4)) {
      List<Future<MemorySegment>> futures = new ArrayList<>();
      for (int i = 0; i < 40; i++) {
        long bytes = sizes[i % sizes.length];
        futures.add(pool.submit(() -> slab.allocate(bytes)));
      }
      for (int i = 0; i < futures.size(); i++) {
        MemorySegment s = futures.get(i).get();
        assertEquals(sizes[i % sizes.length], s.byteSize());
        all.add(s);
      }
    }
    for (MemorySegment s : all) {
      assertEquals(0, s.address() % 64, "alignment of " + s);
      assertEquals(0, s.get(ValueLayout.JAVA_BYTE, 0));
      assertEquals(0, s.get(ValueLayout.JAVA_BYTE, s.byteSize() - 1));
      s.fill((byte) 7); // a matrix written over its neighbour's would show below
    }
    all.sort(Comparator.comparingLong(MemorySegment::address));
    for (int i = 1; i < all.size(); i++) {
      MemorySegment a = all.get(i - 1);
      assertTrue(a.address() + a.byteSize() <= all.get(i).address(), "overlap at " + i + ": " + a);
    }
    long total = all.stream().mapToLong(MemorySegment::byteSize).sum();
    assertTrue(total > 2 * WeightSlab.SLAB, "the test should span several slabs: " + total);
  }

  @Test
  void aNegativeSizeIsRefused() {
    assertThrows(IllegalArgumentException.class, () -> new WeightSlab().allocate(-5));
  }
}
