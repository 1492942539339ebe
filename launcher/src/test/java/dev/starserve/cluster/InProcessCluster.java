package dev.starserve.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.hazelcast.core.Hazelcast;
import com.hazelcast.core.HazelcastInstance;
import dev.starserve.cli.InProcessWorker;
import dev.starserve.cli.Main;
import dev.starserve.engine.EngineStats;
import dev.starserve.gateway.ClusterGateway;
import dev.starserve.gateway.GatewayLimits;
import dev.starserve.gateway.auth.ApiKeys;
import dev.starserve.gateway.cluster.ClusterSettings;
import dev.starserve.gateway.cluster.HazelcastConfigs;
import dev.starserve.gateway.metrics.GatewayMetrics;
import dev.starserve.proto.worker.v1.WorkerInfo;
import dev.starserve.proto.worker.v1.WorkerState;
import dev.starserve.text.Tokenizer;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.ToLongFunction;

/**
 * One gateway and two workers of the tiny random-weight model in this JVM, on loopback ports 0:
 *
 * <pre>
 *   Hazelcast member A (random port range) ◀── --cluster-members ── worker 1 (own member, own model)
 *        │                                 ◀── --cluster-members ── worker 2 (own member, own model)
 *        ├── gateway          (default limits, no keys)
 *        ├── limitedGateway   (1 sequence in flight per model)
 *        └── keyedGateway     (API key "k1")
 * </pre>
 *
 * All share one cluster name (unique per run) and one cluster secret. Closing stops everything,
 * gateways first.
 */
final class InProcessCluster implements AutoCloseable {
  static final String MODEL = "tiny";
  static final String API_KEY = "k1";
  static final Duration WAIT = Duration.ofSeconds(30);

  final Tokenizer tokenizer;
  final List<InProcessWorker> workers = new ArrayList<>();
  ClusterGateway gateway;
  ClusterGateway limitedGateway;
  ClusterGateway keyedGateway;

  private final String secret = "itest-" + UUID.randomUUID();
  private final HazelcastInstance gatewayMember;
  private final Vertx vertx = Vertx.vertx();
  private final List<ClusterGateway> gateways = new ArrayList<>();
  private final Map<ClusterGateway, ManagedChannel> channels = new HashMap<>();
  private final List<ManagedChannel> extraChannels = new ArrayList<>();
  private final HttpClient http =
      HttpClient.newBuilder()
          .version(HttpClient.Version.HTTP_1_1)
          .connectTimeout(Duration.ofSeconds(5))
          .build();

  /** Writes the model under {@code dir} and starts everything; closes what started on failure. */
  static InProcessCluster start(Path dir) throws Exception {
    Path model = dir.resolve(MODEL);
    assertEquals(
        0,
        Main.run("make-model", "--shape", "tiny", "--dtype", "float32", "--out", model.toString()));
    Tokenizer tokenizer =
        Tokenizer.load(model.resolve("tokenizer.json"), model.resolve("tokenizer_config.json"));
    String cluster = "itest-" + UUID.randomUUID();
    int portStart = 21000 + ThreadLocalRandom.current().nextInt(20000);
    HazelcastInstance member =
        Hazelcast.newHazelcastInstance(
            HazelcastConfigs.build(
                ClusterSettings.tcpIp(cluster, 0, "").withPortRange(portStart, 100)));
    InProcessCluster c = new InProcessCluster(tokenizer, member);
    try {
      c.startAll(model, cluster);
      c.awaitWorkersListed();
      return c;
    } catch (Exception | AssertionError e) {
      c.close();
      throw e;
    }
  }

  private InProcessCluster(Tokenizer tokenizer, HazelcastInstance member) {
    this.tokenizer = tokenizer;
    this.gatewayMember = member;
  }

  private void startAll(Path model, String cluster) throws Exception {
    String seed = "127.0.0.1:" + gatewayMember.getCluster().getLocalMember().getAddress().getPort();
    gateway = startGateway(GatewayLimits.defaults(), ApiKeys.none());
    for (int i = 1; i <= 2; i++) {
      workers.add(
          InProcessWorker.start(
              secret,
              "--model",
              model.toString(),
              "--grpc-port",
              "0",
              "--worker-id",
              "itest-worker-" + i,
              "--threads",
              "1",
              "--kv-cache-blocks",
              "128",
              "--max-num-seqs",
              "8",
              "--drain-timeout",
              "2s",
              "--cluster-name",
              cluster,
              "--cluster-members",
              seed));
    }
    limitedGateway =
        startGateway(GatewayLimits.defaults().withMaxInFlightPerModel(1), ApiKeys.none());
    keyedGateway = startGateway(GatewayLimits.defaults(), ApiKeys.of(Set.of(API_KEY)));
  }

  private ClusterGateway startGateway(GatewayLimits limits, ApiKeys keys) throws Exception {
    ClusterGateway.Settings settings =
        new ClusterGateway.Settings("127.0.0.1", 0, 0, limits, keys, secret);
    ClusterGateway g =
        get(ClusterGateway.start(vertx, gatewayMember, settings, new GatewayMetrics(false)));
    gateways.add(g);
    return g;
  }

