package dev.starserve.cli;

import com.hazelcast.core.HazelcastInstance;
import dev.starserve.gateway.ClusterGateway;
import dev.starserve.gateway.metrics.GatewayMetrics;
import io.vertx.core.Vertx;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code starserve gateway}: the public APIs, routing to the workers the cluster registry lists.
 */
@Command(
    name = "gateway",
    mixinStandardHelpOptions = true,
    description =
        "Serve the public APIs (fmaas gRPC, OpenAI and TGI HTTP, /metrics) and route to the"
            + " cluster's workers.")
final class GatewayCommand implements Callable<Integer> {
  private static final Logger LOG = LoggerFactory.getLogger(GatewayCommand.class);

  @Mixin GatewayOptions gateway;

  @Mixin ClusterOptions cluster;

  @Mixin ConfigFileOption config;

  @Option(
      names = "--cluster-secret-file",
      description =
          "file holding the cluster's shared secret sent to workers (default: $"
              + WorkerCommand.SECRET_ENV
              + ", else none)")
  Path secretFile;

  /** A started gateway and what it owns. */
  record Running(ClusterGateway gateway, Vertx vertx, HazelcastInstance hazelcast)
      implements AutoCloseable {
    @Override
    public void close() {
      await(gateway.close(), "gateway close");
      hazelcast.shutdown();
      await(vertx.close(), "Vert.x close");
    }
  }

  @Override
  public Integer call() throws Exception {
    PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
    Running running = start();
    out.println(
        "gateway serving HTTP (OpenAI, TGI, /metrics) on "
            + gateway.host
            + ":"
            + running.gateway().httpPort()
            + " and gRPC (fmaas) on "
            + gateway.host
            + ":"
            + running.gateway().grpcPort()
            + "; cluster '"
            + cluster.clusterName
            + "' member "
            + ClusterOptions.address(running.hazelcast()));
    awaitShutdown("starserve-gateway-shutdown", running);
    return 0;
  }

  Running start() throws Exception {
    String secret = WorkerCommand.clusterSecret(secretFile);
    ClusterGateway.Settings settings =
        new ClusterGateway.Settings(
            gateway.host,
            gateway.httpPort,
            gateway.grpcPort,
            gateway.limits(),
            gateway.keys(),
            secret);
    HazelcastInstance hz = cluster.join();
    Vertx vertx = Vertx.vertx();
    try {
      ClusterGateway g =
          ClusterGateway.start(vertx, hz, settings, new GatewayMetrics())
              .toCompletionStage()
              .toCompletableFuture()
              .get(60, TimeUnit.SECONDS);
      return new Running(g, vertx, hz);
    } catch (Exception e) {
      vertx.close();
      hz.shutdown();
      throw WorkerCommand.unwrap(e, "cannot start the gateway");
    }
  }

  /** Blocks until SIGTERM/SIGINT, then closes {@code resource} once. */
  static void awaitShutdown(String threadName, AutoCloseable resource) throws InterruptedException {
    CountDownLatch stopped = new CountDownLatch(1);
    AtomicBoolean once = new AtomicBoolean();
    Runtime.getRuntime()
        .addShutdownHook(
            Thread.ofPlatform()
                .name(threadName)
                .unstarted(
                    () -> {
                      if (once.compareAndSet(false, true)) {
                        LOG.info("shutting down");
                        try {
                          resource.close();
                        } catch (Exception e) {
                          LOG.warn("shutdown failed", e);
                        }
                        stopped.countDown();
                      }
                    }));
    stopped.await();
  }

  static void await(io.vertx.core.Future<?> f, String what) {
    try {
      f.toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
    } catch (Exception e) {
      LOG.warn("{} did not complete", what, e);
    }
  }
}
