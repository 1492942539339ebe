package dev.starserve.bench.jmh;

import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * The computed figures of a kernel benchmark: every call adds the work it did, and JMH divides the
 * sums by the measured time like its own score, so in throughput mode they print as secondary
 * results {@code :gflop} and {@code :gbyte} in "ops/s", which read as GFLOP/s and GB/s.
 *
 * <p>{@code gflop} counts 2 FLOP per multiply-add (as {@code bench limits} counts its FMA peak);
 * {@code gbyte} counts the bytes a call must move at least (each input read once, each output
 * written once), what {@code bench limits} divides its triad by. Each benchmark's comment says what
 * it counts. A figure above the machine's bandwidth means the data came from the caches.
 */
@State(Scope.Thread)
@AuxCounters(AuxCounters.Type.OPERATIONS)
public class Work {
  public double gflop;
  public double gbyte;

  @Setup(Level.Iteration)
  public void reset() {
    gflop = 0;
    gbyte = 0;
  }

  void add(double flop, double bytes) {
    gflop += flop * 1e-9;
    gbyte += bytes * 1e-9;
  }
}
