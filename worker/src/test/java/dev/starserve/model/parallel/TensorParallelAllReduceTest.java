package dev.starserve.model.parallel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.starserve.backend.Backend;
import dev.starserve.backend.Buffer;
import dev.starserve.backend.host.HostBuffer;
import dev.starserve.backend.ref.ReferenceBackend;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * The host all-reduce on its own: ranks on their own threads, thousands of back-to-back calls
 * alternating two partial buffers (as the model does) and rewriting each one as soon as the
 * contract allows, so that a rank reading a partial that another has already overwritten shows up
 * as a wrong sum.
 */
class TensorParallelAllReduceTest {
  private static final int CALLS = 3000;
  private static final int COLS = 37;

  /** Rank r's value at element i of call k: distinct, not exactly representable sums. */
  private static float value(int rank, int call, int i) {
    long h =
        (rank + 1) * 0x9E3779B97F4A7C15L ^ (call * 0xBF58476D1CE4E5B9L) ^ (i * 0x94D049BB133111EBL);
    return (float) ((h >>> 11) * 0x1.0p-53 * 2 - 1);
  }

  @Test
  void everyRankGetsTheRankOrderSumBitForBitOnEveryCall() throws Exception {
    int size = 3;
    RankBarrier barrier = new RankBarrier(size);
    AllReduce reduce =
        AllReduce.forBackends(
            new Backend[] {new ReferenceBackend(), new ReferenceBackend(), new ReferenceBackend()},
            barrier);
    AtomicReference<Throwable> failure = new AtomicReference<>();
    Thread[] threads = new Thread[size];
    for (int r = 0; r < size; r++) {
      int rank = r;
      threads[r] =
          Thread.ofPlatform()
              .unstarted(
                  () -> {
                    try {
                      run(rank, size, reduce);
                    } catch (Throwable t) {
                      failure.compareAndSet(null, t);
                      barrier.breakAll();
                    }
                  });
      threads[r].start();
    }
    for (Thread t : threads) {
      t.join();
    }
    assertNull(failure.get());
  }

  private static void run(int rank, int size, AllReduce reduce) {
    Buffer[] partials = {new HostBuffer(4, COLS), new HostBuffer(4, COLS)};
    Buffer out = new HostBuffer(4, COLS);
    for (int k = 0; k < CALLS; k++) {
      int rows = 1 + k % 4;
      float[] p = HostBuffer.of(partials[k & 1]).data();
      for (int i = 0; i < rows * COLS; i++) {
        p[i] = value(rank, k, i);
      }
      reduce.sum(rank, partials[k & 1], out, rows);
      float[] o = HostBuffer.of(out).data();
      for (int i = 0; i < rows * COLS; i++) {
        float want = value(0, k, i);
        for (int r = 1; r < size; r++) {
          want += value(r, k, i);
        }
        if (Float.floatToRawIntBits(want) != Float.floatToRawIntBits(o[i])) {
          throw new AssertionError(
              "rank " + rank + " call " + k + " element " + i + ": " + o[i] + " != " + want);
        }
      }
    }
  }

  @Test
  void aBrokenBarrierAbortsTheCallInsteadOfWaiting() {
    RankBarrier barrier = new RankBarrier(2);
    AllReduce reduce =
        AllReduce.forBackends(
            new Backend[] {new ReferenceBackend(), new ReferenceBackend()}, barrier);
    barrier.breakAll();
    Buffer b = new HostBuffer(1, 4);
    assertThrows(
        RankBarrier.RankAbortedException.class, () -> reduce.sum(0, b, new HostBuffer(1, 4), 1));
    assertEquals(true, barrier.broken());
  }
}
