package dev.starserve.cli;

import com.hazelcast.core.HazelcastInstance;
import dev.starserve.gateway.ClusterGateway;
import dev.starserve.gateway.metrics.GatewayMetrics;
import io.vertx.core.Vertx;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
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
 * {@code starserve gateway}: the public APIs, routing to the workers the cluster registry lists,
 * until SIGTERM, which drains it first (see {@link ClusterGateway#drain}).
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

  @Option(
      names = "--drain-timeout",
      defaultValue = "30s",
      description =
          "on SIGTERM, how long requests in flight may finish (new ones get 503 / UNAVAILABLE)"
              + " before they are ended, e.g. 30s, 500ms, 2m (default: ${DEFAULT-VALUE})")
  String drainTimeout;

  /** A started gateway and what it owns. */
  record Running(
      ClusterGateway gateway, Vertx vertx, HazelcastInstance hazelcast, Duration drainTimeout)
      implements AutoCloseable {
    /**
     * Drains (up to the drain timeout: health NOT_SERVING, new requests refused, the ones in flight
     * finish or are cut), closes the servers, leaves the cluster and stops Vert.x.
     */
    @Override
    public void close() {
      await(gateway.drain(drainTimeout), "gateway drain", drainTimeout.plusSeconds(15));
      await(gateway.close(), "gateway close");
      try {
        hazelcast.shutdown();
      } catch (RuntimeException e) {
        LOG.warn("leaving the cluster failed", e);
      }
      await(vertx.close(), "Vert.x close");
    }
  }

  @Override
  public Integer call() throws Exception {
    PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
    Running running = start();
    awaitShutdown(
        "starserve-gateway-shutdown",
        running,
        () ->
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
                    + ClusterOptions.address(running.hazelcast())));
    return 0;
  }

  Running start() throws Exception {
    Duration drain = WorkerCommand.parseDuration("--drain-timeout", drainTimeout);
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
      return new Running(g, vertx, hz, drain);
    } catch (Exception e) {
      vertx.close();
      hz.shutdown();
      throw WorkerCommand.unwrap(e, "cannot start the gateway");
    }
  }

  /**
   * Traps SIGTERM/SIGINT, then runs {@code announce} (the "serving" line), then blocks until one of
   * them arrives, closes {@code resource} once (for a gateway: drains it) and returns, so the
   * command exits 0. The signals are trapped through {@code sun.misc.Signal}; where that is not
   * possible (-Xrs), a shutdown hook closes it instead (the JVM then exits 143). The hook also
   * covers any other exit while the resource is open, and waits for a close in progress.
   *
   * <p>NOTE: the announcement comes after the trap: a supervisor (or a test) that sends SIGTERM as
   * soon as it reads "serving" otherwise could hit the moment before the trap was in place, and the
   * JVM's own handler exited 143 instead of 0 (seen once in CI).
   */
  static void awaitShutdown(String threadName, AutoCloseable resource, Runnable announce)
      throws InterruptedException {
    CountDownLatch stopped = new CountDownLatch(1);
    AtomicBoolean once = new AtomicBoolean();
    Runnable stop =
        () -> {
          if (once.compareAndSet(false, true)) {
            LOG.info("shutting down");
            try {
              resource.close();
            } catch (Exception e) {
              LOG.warn("shutdown failed", e);
            } finally {
              stopped.countDown();
            }
          } else {
            try {
              stopped.await();
            } catch (InterruptedException e) {
              Thread.currentThread().interrupt();
            }
          }
        };
    trapSignals(() -> Thread.ofPlatform().name(threadName).start(stop), "TERM", "INT");
    Runtime.getRuntime().addShutdownHook(Thread.ofPlatform().name(threadName).unstarted(stop));
    announce.run();
    stopped.await();
  }

  /**
   * Runs {@code handler} on each of the named signals instead of the JVM's exit; false when they
   * cannot be trapped. {@code sun.misc.Signal} is used reflectively: javac cannot be told to accept
   * a proprietary API without a warning, and the build fails on warnings.
   */
  static boolean trapSignals(Runnable handler, String... signals) {
    try {
      Class<?> signal = Class.forName("sun.misc.Signal");
      Class<?> handlerType = Class.forName("sun.misc.SignalHandler");
      Object proxy =
          java.lang.reflect.Proxy.newProxyInstance(
              handlerType.getClassLoader(),
              new Class<?>[] {handlerType},
              (self, method, args) ->
                  switch (method.getName()) {
                    case "handle" -> {
                      handler.run();
                      yield null;
                    }
                    case "hashCode" -> System.identityHashCode(self);
                    case "equals" -> self == args[0];
                    default -> "starserve signal handler";
                  });
      for (String name : signals) {
        Object sig = signal.getConstructor(String.class).newInstance(name);
        signal.getMethod("handle", signal, handlerType).invoke(null, sig, proxy);
      }
      return true;
    } catch (ReflectiveOperationException | RuntimeException | LinkageError e) {
      LOG.debug("cannot trap signals; the shutdown hook stops the server", e);
      return false;
    }
  }

  static void await(io.vertx.core.Future<?> f, String what) {
    await(f, what, Duration.ofSeconds(30));
  }

  static void await(io.vertx.core.Future<?> f, String what, Duration timeout) {
    try {
      f.toCompletionStage().toCompletableFuture().get(timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (Exception e) {
      LOG.warn("{} did not complete", what, e);
    }
  }
}
