package dev.starserve.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.hazelcast.core.Hazelcast;
import com.hazelcast.core.HazelcastInstance;
import dev.starserve.gateway.cluster.ClusterSettings;
import dev.starserve.gateway.cluster.HazelcastConfigs;
import dev.starserve.gateway.cluster.WorkerDirectory;
import dev.starserve.proto.worker.v1.WorkerInfo;
import dev.starserve.proto.worker.v1.WorkerState;
import dev.starserve.worker.registry.RegistryPublisher;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The real worker-side publisher and the real gateway-side directory on two in-process Hazelcast
 * members (loopback, TCP-IP, a unique cluster name per test).
 */
class RegistryClusterTest {
  private final List<AutoCloseable> closeables = new ArrayList<>();
  private final List<HazelcastInstance> members = new ArrayList<>();

  @AfterEach
  void tearDown() throws Exception {
    for (AutoCloseable c : closeables.reversed()) {
      c.close();
    }
    for (HazelcastInstance m : members) {
      m.getLifecycleService().terminate();
    }
  }

  private HazelcastInstance[] twoMembers() {
    String name = "registry-test-" + UUID.randomUUID();
    int start = 21000 + (int) (Math.random() * 20000);
    ClusterSettings first = ClusterSettings.tcpIp(name, 0, "").withPortRange(start, 100);
    HazelcastInstance a = Hazelcast.newHazelcastInstance(HazelcastConfigs.build(first));
    members.add(a);
    int port = a.getCluster().getLocalMember().getAddress().getPort();
    ClusterSettings second =
        ClusterSettings.tcpIp(name, 0, "127.0.0.1:" + port).withPortRange(port + 1, 100);
    HazelcastInstance b = Hazelcast.newHazelcastInstance(HazelcastConfigs.build(second));
    members.add(b);
    assertEquals(2, b.getCluster().getMembers().size(), "the second member joined the first");
    return new HazelcastInstance[] {a, b};
  }

  private static WorkerInfo info(String id, int running) {
    return WorkerInfo.newBuilder()
        .setWorkerId(id)
        .setAddress("127.0.0.1:9" + id.length())
        .setModelId("tiny")
        .setMaxRunningSequences(8)
        .setRunning(running)
        .build();
  }

  private static void await(String what, Duration timeout, BooleanSupplier condition)
      throws InterruptedException {
    long end = System.nanoTime() + timeout.toNanos();
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > end) {
        throw new AssertionError("timed out waiting until " + what);
      }
      Thread.sleep(20);
    }
  }

  @Test
  void publishedRecordAppearsUpdatesShowsDrainingAndGoesOnClose() throws Exception {
    HazelcastInstance[] m = twoMembers();
    WorkerDirectory directory = new WorkerDirectory(m[1]).start();
    closeables.add(directory);
    AtomicInteger changes = new AtomicInteger();
    directory.addListener(changes::incrementAndGet);
    AtomicInteger running = new AtomicInteger(1);
    RegistryPublisher publisher =
        new RegistryPublisher(
            m[0], () -> info("w1", running.get()), Duration.ofMillis(100), Duration.ofSeconds(5));
    closeables.add(publisher);
    publisher.start();

    await(
        "w1 is in the directory",
        Duration.ofSeconds(10),
        () -> directory.snapshot().containsKey("w1"));
    WorkerInfo seen = directory.snapshot().get("w1");
    assertEquals(WorkerState.READY, seen.getState());
    assertEquals("tiny", seen.getModelId());
    assertTrue(seen.getUpdatedAtMillis() > 0, "the publisher stamps the record");
    assertEquals(List.of(seen), directory.workers("tiny"));
    assertEquals(List.of(), directory.workers("other"));
    assertEquals(1, directory.countsByState().get(WorkerState.READY));
    assertTrue(changes.get() >= 1, "listeners hear about changes");

    running.set(5);
    await(
        "the load update arrives",
        Duration.ofSeconds(10),
        () -> directory.snapshot().get("w1").getRunning() == 5);

    publisher.markDraining();
    await(
        "w1 shows DRAINING",
        Duration.ofSeconds(10),
        () -> directory.snapshot().get("w1").getState() == WorkerState.DRAINING);
    assertEquals(1, directory.countsByState().get(WorkerState.DRAINING));
    assertEquals(0, directory.countsByState().get(WorkerState.READY));

    publisher.close();
    await("w1 is gone after close", Duration.ofSeconds(10), () -> directory.snapshot().isEmpty());
  }

  @Test
  void aRecordThatStopsBeingRefreshedExpiresAfterItsTtl() throws Exception {
    HazelcastInstance[] m = twoMembers();
    WorkerDirectory directory =
        new WorkerDirectory(m[1], Duration.ofSeconds(2), System::currentTimeMillis).start();
    closeables.add(directory);
    AtomicBoolean hung = new AtomicBoolean();
    RegistryPublisher publisher =
        new RegistryPublisher(
            m[0],
            () -> {
              if (hung.get()) {
                throw new IllegalStateException("engine stuck");
              }
              return info("w2", 0);
            },
            Duration.ofMillis(200),
            Duration.ofSeconds(2));
    closeables.add(publisher);
    publisher.start();
    await("w2 appears", Duration.ofSeconds(10), () -> directory.snapshot().containsKey("w2"));

    hung.set(true);
    long stopped = System.nanoTime();
    await("w2 expires", Duration.ofSeconds(10), () -> directory.snapshot().isEmpty());
    long tookMillis = (System.nanoTime() - stopped) / 1_000_000;
    assertTrue(tookMillis >= 1500, "not before the TTL: " + tookMillis + " ms");
  }

  @Test
  void aMemberThatLeavesTakesItsWorkersWithItAtOnce() throws Exception {
    HazelcastInstance[] m = twoMembers();
    WorkerDirectory directory =
        new WorkerDirectory(m[1], Duration.ofSeconds(30), System::currentTimeMillis).start();
    closeables.add(directory);
    RegistryPublisher publisher =
        new RegistryPublisher(
            m[0], () -> info("w3", 0), Duration.ofMillis(100), Duration.ofSeconds(30));
    publisher.start();
    // A record written from the gateway's own member stays.
    RegistryPublisher local =
        new RegistryPublisher(
            m[1], () -> info("w4", 0), Duration.ofMillis(100), Duration.ofSeconds(30));
    closeables.add(local);
    local.start();
    await(
        "both appear with their members known",
        Duration.ofSeconds(10),
        () -> directory.snapshot().size() == 2);
    Thread.sleep(300); // at least one refresh event each, which names the writing member

    long left = System.nanoTime();
    m[0].getLifecycleService().terminate(); // like a killed process: no removal, no goodbye
    await("w3 dropped", Duration.ofSeconds(20), () -> !directory.snapshot().containsKey("w3"));
    long tookMillis = (System.nanoTime() - left) / 1_000_000;
    assertTrue(tookMillis < 15_000, "well before the 30 s TTL: " + tookMillis + " ms");
    assertTrue(directory.snapshot().containsKey("w4"), "the surviving member's worker stays");
    publisher.close();
  }
}
