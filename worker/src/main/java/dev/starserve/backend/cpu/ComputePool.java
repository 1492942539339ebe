package dev.starserve.backend.cpu;

import dev.starserve.backend.ParallelTask;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * The compute threads of one engine: {@code parallelism − 1} platform threads plus the caller.
 * {@link #parallelFor} hands out a range in chunks (each thread takes the next chunk when it is
 * done with its last, so a thread slowed down by the OS or by its share of the work does not hold
 * the others up) and returns when all are done. Owned by the engine (never the common pool) so that
 * model math never competes with request handling for the same threads.
 *
 * <p>Workers spin briefly and then park between calls; a forward pass issues a few hundred calls
 * per step, so the spin keeps wake-up latency off the critical path.
 */
public final class ComputePool implements AutoCloseable {

  private static final int SPIN_ITERATIONS = 50_000;

  /**
   * Chunks per thread and call: the last chunk decides when a call ends, so the wait at the end is
   * about half a chunk; 16 (was 4) keeps it near 3% of a call for the price of one atomic add per
   * chunk.
   */
  private static final int CHUNKS_PER_THREAD = 16;

  private final int parallelism;
  private final Thread[] workers;
  private final AtomicInteger remaining = new AtomicInteger();
  private final AtomicInteger next = new AtomicInteger(); // start of the next chunk to hand out
  private volatile int generation;
  private volatile boolean closed;
  private volatile Throwable failure;
  private ParallelTask task; // published by the volatile write of generation
  private int size;
  private int grain;

  public ComputePool(int parallelism) {
    if (parallelism < 1) {
      throw new IllegalArgumentException("parallelism must be at least 1, got " + parallelism);
    }
    this.parallelism = parallelism;
    this.workers = new Thread[parallelism - 1];
    for (int i = 0; i < workers.length; i++) {
      int id = i + 1;
      workers[i] =
          Thread.ofPlatform().daemon().name("starserve-compute-" + id).unstarted(() -> loop(id));
      workers[i].start();
    }
  }

  public int parallelism() {
    return parallelism;
  }

  /**
   * Runs {@code task} over {@code [0, n)} in chunks of at least {@code minChunk} (about {@link
   * #CHUNKS_PER_THREAD} per thread); a range shorter than {@code 2 · minChunk} runs on the caller
   * alone. Which thread runs which chunk varies from call to call. Not reentrant: one caller at a
   * time.
   */
  public void parallelFor(int n, int minChunk, ParallelTask task) {
    if (n <= 0) {
      return;
    }
    int threads = Math.min(parallelism, Math.max(1, n / Math.max(1, minChunk)));
    if (threads == 1) {
      task.run(0, n, 0);
      return;
    }
    this.task = task;
    this.size = n;
    this.grain =
        Math.max(
            Math.max(1, minChunk),
            (n + CHUNKS_PER_THREAD * parallelism - 1) / (CHUNKS_PER_THREAD * parallelism));
    this.next.set(0);
    this.failure = null;
    remaining.set(parallelism - 1);
    generation++; // publishes task and size
    for (Thread w : workers) {
      LockSupport.unpark(w);
    }
    Throwable own = null;
    try {
      runChunks(task, n, 0);
    } catch (Throwable t) {
      own = t;
    }
    while (remaining.get() > 0) {
      Thread.onSpinWait();
    }
    this.task = null;
    Throwable f = own != null ? own : failure;
    if (f instanceof RuntimeException re) {
      throw re;
    }
    if (f instanceof Error e) {
      throw e;
    }
    if (f != null) {
      throw new IllegalStateException("compute task failed", f);
    }
  }

  private void runChunks(ParallelTask t, int n, int worker) {
    int g = grain;
    for (int from = next.getAndAdd(g); from < n; from = next.getAndAdd(g)) {
      t.run(from, Math.min(n, from + g), worker);
    }
  }

  private void loop(int id) {
    int seen = 0;
    while (true) {
      int spins = 0;
      while (generation == seen && !closed) {
        if (spins++ < SPIN_ITERATIONS) {
          Thread.onSpinWait();
        } else {
          LockSupport.park(this);
        }
      }
      if (closed) {
        return;
      }
      seen = generation;
      try {
        runChunks(task, size, id);
      } catch (Throwable e) {
        failure = e;
      } finally {
        remaining.decrementAndGet();
      }
    }
  }

  @Override
  public void close() {
    closed = true;
    for (Thread w : workers) {
      LockSupport.unpark(w);
    }
  }
}
