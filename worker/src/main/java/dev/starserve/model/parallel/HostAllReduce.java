package dev.starserve.model.parallel;

import dev.starserve.backend.Buffer;
import dev.starserve.backend.host.HostBuffer;

/**
 * The all-reduce for ranks whose activations are Java arrays: each rank publishes its partial
 * buffer, meets the others once, then sums every rank's partial in rank order into its own output.
 *
 * <pre>
 * call k:   rank r: slots[k % 2][r] = partial_r ── barrier ── out_r = ((p_0 + p_1) + …) + p_N-1
 * </pre>
 *
 * NOTE: one barrier per call, not two. After the barrier the ranks read each other's partials while
 * a faster rank may already be on its way to the next call; that is safe because call k + 1 uses
 * the other slot set (and the caller the other partial buffer), and call k + 2 cannot get past its
 * barrier before every rank has arrived at call k + 1, which it does only after reading call k's
 * partials. Every rank adds up the whole buffer itself (N reads per element instead of a
 * reduce-scatter's one) to save the second barrier: decode moves one row per step, so meeting costs
 * more than adding.
 */
final class HostAllReduce implements AllReduce {
  private final RankBarrier barrier;
  private final float[][][] slots; // [call % 2][rank] the partial buffers being reduced
  private final int[] calls; // [rank] calls made so far; element r touched by rank r only

  HostAllReduce(int size, RankBarrier barrier) {
    this.barrier = barrier;
    this.slots = new float[2][size][];
    this.calls = new int[size];
  }

  @Override
  public void sum(int rank, Buffer partial, Buffer out, int rows) {
    float[][] parts = slots[calls[rank]++ & 1];
    parts[rank] = HostBuffer.of(partial).data();
    barrier.awaitOrAbort();
    float[] o = HostBuffer.of(out).data();
    int len = rows * partial.cols();
    System.arraycopy(parts[0], 0, o, 0, len);
    for (int r = 1; r < parts.length; r++) {
      float[] p = parts[r];
      for (int i = 0; i < len; i++) {
        o[i] += p[i];
      }
    }
  }
}
