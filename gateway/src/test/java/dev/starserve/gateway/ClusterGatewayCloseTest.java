package dev.starserve.gateway;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.hazelcast.core.Hazelcast;
import com.hazelcast.core.HazelcastInstance;
import dev.starserve.gateway.cluster.ClusterSettings;
import dev.starserve.gateway.cluster.HazelcastConfigs;
import dev.starserve.gateway.cluster.WorkerDirectory;
import io.vertx.core.Vertx;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Closing the worker directory off the event loop, and when Vert.x is already gone. */
class ClusterGatewayCloseTest {
  private static HazelcastInstance hazelcast;

  @BeforeAll
  static void startMember() {
    int start = 21000 + (int) (Math.random() * 20000);
    hazelcast =
        Hazelcast.newHazelcastInstance(
            HazelcastConfigs.build(
                ClusterSettings.tcpIp("close-test-" + UUID.randomUUID(), 0, "")
                    .withPortRange(start, 100)));
  }

  @AfterAll
  static void stopMember() {
    hazelcast.getLifecycleService().terminate();
  }

  @Test
  void theDirectoryClosesOnAWorkerThreadNotTheEventLoop() throws Exception {
    Vertx vertx = Vertx.vertx();
    try {
      WorkerDirectory directory = new WorkerDirectory(hazelcast).start();
      assertFalse(directory.isClosed());
      var closed = new java.util.concurrent.CompletableFuture<Boolean>();
      vertx.runOnContext(
          v ->
              ClusterGateway.closeBlocking(vertx, directory)
                  .onComplete(r -> closed.complete(r.succeeded())));
      assertTrue(closed.get(30, TimeUnit.SECONDS));
      assertTrue(directory.isClosed());
    } finally {
      vertx.close().toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
  }

  @Test
  void withVertxAlreadyClosedTheDirectoryClosesOnTheCallingThread() throws Exception {
    Vertx vertx = Vertx.vertx();
    vertx.close().toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
    WorkerDirectory directory = new WorkerDirectory(hazelcast).start();
    var f = ClusterGateway.closeBlocking(vertx, directory);
    f.toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS); // succeeds
    assertTrue(directory.isClosed());
  }
}
