package dev.starserve.model.parallel;

import dev.starserve.backend.Buffer;
import dev.starserve.backend.host.HostBuffer;

/**
 * The all-reduce for ranks whose activations are Java arrays: each rank publishes its buffer, then
 * sums one contiguous slice of the elements over every rank and writes that slice back to every
 * rank's buffer.
 *
 * <pre>
 *            elements 0 ……………………………………………………………… rows·cols
 * rank 0:   [ summed by rank 0 | summed by rank 1 | … ]
 * rank 1:   [        "         |        "         | … ]   each slice: b0 += b1 += …; copy b0 out
 * </pre>
 *
 * Two barrier trips: one so that every buffer is published (and its partial sums written), one so
 * that every slice is summed before any rank reads its buffer again.
 */
final class HostAllReduce implements AllReduce {
  private final int size;
  private final RankBarrier barrier;
  private final float[][] parts; // [rank] the buffer being reduced, published by the barrier

  HostAllReduce(int size, RankBarrier barrier) {
    this.size = size;
    this.barrier = barrier;
    this.parts = new float[size][];
  }

  @Override
  public void sum(int rank, Buffer partial, int rows) {
    parts[rank] = HostBuffer.of(partial).data();
    barrier.awaitOrAbort();
    int len = rows * partial.cols();
    int from = (int) ((long) len * rank / size);
    int to = (int) ((long) len * (rank + 1) / size);
    float[] first = parts[0];
    for (int r = 1; r < size; r++) {
      float[] p = parts[r];
      for (int i = from; i < to; i++) {
        first[i] += p[i];
      }
    }
    for (int r = 1; r < size; r++) {
      System.arraycopy(first, from, parts[r], from, to - from);
    }
    barrier.awaitOrAbort();
  }
}
