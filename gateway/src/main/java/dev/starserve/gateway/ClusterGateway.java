package dev.starserve.gateway;

import com.hazelcast.core.HazelcastInstance;
import dev.starserve.gateway.auth.ApiKeys;
import dev.starserve.gateway.cluster.WorkerDirectory;
import dev.starserve.gateway.cluster.WorkerView;
import dev.starserve.gateway.metrics.GatewayMetrics;
import dev.starserve.gateway.route.RoutePolicy;
import dev.starserve.gateway.route.RoutingEvents;
import dev.starserve.gateway.route.RoutingGenerator;
import dev.starserve.proto.worker.v1.WorkerInfo;
import dev.starserve.proto.worker.v1.WorkerState;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A whole gateway: the worker directory fed by the cluster registry, the router over it, and the
 * public servers in front, with the router's and the directory's numbers in the metrics.
 *
 * <pre>
 *   clients ──HTTP/gRPC──▶ GatewayServer ─▶ AdmissionControl ─▶ RoutingGenerator ──gRPC──▶ workers
 *                                                                     ▲
 *                              Hazelcast map "starserve-workers" ─▶ WorkerDirectory
 * </pre>
 */
public final class ClusterGateway {
  /**
   * How to run it.
   *
   * @param host the address the public servers bind
   * @param httpPort OpenAI, TGI and /metrics; 0 picks a free port
   * @param grpcPort fmaas, health and reflection; 0 picks a free port
   * @param clusterSecret sent to workers with every call; null or empty when the cluster has none
   */
  public record Settings(
      String host,
      int httpPort,
      int grpcPort,
      GatewayLimits limits,
      ApiKeys apiKeys,
      String clusterSecret) {
    public Settings {
      if (host == null || host.isBlank()) {
        throw new IllegalArgumentException("host must not be empty");
      }
      if (httpPort < 0 || httpPort > 65535) {
        throw new IllegalArgumentException("http port must be in [0, 65535], got " + httpPort);
      }
      if (grpcPort < 0 || grpcPort > 65535) {
        throw new IllegalArgumentException("grpc port must be in [0, 65535], got " + grpcPort);
      }
      if (limits == null || apiKeys == null) {
        throw new IllegalArgumentException("limits and apiKeys are required");
      }
      clusterSecret = clusterSecret == null ? "" : clusterSecret;
    }
  }

  private final Vertx vertx;
  private final WorkerDirectory directory;
  private final RoutingGenerator router;
  private final GatewayServer server;
  private final GatewayMetrics metrics;
  private final WorkerView.Subscription gauges;
  private final Set<String> modelsSeen = new HashSet<>();
  private final Promise<Void> closed = Promise.promise();
  private final AtomicBoolean closing = new AtomicBoolean();

  private ClusterGateway(
      Vertx vertx,
      WorkerDirectory directory,
      RoutingGenerator router,
      GatewayServer server,
      GatewayMetrics m) {
    this.vertx = vertx;
    this.directory = directory;
    this.router = router;
    this.server = server;
    this.metrics = m;
    this.gauges = directory.addListener(this::updateGauges);
    updateGauges();
  }

  /**
   * Starts a gateway on {@code hazelcast}'s registry. The directory's initial load and its closing
   * block on Hazelcast, so they run on a worker thread, never on an event loop.
   */
  public static Future<ClusterGateway> start(
      Vertx vertx, HazelcastInstance hazelcast, Settings settings, GatewayMetrics metrics) {
    return vertx
        .executeBlocking(() -> new WorkerDirectory(hazelcast).start())
        .compose(
            directory -> {
              RoutingGenerator router =
                  new RoutingGenerator(
                      vertx,
                      directory,
                      new RoutePolicy(),
                      RoutingGenerator.Settings.DEFAULT.withSecret(settings.clusterSecret()),
                      metricsEvents(metrics));
              GatewayServer server =
                  new GatewayServer(vertx, router, settings.limits(), settings.apiKeys(), metrics);
              return server
                  .start(settings.host(), settings.httpPort(), settings.grpcPort())
                  .map(s -> new ClusterGateway(vertx, directory, router, s, metrics))
                  .recover(
                      e -> {
                        router.close();
                        return closeBlocking(vertx, directory)
                            .transform(v -> Future.failedFuture(e));
                      });
            });
  }

  private static RoutingEvents metricsEvents(GatewayMetrics metrics) {
    return new RoutingEvents() {
      @Override
      public void retried(String model) {
        metrics.retry(model);
      }

      @Override
      public void failedOver(String model) {
        metrics.failover(model);
      }
    };
  }

  /** Workers by state and queued requests per model, from the directory's latest snapshot. */
  private synchronized void updateGauges() {
    for (Map.Entry<WorkerState, Integer> e : directory.countsByState().entrySet()) {
      metrics.workers(e.getKey().name().toLowerCase(Locale.ROOT), e.getValue());
    }
    Map<String, Integer> waiting = new HashMap<>();
    for (String m : modelsSeen) {
      waiting.put(m, 0); // a model whose workers all left reads 0, not its last value
    }
    for (WorkerInfo w : directory.snapshot().values()) {
      waiting.merge(w.getModelId(), w.getWaiting(), Integer::sum);
    }
    modelsSeen.addAll(waiting.keySet());
    waiting.forEach(metrics::queueDepth);
  }

  public GatewayServer server() {
    return server;
  }

  public WorkerDirectory directory() {
    return directory;
  }

  public RoutingGenerator router() {
    return router;
  }

  public int httpPort() {
    return server.httpPort();
  }

  public int grpcPort() {
    return server.grpcPort();
  }

  /**
   * Drains the public servers (see {@link GatewayServer#drain}), then lets go of the workers and
   * the registry. Never blocks; the future holds what the drain did.
   */
  public Future<GatewayServer.DrainResult> drain(Duration timeout) {
    return server.drain(timeout).compose(r -> close().map(r));
  }

  /** Stops accepting requests, then lets go of the workers and the registry. Idempotent. */
  public Future<Void> close() {
    // NOTE: not synchronized: closeOnce's steps may run right here, and the directory's listener
    // (updateGauges, which holds this object's monitor) must be free to finish meanwhile.
    if (closing.compareAndSet(false, true)) {
      closeOnce().onComplete(closed);
    }
    return closed.future();
  }

  private Future<Void> closeOnce() {
    return server
        .close()
        .eventually(
            () -> {
              try {
                gauges.close();
              } catch (Exception ignored) {
                // a listener removal cannot fail in a way that matters at shutdown
              }
              router.close();
              return closeBlocking(vertx, directory);
            });
  }

  /**
   * Closes the directory on a worker thread: removing its registry listeners is a blocking
   * Hazelcast call, and this runs on an event loop. Never fails: when Vert.x can no longer run the
   * task (it is closing too), the directory closes on the calling thread.
   */
  static Future<Void> closeBlocking(Vertx vertx, WorkerDirectory directory) {
    Future<Void> onWorker;
    try {
      onWorker =
          vertx.executeBlocking(
              () -> {
                directory.close();
                return null;
              });
    } catch (RuntimeException e) { // a closed Vert.x rejects the task by throwing
      onWorker = Future.failedFuture(e);
    }
    return onWorker.recover(
        e -> {
          directory.close(); // idempotent; a no-op when the task got to run
          return Future.succeededFuture();
        });
  }
}
