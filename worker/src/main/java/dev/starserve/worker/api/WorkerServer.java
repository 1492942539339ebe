package dev.starserve.worker.api;

import dev.starserve.engine.Engine;
import dev.starserve.proto.worker.v1.WorkerInfo;
import dev.starserve.proto.worker.v1.WorkerServiceGrpc;
import dev.starserve.proto.worker.v1.WorkerState;
import dev.starserve.worker.metrics.WorkerMetrics;
import io.grpc.BindableService;
import io.grpc.ServerInterceptors;
import io.grpc.ServerServiceDefinition;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.protobuf.services.ProtoReflectionServiceV1;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.grpcio.server.GrpcIoServer;
import io.vertx.grpcio.server.GrpcIoServiceBridge;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A worker's network face on one port: the internal {@code starserve.worker.v1.WorkerService},
 * {@code grpc.health.v1.Health} and server reflection over gRPC (grpc-java services served by
 * Vert.x through {@link GrpcIoServer}), and {@code GET /metrics} in the Prometheus text format.
 *
 * <pre>
 * HTTP/2 request ─► content-type application/grpc* ─► GrpcIoServer ─► [secret] WorkerService
 *                                                                   ─► Health (open)
 *                                                                   ─► [secret] reflection
 *               └─► GET /metrics ─► WorkerMetrics.scrape()
 * </pre>
 *
 * The engine and the Vert.x instance belong to the caller: {@link #close()} stops serving, neither
 * closes them. The cluster registration hooks on {@link #info()} and {@link #state()}.
 */
public final class WorkerServer {
  private static final Logger LOG = LoggerFactory.getLogger(WorkerServer.class);

  /** The health service name of the worker API (the empty name stands for the whole server). */
  public static final String SERVICE_NAME = WorkerServiceGrpc.SERVICE_NAME;

  private final Vertx vertx;
  private final Engine engine;
  private final WorkerOptions options;
  private final WorkerMetrics metrics;
  private final WorkerService service;
  private final HealthStatusManager health = new HealthStatusManager();
  private boolean draining; // guarded by health
  private HttpServer http;
  private volatile int port = -1;

  public WorkerServer(Vertx vertx, Engine engine, WorkerOptions options) {
    this.vertx = vertx;
    this.engine = engine;
    this.options = options;
    this.metrics = new WorkerMetrics(engine, true);
    this.service = new WorkerService(vertx, engine, options, metrics, this::address);
  }

  /** Binds the port and starts serving; completes with the actual port. */
  public Future<Integer> start() {
    GrpcIoServer grpc = GrpcIoServer.server(vertx);
    ServerServiceDefinition worker = guarded(service);
    ServerServiceDefinition healthDef = health.getHealthService().bindService();
    BindableService reflectionService = ProtoReflectionServiceV1.newInstance();
    ServerServiceDefinition reflectionRaw = reflectionService.bindService();
    List<ServerServiceDefinition> all = new ArrayList<>(List.of(worker, healthDef, reflectionRaw));
    ReflectionServerView view = new ReflectionServerView(all);
    ServerServiceDefinition reflection =
        guarded(ServerInterceptors.intercept(reflectionRaw, view.interceptor()));
    GrpcIoServiceBridge.bridge(worker).bind(grpc);
    GrpcIoServiceBridge.bridge(healthDef).bind(grpc);
    GrpcIoServiceBridge.bridge(reflection).bind(grpc);
    // Not ready until the worker is registered in the cluster (markReady): a Kubernetes readiness
    // probe on Health must not send traffic to a worker no gateway can route to yet.
    health.setStatus("", ServingStatus.NOT_SERVING);
    health.setStatus(SERVICE_NAME, ServingStatus.NOT_SERVING);
    engine.setStepListener(metrics::onStep);

    http =
        vertx.createHttpServer(
            new HttpServerOptions().setHost(options.host()).setPort(options.port()));
    http.requestHandler(
        req -> {
          String type = req.getHeader("content-type");
          if (type != null && type.startsWith("application/grpc")) {
            grpc.handle(req);
          } else {
            serveHttp(req);
          }
        });
    return http.listen()
        .map(
            s -> {
              port = s.actualPort();
              LOG.info(
                  "worker {} serving {} on {}", options.workerId(), options.modelId(), address());
              return port;
            });
  }

  private ServerServiceDefinition guarded(BindableService s) {
    return guarded(s.bindService());
  }

  private ServerServiceDefinition guarded(ServerServiceDefinition def) {
    return options.secret() == null
        ? def
        : ServerInterceptors.intercept(def, new SecretInterceptor(options.secret()));
  }

  private void serveHttp(HttpServerRequest req) {
    if (req.method() == HttpMethod.GET && "/metrics".equals(req.path())) {
      byte[] body;
      try {
        body = metrics.scrape();
      } catch (RuntimeException e) {
        LOG.error("metrics scrape failed", e);
        req.response().setStatusCode(500).end("metrics scrape failed\n");
        return;
      }
      req.response().putHeader("content-type", WorkerMetrics.CONTENT_TYPE).end(Buffer.buffer(body));
    } else {
      req.response().setStatusCode(404).end("not found: gRPC or GET /metrics\n");
    }
  }

  /**
   * Turns {@code grpc.health.v1.Health} to SERVING: called once the worker has joined the cluster
   * and published its record (the server answers NOT_SERVING from {@link #start()} until then, and
   * again from {@link #drain()} on). Does nothing once draining has begun.
   */
  public void markReady() {
    synchronized (health) {
      if (draining) {
        return;
      }
      health.setStatus("", ServingStatus.SERVING);
      health.setStatus(SERVICE_NAME, ServingStatus.SERVING);
    }
  }

  /** The bound port, or -1 before {@link #start()} completed. */
  public int port() {
    return port;
  }

  /** host:port of this server as other processes reach it. */
  public String address() {
    return options.host() + ":" + port;
  }

  public WorkerOptions options() {
    return options;
  }

  public WorkerMetrics metrics() {
    return metrics;
  }

  /** The record this worker publishes to the registry (and answers to Info), as of now. */
  public WorkerInfo info() {
    return service.info();
  }

  public WorkerState state() {
    return service.draining() ? WorkerState.DRAINING : WorkerState.READY;
  }

  /** {@link #drain(Duration)} with the configured timeout. */
  public Future<Void> drain() {
    return drain(options.drainTimeout());
  }

  /**
   * Enters DRAINING (Generate answers UNAVAILABLE "worker is draining", health NOT_SERVING) and
   * completes when every running request has finished or {@code timeout} has passed, after which
   * the rest are aborted (their calls fail with UNAVAILABLE, so a gateway resumes them elsewhere).
   * Idempotent: later calls return the same future.
   */
  public Future<Void> drain(Duration timeout) {
    synchronized (health) {
      draining = true;
      health.setStatus("", ServingStatus.NOT_SERVING);
      health.setStatus(SERVICE_NAME, ServingStatus.NOT_SERVING);
    }
    return service.drain(timeout.toMillis());
  }

  /** Requests the engine still runs or queues for Generate calls. */
  public int liveRequests() {
    return service.liveRequests();
  }

  /** Generate calls whose stream has not ended yet. */
  int openCalls() {
    return service.openCalls();
  }

  /** Stops serving (open calls are reset); the engine and Vert.x stay up. */
  public Future<Void> close() {
    engine.setStepListener(null);
    health.enterTerminalState();
    return http == null ? Future.succeededFuture() : http.close();
  }
}
