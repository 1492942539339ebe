package dev.starserve.gateway.route;

import dev.starserve.gateway.cluster.WorkerView;
import dev.starserve.gateway.generate.GenerationException;
import dev.starserve.gateway.generate.GenerationListener;
import dev.starserve.gateway.generate.GenerationStream;
import dev.starserve.gateway.generate.Generator;
import dev.starserve.proto.worker.v1.GenerateRequest;
import dev.starserve.proto.worker.v1.TokenizeRequest;
import dev.starserve.proto.worker.v1.TokenizeResponse;
import dev.starserve.proto.worker.v1.WorkerInfo;
import dev.starserve.proto.worker.v1.WorkerServiceGrpc;
import dev.starserve.proto.worker.v1.WorkerState;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.grpc.client.InvalidStatusException;
import io.vertx.grpc.common.GrpcStatus;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Collectors;

/**
 * The cluster's {@link Generator}: routes each sequence to a worker chosen by {@link RoutePolicy}
 * from the {@link WorkerView}, relays its events, and moves it to another worker when its worker
 * fails (see {@link Relay} for failover). One Vert.x gRPC client per worker address, closed when
 * the worker leaves the registry.
 */
public final class RoutingGenerator implements Generator, AutoCloseable {
  /** The metadata key that carries the cluster's shared secret to workers. */
  public static final String SECRET_HEADER = "x-starserve-secret";

  /**
   * @param secret the cluster's shared secret, sent on every worker call; empty sends none
   * @param maxAttempts workers one sequence may try in all (the first included)
   * @param connectTimeoutMillis how long connecting to a worker may take before trying another
   */
  public record Settings(String secret, int maxAttempts, int connectTimeoutMillis) {
    public static final Settings DEFAULT = new Settings("", 4, 2000);

    public Settings {
      secret = secret == null ? "" : secret;
      if (maxAttempts < 1 || maxAttempts > 16) {
        throw new IllegalArgumentException("maxAttempts must be in [1, 16], got " + maxAttempts);
      }
      if (connectTimeoutMillis < 1) {
        throw new IllegalArgumentException(
            "connectTimeoutMillis must be >= 1, got " + connectTimeoutMillis);
      }
    }

    public Settings withSecret(String s) {
      return new Settings(s, maxAttempts, connectTimeoutMillis);
    }
  }

  final Vertx vertx;
  final WorkerView workers;
  final RoutePolicy policy;
  final Settings settings;
  final RoutingEvents events;
  final WorkerClients clients;
  private final Map<String, Integer> inFlight = new ConcurrentHashMap<>();
  private final Set<Relay> open = ConcurrentHashMap.newKeySet();
  private final WorkerView.Subscription subscription;
  private volatile Set<String> lastWorkerIds = Set.of();

  public RoutingGenerator(
      Vertx vertx,
      WorkerView workers,
      RoutePolicy policy,
      Settings settings,
      RoutingEvents events) {
    this.vertx = vertx;
    this.workers = workers;
    this.policy = policy;
    this.settings = settings;
    this.events = events;
    this.clients = new WorkerClients(vertx, settings.connectTimeoutMillis());
    this.subscription = workers.addListener(this::workersChanged);
  }

  @Override
  public GenerationStream generate(GenerateRequest request, GenerationListener listener) {
    Relay relay = new Relay(this, vertx.getOrCreateContext(), request, listener);
    open.add(relay);
    relay.start();
    return relay;
  }

  @Override
  public Future<TokenizeResponse> tokenize(String modelId, TokenizeRequest request) {
    Promise<TokenizeResponse> promise = Promise.promise();
    tokenize(modelId, request, new HashSet<>(), promise);
    return promise.future();
  }

  private void tokenize(
      String modelId, TokenizeRequest request, Set<String> tried, Promise<TokenizeResponse> out) {
    List<WorkerInfo> candidates = candidates(modelId);
    WorkerInfo w = policy.choose(candidates, "", this::inFlight, tried);
    if (w == null) {
      out.fail(noWorker(modelId, candidates, !tried.isEmpty()));
      return;
    }
    tried.add(w.getWorkerId());
    WorkerClients.Client c;
    try {
      c = clients.get(w.getAddress());
    } catch (IllegalArgumentException e) {
      retryTokenize(modelId, request, tried, out, GrpcStatus.UNAVAILABLE, e.getMessage());
      return;
    }
    c.grpc()
        .request(c.address(), WorkerServiceGrpc.getTokenizeMethod())
        .compose(
            call -> {
              if (!settings.secret().isEmpty()) {
                call.headers().set(SECRET_HEADER, settings.secret());
              }
              return call.send(request).compose(response -> response.last());
            })
        .onSuccess(out::complete)
        .onFailure(
            t -> retryTokenize(modelId, request, tried, out, statusOf(t), String.valueOf(t)));
  }

