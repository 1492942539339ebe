package dev.starserve.bench;

import dev.starserve.backend.host.LargePages;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.concurrent.CyclicBarrier;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * This machine's limits measured from Java, so that every benchmark can state its speed as a
 * fraction of the machine it ran on: memory bandwidth (a STREAM-like triad {@code a = b + s·c} over
 * off-heap segments far larger than the caches, counted as 3 × 4 bytes per element: two reads and
 * one write, the write-allocate read not counted, as STREAM does), read-only bandwidth (a sum over
 * such a segment per thread) and the FP32 FMA peak (a Vector API loop of independent fused
 * multiply-adds that never leaves the registers). The segments are on huge pages where Linux offers
 * them ({@link LargePages}), as the packed weights are.
 */
public final class MachineLimits {
  private MachineLimits() {}

  private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
  private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

  /** Best triad bandwidth in bytes/s with {@code threads} threads, each on its own arrays. */
  public static double bandwidth(int threads, long bytesPerArray, int reps) throws Exception {
    MemorySegment[][] arrays = new MemorySegment[threads][3];
    try (Arena arena = Arena.ofShared()) {
      for (int t = 0; t < threads; t++) {
        for (int i = 0; i < 3; i++) {
          arrays[t][i] = LargePages.allocate(bytesPerArray, arena);
          arrays[t][i].fill((byte) (i + 1)); // touch every page before timing
        }
      }
      long elements = bytesPerArray / 4;
      double best = 0;
      for (int r = 0; r < reps; r++) {
        long nanos = runAll(threads, t -> triad(arrays[t][0], arrays[t][1], arrays[t][2]));
        best = Math.max(best, threads * elements * 12.0 / (nanos / 1e9));
      }
      return best;
    }
  }

  /**
   * Best read-only bandwidth in bytes/s with {@code threads} threads, each summing its own segment
   * of {@code bytesPerThread}: the access pattern of decoding, which streams the weights and writes
   * next to nothing. The triad is not that figure: it counts each written element as 4 bytes,
   * though the machine also reads the line before writing it.
   */
  public static double readBandwidth(int threads, long bytesPerThread, int reps) throws Exception {
    MemorySegment[] segments = new MemorySegment[threads];
    float[] sink = new float[threads];
    try (Arena arena = Arena.ofShared()) {
      for (int t = 0; t < threads; t++) {
        segments[t] = LargePages.allocate(bytesPerThread, arena);
        segments[t].fill((byte) 1); // touch every page before timing
      }
      double best = 0;
      for (int r = 0; r < reps; r++) {
        long nanos = runAll(threads, t -> sink[t] += sum(segments[t]));
        best = Math.max(best, threads * (double) bytesPerThread / (nanos / 1e9));
      }
      if (Float.isNaN(sink[0])) {
        System.out.println(); // keeps the loop's result observable
      }
      return best;
    }
  }

  /** Four independent add chains over whole vectors of the segment. */
  private static float sum(MemorySegment a) {
    long step = 4L * F.vectorByteSize();
    long bound = a.byteSize() - a.byteSize() % step;
    FloatVector s0 = FloatVector.zero(F);
    FloatVector s1 = FloatVector.zero(F);
    FloatVector s2 = FloatVector.zero(F);
    FloatVector s3 = FloatVector.zero(F);
    long v = F.vectorByteSize();
    for (long i = 0; i < bound; i += step) {
      s0 = s0.add(FloatVector.fromMemorySegment(F, a, i, LE));
      s1 = s1.add(FloatVector.fromMemorySegment(F, a, i + v, LE));
      s2 = s2.add(FloatVector.fromMemorySegment(F, a, i + 2 * v, LE));
      s3 = s3.add(FloatVector.fromMemorySegment(F, a, i + 3 * v, LE));
    }
    return s0.add(s1).add(s2).add(s3).reduceLanes(jdk.incubator.vector.VectorOperators.ADD);
  }

  /** Best FP32 FMA rate in FLOP/s with {@code threads} threads. */
  public static double fmaPeak(int threads, long iterations, int reps) throws Exception {
    double best = 0;
    float[] sink = new float[threads];
    for (int r = 0; r < reps; r++) {
      long nanos = runAll(threads, t -> sink[t] = fmaLoop(iterations, t + 1));
      best = Math.max(best, threads * iterations * 10.0 * 2 * F.length() / (nanos / 1e9));
    }
    if (Float.isNaN(sink[0])) {
      System.out.println(); // keeps the loop's result observable
    }
    return best;
  }

  private static void triad(MemorySegment a, MemorySegment b, MemorySegment c) {
    long n = a.byteSize() / 4;
    long bound = n - n % F.length();
    FloatVector s = FloatVector.broadcast(F, 3f);
    long i = 0;
    for (; i < bound; i += F.length()) {
      FloatVector.fromMemorySegment(F, c, i * 4, LE)
          .fma(s, FloatVector.fromMemorySegment(F, b, i * 4, LE))
          .intoMemorySegment(a, i * 4, LE);
    }
  }

  /** Ten independent FMA chains: enough to cover the FMA latency on both pipes. */
  private static float fmaLoop(long iterations, float seed) {
    FloatVector m = FloatVector.broadcast(F, 0.999999f);
    FloatVector k = FloatVector.broadcast(F, 1e-7f);
    FloatVector a0 = FloatVector.broadcast(F, seed);
    FloatVector a1 = a0.add(1f);
    FloatVector a2 = a0.add(2f);
    FloatVector a3 = a0.add(3f);
    FloatVector a4 = a0.add(4f);
    FloatVector a5 = a0.add(5f);
    FloatVector a6 = a0.add(6f);
    FloatVector a7 = a0.add(7f);
    FloatVector a8 = a0.add(8f);
    FloatVector a9 = a0.add(9f);
    for (long i = 0; i < iterations; i++) {
      a0 = a0.fma(m, k);
      a1 = a1.fma(m, k);
      a2 = a2.fma(m, k);
      a3 = a3.fma(m, k);
      a4 = a4.fma(m, k);
      a5 = a5.fma(m, k);
      a6 = a6.fma(m, k);
      a7 = a7.fma(m, k);
      a8 = a8.fma(m, k);
      a9 = a9.fma(m, k);
    }
    return a0.add(a1).add(a2).add(a3).add(a4).add(a5).add(a6).add(a7).add(a8).add(a9).lane(0);
  }

  private interface PerThread {
    void run(int thread) throws Exception;
  }

  /** Runs {@code body} on {@code threads} platform threads started together; the slowest's time. */
  private static long runAll(int threads, PerThread body) throws Exception {
    CyclicBarrier start = new CyclicBarrier(threads + 1);
    CyclicBarrier end = new CyclicBarrier(threads + 1);
    Thread[] ts = new Thread[threads];
    Exception[] failure = new Exception[1];
    for (int t = 0; t < threads; t++) {
      int id = t;
      ts[t] =
          Thread.ofPlatform()
              .start(
                  () -> {
                    try {
                      start.await();
                      body.run(id);
                      end.await();
                    } catch (Exception e) {
                      failure[0] = e;
                    }
                  });
    }
    start.await();
    long t0 = System.nanoTime();
    end.await();
    long nanos = System.nanoTime() - t0;
    for (Thread t : ts) {
      t.join();
    }
    if (failure[0] != null) {
      throw failure[0];
    }
    return nanos;
  }
}
