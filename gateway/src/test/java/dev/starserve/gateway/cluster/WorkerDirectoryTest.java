package dev.starserve.gateway.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.hazelcast.core.Hazelcast;
import com.hazelcast.core.HazelcastInstance;
import com.hazelcast.map.IMap;
import dev.starserve.proto.worker.v1.WorkerInfo;
import dev.starserve.proto.worker.v1.WorkerState;
import java.time.Duration;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The directory on one loopback member, with records written straight into the map. */
class WorkerDirectoryTest {
  private static HazelcastInstance hazelcast;
  private static String clusterName;

  @BeforeAll
  static void startMember() {
    int start = 21000 + (int) (Math.random() * 20000);
    clusterName = "directory-test-" + UUID.randomUUID();
    hazelcast =
        Hazelcast.newHazelcastInstance(
            HazelcastConfigs.build(
                ClusterSettings.tcpIp(clusterName, 0, "").withPortRange(start, 100)));
  }

  @AfterAll
  static void stopMember() {
    hazelcast.getLifecycleService().terminate();
  }

  private static WorkerInfo record(String id, String model, WorkerState state, long at) {
    return WorkerInfo.newBuilder()
        .setWorkerId(id)
        .setModelId(model)
        .setAddress("127.0.0.1:1")
        .setState(state)
        .setUpdatedAtMillis(at)
        .build();
  }

