package dev.starserve.gateway.route;

import dev.starserve.gateway.cluster.WorkerView;
import dev.starserve.proto.worker.v1.WorkerInfo;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;

/** A WorkerView the test sets by hand. */
final class StaticView implements WorkerView {
  private volatile Map<String, WorkerInfo> workers = Map.of();
  private final CopyOnWriteArrayList<Runnable> listeners = new CopyOnWriteArrayList<>();

  void put(WorkerInfo w) {
    Map<String, WorkerInfo> next = new HashMap<>(workers);
    next.put(w.getWorkerId(), w);
    set(next);
  }

  void remove(String id) {
    Map<String, WorkerInfo> next = new HashMap<>(workers);
    next.remove(id);
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
  public Subscription addListener(Runnable listener) {
    listeners.add(listener);
    return () -> listeners.remove(listener);
  }
}
