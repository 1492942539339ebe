package dev.starserve.gateway.cluster;

import com.google.protobuf.InvalidProtocolBufferException;
import com.hazelcast.cluster.Member;
import com.hazelcast.cluster.MembershipEvent;
import com.hazelcast.cluster.MembershipListener;
import com.hazelcast.core.EntryEvent;
import com.hazelcast.core.HazelcastInstance;
import com.hazelcast.map.IMap;
import com.hazelcast.map.listener.EntryAddedListener;
import com.hazelcast.map.listener.EntryEvictedListener;
import com.hazelcast.map.listener.EntryExpiredListener;
import com.hazelcast.map.listener.EntryRemovedListener;
import com.hazelcast.map.listener.EntryUpdatedListener;
import dev.starserve.proto.worker.v1.WorkerInfo;
import dev.starserve.proto.worker.v1.WorkerState;
import java.time.Duration;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The gateway's local copy of the worker registry (map {@value #MAP_NAME}: worker_id → serialized
 * {@link WorkerInfo}).
 *
 * <p>Hazelcast entry events (added, updated, removed, evicted, expired) and membership events (a
 * departed member's workers are dropped at once) rebuild an immutable snapshot that the request
 * path reads through a volatile field; it never waits on Hazelcast. A record whose {@code
 * updated_at_millis} is older than {@code maxAge} is dropped by a sweep every half {@code maxAge},
 * in case an expiry event was lost.
 *
 * <p>A record that lapses (expires, or grows older than {@code maxAge}) while the member that wrote
 * it is still in the cluster is not forgotten at once: its worker leaves {@link #snapshot()} (no
 * new requests) but stays in {@link #reachable()} (its requests in flight go on) until it refreshes
 * its record again, its member leaves, its record is deleted, or {@code staleGrace} passes. A
 * worker whose publisher thread is starved for a few seconds (a cold JVM on a busy machine) then
 * does not lose its requests in flight; a hung one is still given up on after the grace.
 */
public final class WorkerDirectory implements WorkerView, AutoCloseable {
  public static final String MAP_NAME = "starserve-workers";
  public static final Duration DEFAULT_MAX_AGE = Duration.ofSeconds(5);
  public static final Duration DEFAULT_STALE_GRACE = Duration.ofSeconds(30);

  private static final Logger LOG = LoggerFactory.getLogger(WorkerDirectory.class);

  /** One live record and the member that last wrote it (null until an event says). */
  private record Entry(WorkerInfo info, UUID member) {}

  /**
   * A lapsed record of a worker whose member is still present, and when (local clock) it lapsed.
   */
  private record Stale(Entry entry, long sinceMillis) {}

  private final HazelcastInstance hazelcast;
  private final IMap<String, byte[]> map;
  private final long maxAgeMillis;
  private final long staleGraceMillis;
  private final LongSupplier clock;
  private final CopyOnWriteArrayList<Runnable> listeners = new CopyOnWriteArrayList<>();
  private final Object lock = new Object();
  private final ScheduledExecutorService sweeper;
  private Map<String, Entry> entries = new HashMap<>(); // guarded by lock
  private Map<String, Stale> stale = new HashMap<>(); // guarded by lock
  private volatile Map<String, WorkerInfo> snapshot = Map.of();
  private volatile Map<String, WorkerInfo> reachable = Map.of();
  private UUID entryListenerId;
  private UUID membershipListenerId;
  private boolean closed;

  public WorkerDirectory(HazelcastInstance hazelcast) {
    this(hazelcast, DEFAULT_MAX_AGE, DEFAULT_STALE_GRACE, System::currentTimeMillis);
  }

  public WorkerDirectory(HazelcastInstance hazelcast, Duration maxAge, LongSupplier clock) {
    this(hazelcast, maxAge, DEFAULT_STALE_GRACE, clock);
  }

  /**
   * @param maxAge records older than this (by their {@code updated_at_millis}) are ignored; the
   *     publisher's TTL. NOTE: it compares the worker's clock with this one, so clocks must agree
   *     to well within it.
   * @param staleGrace how long a worker whose record lapsed while its member is still in the
   *     cluster stays {@link #reachable()} (0: not at all)
   */
  public WorkerDirectory(
      HazelcastInstance hazelcast, Duration maxAge, Duration staleGrace, LongSupplier clock) {
    if (maxAge.isNegative() || maxAge.isZero()) {
      throw new IllegalArgumentException("maxAge must be > 0, got " + maxAge);
    }
    if (staleGrace.isNegative()) {
      throw new IllegalArgumentException("staleGrace must be >= 0, got " + staleGrace);
    }
    this.staleGraceMillis = staleGrace.toMillis();
    this.hazelcast = hazelcast;
    this.map = hazelcast.getMap(MAP_NAME);
    this.maxAgeMillis = maxAge.toMillis();
    this.clock = clock;
    this.sweeper =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "starserve-worker-directory");
              t.setDaemon(true);
              return t;
            });
  }

  /**
   * Registers the listeners and loads the current records. Blocks on Hazelcast: call it once at
   * start-up, off any event loop ({@code vertx.executeBlocking}).
   */
  public WorkerDirectory start() {
    synchronized (lock) {
      if (closed || entryListenerId != null) {
        return this;
      }
    }
    // Listeners first, then the load: an update that races the load is not lost; the newer
    // updated_at_millis wins in put().
    entryListenerId = map.addEntryListener(new Events(), true);
    membershipListenerId = hazelcast.getCluster().addMembershipListener(new Members());
    for (Map.Entry<String, byte[]> e : map.entrySet()) {
      WorkerInfo info = parse(e.getKey(), e.getValue());
      if (info != null) {
        put(e.getKey(), info, null);
      }
    }
    long period = Math.max(50, maxAgeMillis / 2);
    sweeper.scheduleAtFixedRate(this::sweep, period, period, TimeUnit.MILLISECONDS);
    return this;
  }

  @Override
  public Map<String, WorkerInfo> snapshot() {
    return snapshot;
  }

  @Override
  public Map<String, WorkerInfo> reachable() {
    return reachable;
  }

  @Override
  public Subscription addListener(Runnable listener) {
    listeners.add(listener);
    return () -> listeners.remove(listener);
  }

  /** How many live workers are in each state (every state present, zeros included). */
  public Map<WorkerState, Integer> countsByState() {
    Map<WorkerState, Integer> counts = new EnumMap<>(WorkerState.class);
    for (WorkerState s : List.of(WorkerState.READY, WorkerState.DRAINING)) {
      counts.put(s, 0);
    }
    for (WorkerInfo w : snapshot.values()) {
      WorkerState s = w.getState() == WorkerState.UNRECOGNIZED ? null : w.getState();
      if (s != null) {
        counts.merge(s, 1, Integer::sum);
      }
    }
    return counts;
  }

  /** Whether {@link #close} has run (it may still be removing the registry listeners). */
  public boolean isClosed() {
    synchronized (lock) {
      return closed;
    }
  }

  @Override
  public void close() {
    synchronized (lock) {
      if (closed) {
        return;
      }
      closed = true;
    }
    sweeper.shutdownNow();
    try {
      if (entryListenerId != null) {
        map.removeEntryListener(entryListenerId);
      }
      if (membershipListenerId != null) {
        hazelcast.getCluster().removeMembershipListener(membershipListenerId);
      }
    } catch (RuntimeException e) {
      LOG.debug("could not remove registry listeners (cluster already down): {}", e.toString());
    }
  }

  private void put(String workerId, WorkerInfo info, UUID member) {
    if (putLocked(workerId, info, member)) {
      notifyListeners();
    }
  }

  private boolean putLocked(String workerId, WorkerInfo info, UUID member) {
    synchronized (lock) {
      Entry old = entries.get(workerId);
      if (old != null && old.info().getUpdatedAtMillis() > info.getUpdatedAtMillis()) {
        return false;
      }
      if (isStale(info)) {
        return false;
      }
      if (old == null && stale.get(workerId) instanceof Stale s) {
        old = s.entry();
      }
      Map<String, Entry> next = new HashMap<>(entries);
      next.put(
          workerId, new Entry(info, member != null ? member : old == null ? null : old.member()));
      Map<String, Stale> nextStale = stale;
      if (stale.containsKey(workerId)) {
        nextStale = new HashMap<>(stale);
        nextStale.remove(workerId);
        LOG.info("worker {} refreshed its record again", workerId);
      }
      publish(next, nextStale);
      return true;
    }
  }

  /** The record was deleted (the worker left the registry itself): forget it at once. */
  private void remove(Set<String> workerIds) {
    boolean changed;
    synchronized (lock) {
      Map<String, Entry> next = new HashMap<>(entries);
      Map<String, Stale> nextStale = new HashMap<>(stale);
      boolean a = next.keySet().removeAll(workerIds);
      boolean b = nextStale.keySet().removeAll(workerIds);
      changed = a || b;
      if (changed) {
        publish(next, nextStale);
      }
    }
    if (changed) {
      notifyListeners();
    }
  }

  /** The record lapsed (expired or evicted): stale while its member is still here, else gone. */
  private void lapse(Set<String> workerIds) {
    boolean changed = false;
    synchronized (lock) {
      Map<String, Entry> next = new HashMap<>(entries);
      Map<String, Stale> nextStale = new HashMap<>(stale);
      for (String id : workerIds) {
        Entry e = next.remove(id);
        if (e != null) {
          changed = true;
          keepIfMemberPresent(id, e, nextStale);
        }
      }
      if (changed) {
        publish(next, nextStale);
      }
    }
    if (changed) {
      notifyListeners();
    }
  }

  private void removeMember(UUID member) {
    boolean changed;
    synchronized (lock) {
      Map<String, Entry> next = new HashMap<>(entries);
      Map<String, Stale> nextStale = new HashMap<>(stale);
      boolean a = next.values().removeIf(e -> member.equals(e.member()));
      boolean b = nextStale.values().removeIf(s -> member.equals(s.entry().member()));
      changed = a || b;
      if (changed) {
        publish(next, nextStale);
      }
    }
    if (changed) {
      notifyListeners();
    }
  }

  private void sweep() {
    try {
      boolean changed = false;
      synchronized (lock) {
        Map<String, Entry> next = new HashMap<>(entries);
        Map<String, Stale> nextStale = new HashMap<>(stale);
        for (var it = next.entrySet().iterator(); it.hasNext(); ) {
          Map.Entry<String, Entry> e = it.next();
          if (isStale(e.getValue().info())) {
            it.remove();
            changed = true;
            keepIfMemberPresent(e.getKey(), e.getValue(), nextStale);
          }
        }
        long now = clock.getAsLong();
        for (var it = nextStale.entrySet().iterator(); it.hasNext(); ) {
          Map.Entry<String, Stale> e = it.next();
          if (now - e.getValue().sinceMillis() >= staleGraceMillis) {
            LOG.warn(
                "worker {} has not refreshed its record for {} ms past its expiry; given up on",
                e.getKey(),
                now - e.getValue().sinceMillis());
            it.remove();
            changed = true;
          }
        }
        if (changed) {
          publish(next, nextStale);
        }
      }
      if (changed) {
        notifyListeners();
      }
    } catch (RuntimeException e) {
      LOG.warn("worker directory sweep failed", e);
    }
  }

  // Called with lock held.
  private void keepIfMemberPresent(String workerId, Entry e, Map<String, Stale> nextStale) {
    if (staleGraceMillis > 0 && e.member() != null && isMember(e.member())) {
      LOG.warn(
          "worker {}'s record lapsed but its cluster member is still here: no new requests, the"
              + " ones in flight go on (for up to {} ms)",
          workerId,
          staleGraceMillis);
      nextStale.put(workerId, new Stale(e, clock.getAsLong()));
    }
  }

  private boolean isMember(UUID member) {
    for (Member m : hazelcast.getCluster().getMembers()) {
      if (m.getUuid().equals(member)) {
        return true;
      }
    }
    return false;
  }

  private boolean isStale(WorkerInfo info) {
    return clock.getAsLong() - info.getUpdatedAtMillis() > maxAgeMillis;
  }

  // Called with lock held. The caller then notifies the listeners, after letting go of the lock.
  private void publish(Map<String, Entry> next, Map<String, Stale> nextStale) {
    entries = next;
    stale = nextStale;
    Map<String, WorkerInfo> view = new HashMap<>();
    next.forEach((id, e) -> view.put(id, e.info()));
    snapshot = Map.copyOf(view);
    nextStale.forEach((id, st) -> view.putIfAbsent(id, st.entry().info()));
    reachable = Map.copyOf(view);
  }

  /**
   * Tells the listeners that the snapshot changed. NOTE: never with the lock held: a listener that
   * takes a lock of its own (the gateway's gauges) while another thread holds that lock and calls
   * into this directory (the gateway closing it) deadlocked {@code ./starserve serve} on SIGTERM. A
   * listener reads the snapshot itself, so it may see a newer one than the change it hears of.
   */
  private void notifyListeners() {
    for (Runnable l : listeners) {
      try {
        l.run();
      } catch (RuntimeException e) {
        LOG.warn("worker directory listener failed", e);
      }
    }
  }

  private static WorkerInfo parse(String key, byte[] value) {
    if (value == null) {
      return null;
    }
    try {
      WorkerInfo info = WorkerInfo.parseFrom(value);
      if (!info.getWorkerId().equals(key)) {
        LOG.warn("registry record under {} names worker {}; ignored", key, info.getWorkerId());
        return null;
      }
      return info;
    } catch (InvalidProtocolBufferException e) {
      LOG.warn("unreadable registry record under {}: {}", key, e.toString());
      return null;
    }
  }

  private static UUID memberOf(EntryEvent<String, byte[]> event) {
    Member m = event.getMember();
    return m == null ? null : m.getUuid();
  }

  private final class Events
      implements EntryAddedListener<String, byte[]>,
          EntryUpdatedListener<String, byte[]>,
          EntryRemovedListener<String, byte[]>,
          EntryEvictedListener<String, byte[]>,
          EntryExpiredListener<String, byte[]> {
    @Override
    public void entryAdded(EntryEvent<String, byte[]> event) {
      upsert(event);
    }

    @Override
    public void entryUpdated(EntryEvent<String, byte[]> event) {
      upsert(event);
    }

    @Override
    public void entryRemoved(EntryEvent<String, byte[]> event) {
      try {
        remove(Set.of(event.getKey()));
      } catch (RuntimeException e) {
        LOG.warn("registry event failed", e);
      }
    }

    @Override
    public void entryEvicted(EntryEvent<String, byte[]> event) {
      lapsed(event);
    }

    @Override
    public void entryExpired(EntryEvent<String, byte[]> event) {
      lapsed(event);
    }

    private void upsert(EntryEvent<String, byte[]> event) {
      try {
        WorkerInfo info = parse(event.getKey(), event.getValue());
        if (info != null) {
          put(event.getKey(), info, memberOf(event));
        }
      } catch (RuntimeException e) {
        LOG.warn("registry event failed", e);
      }
    }

    private void lapsed(EntryEvent<String, byte[]> event) {
      try {
        lapse(Set.of(event.getKey()));
      } catch (RuntimeException e) {
        LOG.warn("registry event failed", e);
      }
    }
  }

  private final class Members implements MembershipListener {
    @Override
    public void memberAdded(MembershipEvent event) {}

    @Override
    public void memberRemoved(MembershipEvent event) {
      try {
        LOG.info("cluster member {} left; dropping its workers", event.getMember());
        removeMember(event.getMember().getUuid());
      } catch (RuntimeException e) {
        LOG.warn("membership event failed", e);
      }
    }
  }
}
