package dev.starserve.gateway.cluster;

import dev.starserve.proto.worker.v1.WorkerInfo;
import java.util.List;
import java.util.Map;

/**
 * A read-only, never-blocking view of the live workers: what the router reads on the request path.
 * {@link WorkerDirectory} keeps it from the Hazelcast registry; tests give a fixed one.
 */
public interface WorkerView {
  /** Live records by worker id; an immutable snapshot. New requests go only to these. */
  Map<String, WorkerInfo> snapshot();

  /**
   * The workers whose requests in flight should go on: the live ones, plus those whose record
   * lapsed while their process is evidently still there (still a cluster member), for a grace
   * period. A worker missing here has left: its requests in flight are failed over.
   */
  default Map<String, WorkerInfo> reachable() {
    return snapshot();
  }

  /** Live records of the workers serving {@code modelId} (any state), in worker id order. */
  default List<WorkerInfo> workers(String modelId) {
    return snapshot().values().stream()
        .filter(w -> w.getModelId().equals(modelId))
        .sorted(java.util.Comparator.comparing(WorkerInfo::getWorkerId))
        .toList();
  }

  /** Calls {@code listener} (on any thread, must not block) after every change of the snapshot. */
  Subscription addListener(Runnable listener);

  /** Undoes {@link #addListener}. */
  interface Subscription extends AutoCloseable {
    @Override
    void close();
  }
}
