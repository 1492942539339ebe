package dev.starserve.backend;

/**
 * Host-side work on the index range {@code [from, to)}, run by compute thread number {@code worker}
 * (see {@link Backend#parallelFor}).
 */
@FunctionalInterface
public interface ParallelTask {
  void run(int from, int to, int worker);
}
