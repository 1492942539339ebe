package dev.starserve.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.backend.host.LargePages;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

class WeightSlabTest {
  @Test
  void matricesGetDisjointAlignedZeroedMemoryAcrossSlabsAndThreads() throws Exception {
    WeightSlab slab = new WeightSlab();
    // Slab-sized matrices (c_attn, attn.c_proj, c_fc of tiny_starcoder_py, give or take a few
    // bytes, and the smallest that goes to a slab): 90 of them fill more than two slabs. Then one
    // of half a slab (a mapping of its own) and two below SMALL (ordinary memory).
    long[] slabbed = {1_376_256 + 3, 1_179_648, 4_718_592 + 17, WeightSlab.SMALL};
    List<Long> sizes = new ArrayList<>();
    long slabbedBytes = 0;
    for (int i = 0; i < 90; i++) {
      sizes.add(slabbed[i % slabbed.length]);
      slabbedBytes += slabbed[i % slabbed.length];
    }
    assertTrue(slabbedBytes > 2 * WeightSlab.SLAB, "the sizes should fill more than two slabs");
    sizes.add(WeightSlab.SLAB / 2);
    sizes.add(100L);
    sizes.add(1L);
    List<MemorySegment> all = new ArrayList<>();
    try (ExecutorService pool = Executors.newFixedThreadPool(4)) {
      List<Future<MemorySegment>> futures = new ArrayList<>();
      for (long bytes : sizes) {
        futures.add(pool.submit(() -> slab.allocate(bytes)));
      }
      for (int i = 0; i < futures.size(); i++) {
        MemorySegment s = futures.get(i).get();
        assertEquals(sizes.get(i), s.byteSize());
        all.add(s);
      }
    }
    for (int i = 0; i < all.size(); i++) {
      MemorySegment s = all.get(i);
      assertEquals(0, s.address() % 64, "alignment of " + s);
      assertEquals(0, s.get(ValueLayout.JAVA_BYTE, 0));
      assertEquals(0, s.get(ValueLayout.JAVA_BYTE, s.byteSize() - 1));
      s.fill((byte) (i % 100 + 1));
    }
    for (int i = 0; i < all.size(); i++) { // a matrix written over by a neighbour shows here
      MemorySegment s = all.get(i);
      for (long at : new long[] {0, s.byteSize() / 2, s.byteSize() - 1}) {
        assertEquals((byte) (i % 100 + 1), s.get(ValueLayout.JAVA_BYTE, at), "matrix " + i);
      }
    }
    all.sort(Comparator.comparingLong(MemorySegment::address));
    for (int i = 1; i < all.size(); i++) {
      MemorySegment a = all.get(i - 1);
      assertTrue(a.address() + a.byteSize() <= all.get(i).address(), "overlap at " + i + ": " + a);
    }
    if (System.getProperty("os.name", "").toLowerCase(Locale.ROOT).contains("linux")) {
      // Each slab and the own mapping start on a huge-page boundary: three slabs, at least.
      long starts = all.stream().filter(s -> s.address() % LargePages.HUGE == 0).count();
      assertTrue(starts >= 4, "matrices at the start of a 2 MiB-aligned mapping: " + starts);
    }
  }

  @Test
  void aNegativeSizeIsRefused() {
    assertThrows(IllegalArgumentException.class, () -> new WeightSlab().allocate(-5));
  }
}