  private void retryTokenize(
      String modelId,
      TokenizeRequest request,
      Set<String> tried,
      Promise<TokenizeResponse> out,
      GrpcStatus status,
      String message) {
    if (status == GrpcStatus.INVALID_ARGUMENT || status == GrpcStatus.OUT_OF_RANGE) {
      out.fail(new GenerationException(GenerationException.Kind.INVALID_ARGUMENT, message));
    } else if (tried.size() < 2) {
      events.retried(modelId);
      tokenize(modelId, request, tried, out);
    } else {
      out.fail(
          new GenerationException(
              GenerationException.Kind.UNAVAILABLE, "tokenize failed on two workers: " + message));
    }
  }

  @Override
  public List<WorkerInfo> models() {
    Map<String, WorkerInfo> byModel = new LinkedHashMap<>();
    workers.snapshot().values().stream()
        .filter(w -> w.getState() == WorkerState.READY)
        .sorted(java.util.Comparator.comparing(WorkerInfo::getWorkerId))
        .forEach(w -> byModel.putIfAbsent(w.getModelId(), w));
    return List.copyOf(byModel.values());
  }

  /** The gateway's open requests on a worker (what the policy adds to its reported load). */
  public int inFlight(String workerId) {
    return inFlight.getOrDefault(workerId, 0);
  }

  /** Sequences not yet finished, failed or cancelled. */
  public int openStreams() {
    return open.size();
  }

  @Override
  public void close() {
    subscription.close();
    for (Relay r : new ArrayList<>(open)) {
      r.cancel();
    }
    clients.close();
  }

  // --- for Relay ---

  /** Workers that may serve {@code modelId}: all of them when it is empty. */
  List<WorkerInfo> candidates(String modelId) {
    if (modelId.isEmpty()) {
      return List.copyOf(workers.snapshot().values());
    }
    return workers.workers(modelId);
  }

  GenerationException noWorker(String modelId, List<WorkerInfo> candidates, boolean triedSome) {
    if (candidates.isEmpty() && !triedSome) {
      return new GenerationException(
          GenerationException.Kind.MODEL_NOT_FOUND,
          modelId.isEmpty() ? "no worker is running" : "no worker serves model '" + modelId + "'");
    }
    return new GenerationException(
        GenerationException.Kind.UNAVAILABLE,
        "no worker of model '" + modelId + "' can take the request now");
  }

  void acquire(String workerId) {
    inFlight.merge(workerId, 1, Integer::sum);
  }

  void release(String workerId) {
    inFlight.compute(workerId, (k, v) -> v == null || v <= 1 ? null : v - 1);
  }

  void closed(Relay relay) {
    open.remove(relay);
  }

  static GrpcStatus statusOf(Throwable t) {
    if (t instanceof InvalidStatusException e) {
      return e.actualStatus();
    }
    // Connection refused, reset or closed, timeouts: the worker is unreachable.
    return GrpcStatus.UNAVAILABLE;
  }

  private void workersChanged() {
    // Reachable, not just live: a worker whose record lapsed while its member is still in the
    // cluster takes no new requests, but its open streams (and their connections) go on.
    Map<String, WorkerInfo> now = workers.reachable();
    // NOTE: most changes are heartbeats (load figures); only joins and departures concern the
    // open streams and the clients.
    Set<String> ids =
        now.values().stream()
            .map(w -> w.getWorkerId() + "@" + w.getAddress())
            .collect(Collectors.toUnmodifiableSet());
    if (ids.equals(lastWorkerIds)) {
      return;
    }
    lastWorkerIds = ids;
    for (Relay r : open) {
      r.checkWorker(now);
    }
    clients.retain(now.values().stream().map(WorkerInfo::getAddress).collect(Collectors.toSet()));
  }
}