  private void awaitWorkersListed() throws InterruptedException {
    for (ClusterGateway g : gateways) {
      await(
          "the gateway lists both workers READY",
          () ->
              g.directory().snapshot().values().stream()
                      .filter(w -> w.getState() == WorkerState.READY)
                      .count()
                  == 2);
    }
    assertEquals(3, gatewayMember.getCluster().getMembers().size(), "gateway + two workers");
  }

  /**
   * Waits until both engines are idle and the gateway's registry snapshot says so too, so that
   * routing compares equal loads.
   */
  void awaitIdle() throws InterruptedException {
    await(
        "both workers are idle, in their engines and in the registry",
        () -> {
          for (InProcessWorker w : workers) {
            EngineStats s = w.engine().stats();
            if (s.running() + s.waiting() + s.kvBlocksUsed() != 0) {
              return false;
            }
          }
          for (WorkerInfo w : gateway.directory().snapshot().values()) {
            if (w.getRunning() + w.getWaiting() + w.getKvBlocksUsed() != 0) {
              return false;
            }
          }
          return true;
        });
  }

  /** One plaintext grpc-netty-shaded channel per gateway, shut down on close. */
  synchronized ManagedChannel channel(ClusterGateway g) {
    return channels.computeIfAbsent(
        g, k -> NettyChannelBuilder.forAddress("127.0.0.1", k.grpcPort()).usePlaintext().build());
  }

  /** A channel built by the test, shut down on close. */
  synchronized ManagedChannel track(ManagedChannel c) {
    extraChannels.add(c);
    return c;
  }

  long[] perWorker(ToLongFunction<EngineStats> f) {
    return workers.stream().mapToLong(w -> f.applyAsLong(w.engine().stats())).toArray();
  }

  /** Worker {@code w}'s Prometheus text, fetched as a scraper does: GET /metrics on its port. */
  String workerMetrics(int w) {
    HttpResponse<String> r =
        send(
            HttpRequest.newBuilder(
                    URI.create("http://127.0.0.1:" + workers.get(w).server().port() + "/metrics"))
                .timeout(WAIT)
                .GET()
                .build());
    assertEquals(200, r.statusCode(), r.body());
    return r.body();
  }

  /** Worker {@code w}'s ended Generate calls with {@code outcome} (all outcomes when null). */
  long workerCalls(int w, String outcome) {
    String text = workerMetrics(w);
    return outcome == null
        ? (long) Wire.metric(text, "starserve_worker_requests_total")
        : (long)
            Wire.metricOrZero(
                text, "starserve_worker_requests_total", "outcome=\"" + outcome + "\"");
  }

  long workerCallsTotal(String outcome) {
    return workerCalls(0, outcome) + workerCalls(1, outcome);
  }

  /** The sum over both workers' /metrics of the unlabelled sample {@code name}. */
  double workerMetricSum(String name) {
    return Wire.metric(workerMetrics(0), name) + Wire.metric(workerMetrics(1), name);
  }

  HttpResponse<String> post(ClusterGateway g, String path, JsonObject body, String key) {
    return send(
        request(g, path, key)
            .header("content-type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body.encode()))
            .build());
  }

  HttpResponse<String> get(ClusterGateway g, String path, String key) {
    return send(request(g, path, key).GET().build());
  }

  private static HttpRequest.Builder request(ClusterGateway g, String path, String key) {
    HttpRequest.Builder b =
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + g.httpPort() + path)).timeout(WAIT);
    if (key != null) {
      b.header("authorization", "Bearer " + key);
    }
    return b;
  }

  private HttpResponse<String> send(HttpRequest request) {
    try {
      return http.send(request, HttpResponse.BodyHandlers.ofString());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    } catch (IOException e) {
      throw new IllegalStateException(request.uri() + ": " + e.getMessage(), e);
    }
  }

  /** Polls {@code condition} every 10 ms until it holds; fails after {@link #WAIT}. */
  static void await(String what, BooleanSupplier condition) throws InterruptedException {
    long end = System.nanoTime() + WAIT.toNanos();
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > end) {
        throw new AssertionError(
            "timed out after " + WAIT.toSeconds() + " s waiting until " + what);
      }
      Thread.sleep(10);
    }
  }

  private static <T> T get(Future<T> f) throws Exception {
    return f.toCompletionStage().toCompletableFuture().get(WAIT.toSeconds(), TimeUnit.SECONDS);
  }

  /** Stops channels, gateways, workers (each drains, leaves and frees), the member and Vert.x. */
  @Override
  public void close() {
    synchronized (this) {
      channels.values().forEach(ManagedChannel::shutdownNow);
      extraChannels.forEach(ManagedChannel::shutdownNow);
    }
    for (ClusterGateway g : gateways.reversed()) {
      quietly(() -> get(g.close()));
    }
    for (InProcessWorker w : workers) {
      quietly(w::close);
    }
    quietly(gatewayMember::shutdown);
    quietly(() -> get(vertx.close()));
  }

  private interface Step {
    void run() throws Exception;
  }

  private static void quietly(Step step) {
    try {
      step.run();
    } catch (Exception e) {
      System.err.println("cluster cleanup step failed: " + e);
    }
  }
}
