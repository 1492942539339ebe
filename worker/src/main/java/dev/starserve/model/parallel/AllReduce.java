package dev.starserve.model.parallel;

import dev.starserve.backend.Backend;
import dev.starserve.backend.Buffer;
import dev.starserve.backend.host.HostBackend;

/**
 * Sums an activation buffer over the tensor-parallel ranks: the one collective a row-split linear
 * layer (attn.c_proj, mlp.c_proj) needs.
 *
 * <p>Every rank calls {@link #sum} with its own buffers (of its own backend), on its own thread, at
 * the same point of the forward pass. The call returns when rows {@code 0..rows-1} of the rank's
 * {@code out} hold {@code ((p0 + p1) + p2) + …} over the ranks' {@code partial} buffers: the same
 * summation order on every rank, so the sum is bit-identical everywhere and the ranks' replicated
 * residual streams never drift apart.
 *
 * <p>The ranks meet once per call. An implementation may therefore go on reading a rank's {@code
 * partial} until every rank has made its next call: a caller alternates between two partial buffers
 * and writes neither before then.
 *
 * <p>A backend that keeps activations elsewhere (a GPU) supplies its own implementation, say with
 * peer-to-peer copies, and adds it to {@link #forBackends}.
 */
public interface AllReduce {

  /**
   * Writes to rows {@code 0..rows-1} of {@code out} the sum over every rank of its {@code partial},
   * in rank order. {@code partial} and {@code out} are rank {@code rank}'s and distinct.
   *
   * @throws RankBarrier.RankAbortedException when another rank failed or the model closed
   */
  void sum(int rank, Buffer partial, Buffer out, int rows);

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
