package dev.starserve.gateway.route;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.hazelcast.core.Hazelcast;
import com.hazelcast.core.HazelcastInstance;
import com.hazelcast.map.IMap;
import dev.starserve.gateway.cluster.ClusterSettings;
import dev.starserve.gateway.cluster.HazelcastConfigs;
import dev.starserve.gateway.cluster.WorkerDirectory;
import dev.starserve.proto.worker.v1.Finished;
import dev.starserve.proto.worker.v1.GenerateRequest;
import dev.starserve.proto.worker.v1.Prompt;
import dev.starserve.proto.worker.v1.Stopping;
import dev.starserve.proto.worker.v1.WorkerInfo;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * The router on the real registry path: records in a Hazelcast map, the WorkerDirectory's snapshot,
 * its listener (a Hazelcast event thread) driving the failover watchdog.
 */
class ClusterRoutingTest {
  @Test
  void aWorkerDeletedFromTheRegistryMidStreamIsFailedOverWithNothingLost() throws Exception {
    int start = 21000 + (int) (Math.random() * 20000);
    HazelcastInstance hz =
        Hazelcast.newHazelcastInstance(
            HazelcastConfigs.build(
                ClusterSettings.tcpIp("routing-test-" + UUID.randomUUID(), 0, "")
                    .withPortRange(start, 100)));
    Vertx vertx = Vertx.vertx();
    try (FakeWorker a = new FakeWorker(vertx, "hz-a");
        FakeWorker b = new FakeWorker(vertx, "hz-b");
        WorkerDirectory directory =
            new WorkerDirectory(hz, Duration.ofMinutes(1), System::currentTimeMillis).start()) {
      IMap<String, byte[]> map = hz.getMap(WorkerDirectory.MAP_NAME);
      for (FakeWorker w : List.of(a, b)) {
        WorkerInfo info =
            w.info("m").toBuilder().setUpdatedAtMillis(System.currentTimeMillis()).build();
        map.set(w.id, info.toByteArray());
      }
      long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (directory.snapshot().size() < 2 && System.nanoTime() < end) {
        Thread.sleep(10);
      }
      AtomicInteger failedOver = new AtomicInteger();
      RoutingGenerator router =
          new RoutingGenerator(
              vertx,
              directory,
              new RoutePolicy(),
              RoutingGenerator.Settings.DEFAULT,
              new RoutingEvents() {
                @Override
                public void retried(String model) {}

                @Override
                public void failedOver(String model) {
                  failedOver.incrementAndGet();
                }
              });
      assertEquals(1, router.models().size());

      a.failAfterTokens = 3;
      a.failure = FakeWorker.Failure.HANG;
      List<WorkerInfo> both = List.of(a.info("m"), b.info("m"));
      RoutePolicy policy = new RoutePolicy();
      String prompt = null;
      for (int i = 0; prompt == null; i++) {
        String p = "registry " + i;
        if (RoutePolicy.rendezvous(both, policy.affinityKey(Prompt.newBuilder().setText(p).build()))
            .getWorkerId()
            .equals(a.id)) {
          prompt = p;
        }
      }
      GenerateRequest req =
          GenerateRequest.newBuilder()
              .setRequestId("hz-1")
              .setModelId("m")
              .setPrompt(Prompt.newBuilder().setText(prompt))
              .setStopping(Stopping.newBuilder().setMaxNewTokens(8))
              .build();
      RoutingGeneratorTest.Heard heard = new RoutingGeneratorTest.Heard();
      Context context = vertx.getOrCreateContext();
      context.runOnContext(v -> router.generate(req, heard));
      end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (heard.tokens.size() < 3 && System.nanoTime() < end) {
        Thread.sleep(10);
      }
      assertEquals(3, heard.tokens.size(), "three tokens from the worker that then hangs");

      map.delete(a.id); // what the worker's TTL expiry or the member's departure amounts to

      Object result = heard.await();
      assertTrue(result instanceof Finished, "finished: " + result);
      List<Integer> expected = new ArrayList<>();
      for (int i = 0; i < 8; i++) {
        expected.add(FakeWorker.tokenAt(prompt, i));
      }
      assertEquals(expected, heard.ids());
      assertEquals(expected.subList(0, 3), b.requests.getFirst().getResumeTokenIdsList());
      assertEquals(1, failedOver.get());
      router.close();
    } finally {
      vertx.close().await(10, TimeUnit.SECONDS);
      hz.getLifecycleService().terminate();
    }
  }
}
