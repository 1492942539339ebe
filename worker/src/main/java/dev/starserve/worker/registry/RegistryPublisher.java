package dev.starserve.worker.registry;

import com.hazelcast.core.HazelcastInstance;
import com.hazelcast.map.IMap;
import dev.starserve.proto.worker.v1.WorkerInfo;
import dev.starserve.proto.worker.v1.WorkerState;
import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps this worker's record in the cluster registry: every {@code period} it puts the supplier's
 * {@link WorkerInfo} (stamped with the current time) under its worker id with a TTL, so that a
 * worker whose process dies or hangs drops out of routing within the TTL.
 *
 * <p>Runs on its own daemon thread, never on the engine thread; the supplier must only read
 * counters the engine publishes (it is called from that thread).
 */
public final class RegistryPublisher implements AutoCloseable {
  /** The registry map: worker_id → serialized {@link WorkerInfo}. */
  public static final String MAP_NAME = "starserve-workers";

  public static final Duration DEFAULT_PERIOD = Duration.ofSeconds(1);
  public static final Duration DEFAULT_TTL = Duration.ofSeconds(5);

  private static final Logger LOG = LoggerFactory.getLogger(RegistryPublisher.class);

  private final IMap<String, byte[]> map;
  private final Supplier<WorkerInfo> info;
  private final Duration period;
  private final Duration ttl;
  private final ScheduledExecutorService timer;
  private final Object lock = new Object();
  private ScheduledFuture<?> task;
  private boolean draining;
  private boolean closed;
  private String lastWorkerId;
  private volatile boolean failing;

  public RegistryPublisher(HazelcastInstance hazelcast, Supplier<WorkerInfo> info) {
    this(hazelcast, info, DEFAULT_PERIOD, DEFAULT_TTL);
  }

  public RegistryPublisher(
      HazelcastInstance hazelcast, Supplier<WorkerInfo> info, Duration period, Duration ttl) {
    if (period.isNegative() || period.isZero()) {
      throw new IllegalArgumentException("period must be > 0, got " + period);
    }
    if (ttl.compareTo(period) <= 0) {
      throw new IllegalArgumentException(
          "ttl must be longer than period (" + period + "), got " + ttl);
    }
    this.map = hazelcast.getMap(MAP_NAME);
    this.info = info;
    this.period = period;
    this.ttl = ttl;
    this.timer =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "starserve-registry-publisher");
              t.setDaemon(true);
              return t;
            });
  }

  /** Publishes now and then every period. Idempotent. */
  public RegistryPublisher start() {
    synchronized (lock) {
      if (closed || task != null) {
        return this;
      }
      task =
          timer.scheduleAtFixedRate(
              this::publishQuietly, 0, period.toMillis(), TimeUnit.MILLISECONDS);
    }
    return this;
  }

  /**
   * From now on the record says DRAINING (gateways stop routing new requests here); published at
   * once, blocking until Hazelcast has it.
   */
  public void markDraining() {
    synchronized (lock) {
      draining = true;
    }
    publishQuietly();
  }

  /** Publishes the current record once (blocking). Exposed for tests and for immediate updates. */
  public void publishNow() {
    publishQuietly();
  }

  /** Stops refreshing and removes the record, so gateways forget this worker at once. */
  @Override
  public void close() {
    String id;
    synchronized (lock) {
      if (closed) {
        return;
      }
      closed = true;
      if (task != null) {
        task.cancel(false);
      }
      id = lastWorkerId;
    }
    timer.shutdown();
    try {
      timer.awaitTermination(2, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    if (id == null) {
      id = safeInfo() instanceof WorkerInfo w ? w.getWorkerId() : null;
    }
    if (id != null && !id.isEmpty()) {
      try {
        map.delete(id);
      } catch (RuntimeException e) {
        // The cluster may already be gone (shutdown order); the TTL removes the record then.
        LOG.warn("could not remove worker {} from the registry: {}", id, e.toString());
      }
    }
  }

  private WorkerInfo safeInfo() {
    try {
      return info.get();
    } catch (RuntimeException e) {
      LOG.warn("worker info supplier failed: {}", e.toString());
      return null;
    }
  }

  private void publishQuietly() {
    try {
      WorkerInfo current = info.get();
      WorkerInfo.Builder record =
          current.toBuilder().setUpdatedAtMillis(System.currentTimeMillis());
      synchronized (lock) {
        if (closed) {
          return;
        }
        if (draining) {
          record.setState(WorkerState.DRAINING);
        } else if (record.getState() == WorkerState.WORKER_STATE_UNSPECIFIED) {
          record.setState(WorkerState.READY);
        }
        lastWorkerId = record.getWorkerId();
      }
      if (record.getWorkerId().isEmpty()) {
        throw new IllegalStateException("worker_id must not be empty");
      }
      map.set(
          record.getWorkerId(),
          record.build().toByteArray(),
          ttl.toMillis(),
          TimeUnit.MILLISECONDS);
      if (failing) {
        failing = false;
        LOG.info("registry refresh works again");
      }
    } catch (RuntimeException e) {
      // NOTE: a failed refresh is skipped, not retried: the record expires after the TTL if the
      // worker cannot report, which is what gateways should see. Logged once per failure spell.
      if (!failing) {
        failing = true;
        LOG.warn("registry refresh failed (the record expires after {}): {}", ttl, e.toString());
      } else {
        LOG.debug("registry refresh failed again: {}", e.toString());
      }
    }
  }
}