  private static void await(String what, BooleanSupplier condition) throws InterruptedException {
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > end) {
        throw new AssertionError("timed out waiting until " + what);
      }
      Thread.sleep(10);
    }
  }

  @Test
  void loadsExistingRecordsFollowsChangesAndCountsStates() throws Exception {
    IMap<String, byte[]> map = hazelcast.getMap(WorkerDirectory.MAP_NAME);
    map.clear();
    long now = System.currentTimeMillis();
    map.set("w1", record("w1", "m1", WorkerState.READY, now).toByteArray());
    try (WorkerDirectory directory = new WorkerDirectory(hazelcast).start()) {
      assertEquals(1, directory.snapshot().size(), "the initial load sees existing records");
      map.set("w2", record("w2", "m1", WorkerState.DRAINING, now).toByteArray());
      map.set("w3", record("w3", "m2", WorkerState.READY, now).toByteArray());
      await("three workers", () -> directory.snapshot().size() == 3);
      assertEquals(2, directory.workers("m1").size());
      assertEquals("w1", directory.workers("m1").getFirst().getWorkerId());
      assertEquals(2, directory.countsByState().get(WorkerState.READY));
      assertEquals(1, directory.countsByState().get(WorkerState.DRAINING));

      map.delete("w3");
      await("w3 removed", () -> !directory.snapshot().containsKey("w3"));
      // A record filed under another worker's key and garbage are ignored.
      map.set("w9", record("w8", "m1", WorkerState.READY, now).toByteArray());
      map.set("w7", new byte[] {(byte) 0xff, 1, 2});
      Thread.sleep(200);
      assertEquals(2, directory.snapshot().size());
    }
  }

  @Test
  void recordsOlderThanTheMaxAgeAreIgnoredAndSweptOut() throws Exception {
    IMap<String, byte[]> map = hazelcast.getMap(WorkerDirectory.MAP_NAME);
    map.clear();
    AtomicLong clock = new AtomicLong(1_000_000);
    try (WorkerDirectory directory =
        new WorkerDirectory(hazelcast, Duration.ofMillis(500), clock::get).start()) {
      map.set("old", record("old", "m", WorkerState.READY, 1_000_000 - 501).toByteArray());
      map.set("fresh", record("fresh", "m", WorkerState.READY, 1_000_000).toByteArray());
      await("fresh appears", () -> directory.snapshot().containsKey("fresh"));
      Thread.sleep(100);
      assertFalse(directory.snapshot().containsKey("old"), "stale on arrival: ignored");

      clock.addAndGet(501); // "fresh" stops being refreshed
      await("fresh swept", () -> directory.snapshot().isEmpty());
      assertTrue(map.containsKey("fresh"), "the sweep, not Hazelcast, dropped it");
    }
  }

  @Test
  void aLapsedRecordOfAPresentMemberStaysReachableUntilTheGraceEndsOrTheMemberLeaves()
      throws Exception {
    IMap<String, byte[]> map = hazelcast.getMap(WorkerDirectory.MAP_NAME);
    map.clear();
    AtomicLong clock = new AtomicLong(System.currentTimeMillis());
    int port = hazelcast.getCluster().getLocalMember().getSocketAddress().getPort();
    HazelcastInstance other =
        Hazelcast.newHazelcastInstance(
            HazelcastConfigs.build(
                ClusterSettings.tcpIp(clusterName, 0, "127.0.0.1:" + port)
                    .withPortRange(port + 1, 100)));
    try (WorkerDirectory directory =
        new WorkerDirectory(hazelcast, Duration.ofMillis(500), Duration.ofSeconds(2), clock::get)
            .start()) {
      long t0 = clock.get();
      // Written by this member and by the other one: the events name the writer.
      map.set("here", record("here", "m", WorkerState.READY, t0).toByteArray());
      IMap<String, byte[]> fromOther = other.getMap(WorkerDirectory.MAP_NAME);
      fromOther.set("there", record("there", "m", WorkerState.READY, t0).toByteArray());
      await("both live", () -> directory.snapshot().size() == 2);

      clock.addAndGet(501); // neither refreshes: both lapse, both members are present
      await("both lapsed", () -> directory.snapshot().isEmpty());
      assertEquals(2, directory.reachable().size(), "kept for their requests in flight");
      assertTrue(directory.workers("m").isEmpty(), "no new requests");

      // A refresh makes one live again.
      map.set("here", record("here", "m", WorkerState.READY, clock.get()).toByteArray());
      await("here live again", () -> directory.snapshot().containsKey("here"));
      assertEquals(2, directory.reachable().size());

      // The writer of the other one leaves: its worker is gone at once.
      other.getLifecycleService().terminate();
      await("there gone", () -> !directory.reachable().containsKey("there"));

      // A lapsed record is kept only for the grace.
      clock.addAndGet(501);
      await("here lapsed", () -> directory.snapshot().isEmpty());
      assertTrue(directory.reachable().containsKey("here"));
      clock.addAndGet(2000);
      await("grace over", () -> directory.reachable().isEmpty());

      // A deleted record (the worker left the registry itself) is gone at once.
      map.set("bye", record("bye", "m", WorkerState.READY, clock.get()).toByteArray());
      await("bye live", () -> directory.snapshot().containsKey("bye"));
      map.delete("bye");
      await("bye gone", () -> directory.reachable().isEmpty());
    } finally {
      other.getLifecycleService().terminate();
    }
  }

  @Test
  void aListenerRunsWithoutTheLockSoAnotherThreadCanCloseTheDirectoryMeanwhile() throws Exception {
    // ./starserve serve deadlocked on SIGTERM: the gateway's gauge listener waited for the
    // gateway's monitor, held by the thread closing the directory, which waited for the directory
    // lock that the listener's caller held.
    IMap<String, byte[]> map = hazelcast.getMap(WorkerDirectory.MAP_NAME);
    map.clear();
    WorkerDirectory directory = new WorkerDirectory(hazelcast).start();
    AtomicReference<String> outcome = new AtomicReference<>();
    CountDownLatch heard = new CountDownLatch(1);
    directory.addListener(
        () -> {
          if (heard.getCount() == 0) {
            return;
          }
          Thread closer = Thread.ofPlatform().start(directory::close);
          try {
            closer.join(10_000);
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
          outcome.set(closer.isAlive() ? "close() was still waiting after 10 s" : "closed");
          heard.countDown();
        });
    map.set("w1", record("w1", "m1", WorkerState.READY, System.currentTimeMillis()).toByteArray());
    assertTrue(heard.await(30, TimeUnit.SECONDS), "the listener heard the new record");
    assertEquals("closed", outcome.get());
  }
}
