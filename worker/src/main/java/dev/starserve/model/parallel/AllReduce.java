package dev.starserve.model.parallel;

import dev.starserve.backend.Backend;
import dev.starserve.backend.Buffer;
import dev.starserve.backend.host.HostBackend;

/**
 * Sums an activation buffer over the tensor-parallel ranks: the one collective a row-split linear
 * layer (attn.c_proj, mlp.c_proj) needs.
 *
 * <p>Every rank calls {@link #sum} with its own buffer (of its own backend), on its own thread, at
 * the same point of the forward pass. The call returns when rows {@code 0..rows-1} of every rank's
 * buffer hold {@code ((b0 + b1) + b2) + …}: the same summation order whoever computes it, so the
 * sum is bit-identical on every rank and the ranks' replicated residual streams never drift apart.
 *
 * <p>A backend that keeps activations elsewhere (a GPU) supplies its own implementation, say with
 * peer-to-peer copies, and adds it to {@link #forBackends}.
 */
public interface AllReduce {

  /**
   * Replaces rows {@code 0..rows-1} of {@code partial} (rank {@code rank}'s) by the sum over every
   * rank of that buffer, in rank order.
   *
   * @throws RankBarrier.RankAbortedException when another rank failed or the model closed
   */
  void sum(int rank, Buffer partial, int rows);

  /** The all-reduce for ranks running on {@code backends}, meeting at {@code barrier}. */
  static AllReduce forBackends(Backend[] backends, RankBarrier barrier) {
    for (Backend b : backends) {
      if (!(b instanceof HostBackend)) {
        throw new UnsupportedOperationException(
            "tensor parallelism has no all-reduce for the " + b.name() + " backend yet");
      }
    }
    return new HostAllReduce(backends.length, barrier);
  }
}
