package dev.starserve.gateway.route;

import dev.starserve.gateway.cluster.WorkerView;
import dev.starserve.proto.worker.v1.WorkerInfo;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;

/** A WorkerView the test sets by hand. */
final class StaticView implements WorkerView {
  private volatile Map<String, WorkerInfo> workers = Map.of();
  private volatile Map<String, WorkerInfo> stale = Map.of();
  private final CopyOnWriteArrayList<Runnable> listeners = new CopyOnWriteArrayList<>();

  void put(WorkerInfo w) {
    Map<String, WorkerInfo> next = new HashMap<>(workers);
    next.put(w.getWorkerId(), w);
    set(next);
  }

  void remove(String id) {
    Map<String, WorkerInfo> next = new HashMap<>(workers);
    next.remove(id);
    Map<String, WorkerInfo> nextStale = new HashMap<>(stale);
    nextStale.remove(id);
    stale = Map.copyOf(nextStale);
    set(next);
  }

  /** As the directory does when a record lapses but the worker's member is still present. */
  void markStale(String id) {
    Map<String, WorkerInfo> next = new HashMap<>(workers);
    WorkerInfo w = next.remove(id);
    Map<String, WorkerInfo> nextStale = new HashMap<>(stale);
    nextStale.put(id, w);
    stale = Map.copyOf(nextStale);
    set(next);
  }

  private void set(Map<String, WorkerInfo> next) {
    workers = Map.copyOf(next);
    listeners.forEach(Runnable::run);
  }

  @Override
  public Map<String, WorkerInfo> snapshot() {
    return workers;
  }

  @Override
  public Map<String, WorkerInfo> reachable() {
    Map<String, WorkerInfo> all = new HashMap<>(stale);
    all.putAll(workers);
    return Map.copyOf(all);
  }

  @Override
  public Subscription addListener(Runnable listener) {
    listeners.add(listener);
    return () -> listeners.remove(listener);
  }
}
