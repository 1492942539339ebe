package dev.starserve.gateway;

import dev.starserve.gateway.admission.AdmissionControl;
import dev.starserve.gateway.api.fmaas.ApiKeyInterceptor;
import dev.starserve.gateway.api.fmaas.DrainingInterceptor;
import dev.starserve.gateway.api.fmaas.FmaasService;
import dev.starserve.gateway.auth.ApiKeys;
import dev.starserve.gateway.generate.GenerationException;
import dev.starserve.gateway.generate.Generator;
import dev.starserve.gateway.http.HttpApi;
import dev.starserve.gateway.metrics.GatewayMetrics;
import dev.starserve.proto.fmaas.GenerationServiceGrpc;
import io.grpc.BindableService;
import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.InternalServer;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.ServerServiceDefinition;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.protobuf.services.HealthStatusManager;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.grpc.server.GrpcServerOptions;
import io.vertx.grpcio.server.GrpcIoServer;
import io.vertx.grpcio.server.GrpcIoServiceBridge;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The gateway's public servers: HTTP (OpenAI, TGI, /metrics) on one port and gRPC
 * (fmaas.GenerationService, grpc.health.v1, server reflection) on another, both served by Vert.x.
 * Generations go through admission control ({@link GatewayLimits#maxInFlightPerModel()}) to the
 * given {@link Generator}.
 *
 * <pre>{@code
 * GatewayServer server = new GatewayServer(vertx, router, GatewayLimits.defaults(), ApiKeys.none(), metrics);
 * server.start("0.0.0.0", 8080, 8033).onSuccess(s -> log(s.httpPort(), s.grpcPort()));
 * ...
 * server.drain(Duration.ofSeconds(30)); // on SIGTERM: finish what runs, then close
 * }</pre>
 */
public final class GatewayServer {
  private static final Logger LOG = LoggerFactory.getLogger(GatewayServer.class);

  private final Vertx vertx;
  private final AdmissionControl generator;
  private final GatewayLimits limits;
  private final ApiKeys apiKeys;
  private final GatewayMetrics metrics;
  private final HealthStatusManager health = new HealthStatusManager();
  private HttpServer http;
  private HttpServer grpc;
  private Future<DrainResult> drained;
  private Future<Void> closed;

  /**
   * How long the servers, once drained, wait for the responses still being written (the last
   * events, a cut stream's error) before they close the connections.
   */
  static final Duration CLOSE_GRACE = Duration.ofSeconds(5);

  /**
   * What a drain did.
   *
   * @param inFlightAtStart sequences in flight when it started
   * @param finished sequences that ended on their own meanwhile (finished, failed, cancelled)
   * @param cut sequences still running at the timeout, ended with an error
   * @param took from start until none was left
   */
  public record DrainResult(int inFlightAtStart, int finished, int cut, Duration took) {}

  public GatewayServer(
      Vertx vertx,
      Generator generator,
      GatewayLimits limits,
      ApiKeys apiKeys,
      GatewayMetrics metrics) {
    this.vertx = vertx;
    this.generator = new AdmissionControl(generator, limits.maxInFlightPerModel(), metrics);
    this.limits = limits;
    this.apiKeys = apiKeys;
    this.metrics = metrics;
  }

  /**
   * Binds both servers (port 0 picks a free port; see {@link #httpPort()}, {@link #grpcPort()}).
   */
  public Future<GatewayServer> start(String host, int httpPort, int grpcPort) {
    HttpServer httpServer =
        vertx
            .createHttpServer(new HttpServerOptions().setHost(host).setPort(httpPort))
            .requestHandler(
                HttpApi.router(vertx, generator, limits, apiKeys, metrics, generator::draining));
    HttpServer grpcServer =
        vertx
            .createHttpServer(new HttpServerOptions().setHost(host).setPort(grpcPort))
            .requestHandler(grpcServer());
    return httpServer
        .listen()
        .compose(
            h -> {
              http = h;
              return grpcServer.listen();
            })
        .map(
            g -> {
              grpc = g;
              LOG.info(
                  "gateway listening: HTTP (OpenAI, TGI, /metrics) on {}:{}, gRPC (fmaas) on {}:{}",
                  host,
                  http.actualPort(),
                  host,
                  grpc.actualPort());
              return this;
            })
        .recover(e -> close().transform(v -> Future.failedFuture(e)));
  }

  public int httpPort() {
    return http.actualPort();
  }

  public int grpcPort() {
    return grpc.actualPort();
  }

  /** The generator as the APIs see it (admission control in front of the given one). */
  public AdmissionControl generator() {
    return generator;
  }

  /** Whether {@link #drain} has started. */
  public boolean draining() {
    return generator.draining();
  }

  /**
   * Drains, as on SIGTERM: gRPC health (the server and fmaas) turns NOT_SERVING, HTTP {@code
   * /health} 503, new generation requests are refused (HTTP 503 with Retry-After, gRPC UNAVAILABLE,
   * "gateway is draining"), while the sequences already admitted run on; once none is left, or when
   * {@code timeout} passes and the rest are cut (their clients get an UNAVAILABLE error: an SSE
   * error event, a gRPC status, a 503), both servers close, giving the last responses {@link
   * #CLOSE_GRACE} to be written. /metrics answers until then. Never blocks; idempotent.
   */
  public synchronized Future<DrainResult> drain(Duration timeout) {
    if (drained != null) {
      return drained;
    }
    long start = System.nanoTime();
    Future<Void> idle = generator.startDraining();
    health.setStatus("", ServingStatus.NOT_SERVING);
    health.setStatus(GenerationServiceGrpc.SERVICE_NAME, ServingStatus.NOT_SERVING);
    int atStart = generator.inFlight();
    LOG.info(
        "gateway draining: {} sequences in flight; new requests get 503 / UNAVAILABLE; waiting up"
            + " to {} for them to finish",
        atStart,
        human(timeout));
    Promise<Integer> cut = Promise.promise();
    // Once the timeout fired, the count comes from the cut (which itself makes the drain idle).
    AtomicBoolean timedOut = new AtomicBoolean();
    long timer =
        vertx.setTimer(
            Math.max(1, timeout.toMillis()),
            t -> {
              timedOut.set(true);
              generator
                  .cut(
                      new GenerationException(
                          GenerationException.Kind.UNAVAILABLE,
                          AdmissionControl.DRAINING_MESSAGE
                              + " and its drain timeout ("
                              + human(timeout)
                              + ") passed; the request was ended"))
                  .onComplete(ar -> cut.tryComplete(ar.succeeded() ? ar.result() : 0));
            });
    idle.onComplete(
        v -> {
          if (!timedOut.get()) {
            vertx.cancelTimer(timer);
            cut.tryComplete(0);
          }
        });
    drained =
        cut.future()
            .map(
                n -> {
                  DrainResult r =
                      new DrainResult(
                          atStart,
                          generator.endedWhileDraining(),
                          n,
                          Duration.ofNanos(System.nanoTime() - start));
                  LOG.info(
                      "gateway drained in {} ms: {} sequences finished, {} cut at the timeout;"
                          + " closing the servers",
                      r.took().toMillis(),
                      r.finished(),
                      r.cut());
                  return r;
                })
            .compose(r -> shutdown(CLOSE_GRACE).map(r));
    return drained;
  }

  /** {@code 30s}, {@code 1500ms}: as the --drain-timeout flag spells it. */
  static String human(Duration d) {
    long ms = d.toMillis();
    return ms % 1000 == 0 ? ms / 1000 + "s" : ms + "ms";
  }

  /**
   * Marks the gRPC health NOT_SERVING and closes both servers at once, cutting what runs.
   * Idempotent.
   */
  public Future<Void> close() {
    return shutdown(Duration.ZERO);
  }

  private synchronized Future<Void> shutdown(Duration grace) {
    if (closed == null) {
      health.enterTerminalState();
      long ms = grace.toMillis();
      Future<Void> h =
          http == null ? Future.succeededFuture() : http.shutdown(ms, TimeUnit.MILLISECONDS);
      Future<Void> g =
          grpc == null ? Future.succeededFuture() : grpc.shutdown(ms, TimeUnit.MILLISECONDS);
      closed = Future.join(h, g).mapEmpty();
    }
    return closed;
  }

  private GrpcIoServer grpcServer() {
    GrpcIoServer server =
        GrpcIoServer.server(vertx, new GrpcServerOptions().setScheduleDeadlineAutomatically(true));
    ServerServiceDefinition fmaas =
        ServerInterceptors.intercept(
            new FmaasService(generator, limits, metrics),
            new DrainingInterceptor(generator::draining, metrics),
            new ApiKeyInterceptor(apiKeys));
    ServerServiceDefinition healthService = health.getHealthService().bindService();
    health.setStatus("", ServingStatus.SERVING);
    health.setStatus(GenerationServiceGrpc.SERVICE_NAME, ServingStatus.SERVING);
    BindableService reflection = reflectionService();
    List<ServerServiceDefinition> listed = List.of(fmaas, healthService, reflection.bindService());
    // NOTE: reflection finds the services through the grpc-java Server in its Context; under the
    // Vert.x bridge there is none, so a stand-in that lists ours is put there.
    ServerServiceDefinition reflectionService =
        ServerInterceptors.intercept(reflection, new ServerInContext(new ListedServices(listed)));
    for (ServerServiceDefinition def : List.of(fmaas, healthService, reflectionService)) {
      GrpcIoServiceBridge.bridge(def).bind(server);
    }
    return server;
  }

  /**
   * {@code ProtoReflectionServiceV1.newInstance()}, called reflectively.
   *
   * <p>NOTE: the class carries errorprone's {@code @GuardedBy}, which grpc-services declares only
   * at runtime scope; naming the class makes javac warn (classfile lint) and -Werror fail. Adding
   * error_prone_annotations as a provided dependency would allow the direct call.
   */
  private static BindableService reflectionService() {
    try {
      return (BindableService)
          Class.forName("io.grpc.protobuf.services.ProtoReflectionServiceV1")
              .getMethod("newInstance")
              .invoke(null);
    } catch (ReflectiveOperationException e) {
      throw new IllegalStateException("grpc-services reflection is missing", e);
    }
  }

  private record ServerInContext(Server server) implements ServerInterceptor {
    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(
        ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
      Context context = Context.current().withValue(InternalServer.SERVER_CONTEXT_KEY, server);
      return Contexts.interceptCall(context, call, headers, next);
    }
  }

  /** Only what reflection asks of a {@link Server}: the services. */
  private static final class ListedServices extends Server {
    private final List<ServerServiceDefinition> services;

    ListedServices(List<ServerServiceDefinition> services) {
      this.services = services;
    }

    @Override
    public List<ServerServiceDefinition> getServices() {
      return services;
    }

    @Override
    public List<ServerServiceDefinition> getImmutableServices() {
      return services;
    }

    @Override
    public List<ServerServiceDefinition> getMutableServices() {
      return List.of();
    }

    @Override
    public Server start() {
      return this;
    }

    @Override
    public Server shutdown() {
      return this;
    }

    @Override
    public Server shutdownNow() {
      return this;
    }

    @Override
    public boolean isShutdown() {
      return false;
    }

    @Override
    public boolean isTerminated() {
      return false;
    }

    @Override
    public boolean awaitTermination(long timeout, TimeUnit unit) {
      return true;
    }

    @Override
    public void awaitTermination() {}
  }
}
