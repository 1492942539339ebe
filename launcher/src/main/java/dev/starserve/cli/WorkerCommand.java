package dev.starserve.cli;

import com.hazelcast.core.HazelcastInstance;
import dev.starserve.engine.Engine;
import dev.starserve.gateway.cluster.ClusterSettings;
import dev.starserve.proto.worker.v1.WorkerState;
import dev.starserve.worker.api.WorkerOptions;
import dev.starserve.worker.api.WorkerServer;
import dev.starserve.worker.registry.RegistryPublisher;
import io.vertx.core.Vertx;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code starserve worker}: loads a model, runs its engine and serves the internal worker API
 * (gRPC, health, reflection and /metrics on one port) until SIGTERM, which drains it first.
 */
@Command(
    name = "worker",
    mixinStandardHelpOptions = true,
    description =
        "Serve one model's engine over the internal worker gRPC API (and /metrics) on one port.")
final class WorkerCommand implements Callable<Integer> {
  private static final Logger LOG = LoggerFactory.getLogger(WorkerCommand.class);
  static final String SECRET_ENV = "STARSERVE_CLUSTER_SECRET";

  @Option(names = "--model", required = true, description = "model directory")
  Path model;

  @Option(names = "--model-id", description = "the model id served (default: the directory name)")
  String modelId;

  @Option(
      names = "--host",
      defaultValue = "127.0.0.1",
      description = "address to bind (default: ${DEFAULT-VALUE})")
  String host;

  @Option(
      names = "--grpc-port",
      defaultValue = "8034",
      description = "port for gRPC and /metrics, 0 for any free one (default: ${DEFAULT-VALUE})")
  int grpcPort;

  @Option(names = "--worker-id", description = "id in the cluster (default: host-pid)")
  String workerId;

  @Option(
      names = "--cluster-secret-file",
      description =
          "file holding the cluster's shared secret that every call must carry (default: $"
              + SECRET_ENV
              + ", else none)")
  Path secretFile;

  @Option(
      names = "--drain-timeout",
      defaultValue = "30s",
      description =
          "on SIGTERM, how long running requests may finish before they are aborted, e.g. 30s,"
              + " 500ms, 2m (default: ${DEFAULT-VALUE})")
  String drainTimeout;

  @Option(
      names = "--max-pending-events",
      defaultValue = "8192",
      description =
          "events one stream may buffer for a slow reader before it is aborted (default:"
              + " ${DEFAULT-VALUE})")
  int maxPendingEvents;

  @Option(
      names = "--max-waiting",
      defaultValue = "1024",
      description =
          "requests that may wait beyond --max-num-seqs before new ones are refused with"
              + " RESOURCE_EXHAUSTED (default: ${DEFAULT-VALUE})")
  int maxWaiting;

  @Option(
      names = "--advertise-host",
      description =
          "host other processes reach this worker at, published in the registry (default: --host,"
              + " or this machine's address when --host is 0.0.0.0)")
  String advertiseHost;

  @Mixin EngineOptions engineOptions;

  @Mixin ClusterOptions cluster;

  @Mixin ConfigFileOption config;

  @Option(names = "--device", defaultValue = "cpu", description = Devices.DESCRIPTION)
  String device;

  @Option(names = "--threads", description = "compute threads (default: all cores)")
  Integer threads;

  /** A started worker: its server and what it owns. */
  record Running(
      WorkerServer server,
      Engine engine,
      Vertx vertx,
      LoadedModel model,
      Duration drainTimeout,
      HazelcastInstance hazelcast,
      boolean ownsHazelcast,
      RegistryPublisher publisher)
      implements AutoCloseable {
    /**
     * Marks the worker DRAINING in the registry and drains it (up to the drain timeout); blocks
     * until done. {@link #close()} does it too, unless it was done already.
     */
    public void drain() {
      try {
        publisher.markDraining();
      } catch (RuntimeException e) {
        LOG.warn("could not publish DRAINING", e);
      }
      try {
        server
            .drain(drainTimeout)
            .toCompletionStage()
            .toCompletableFuture()
            .get(drainTimeout.toMillis() + 10_000, TimeUnit.MILLISECONDS);
      } catch (Exception e) {
        LOG.warn("drain did not complete", e);
      }
    }

    /**
     * Drains (see {@link #drain()}) unless already draining, leaves the registry and the cluster,
     * then stops serving and frees everything.
     */
    @Override
    public void close() {
      if (server.state() != WorkerState.DRAINING) {
        drain();
      }
      publisher.close();
      try {
        if (ownsHazelcast) {
          hazelcast.shutdown();
        }
      } catch (RuntimeException e) {
        LOG.warn("leaving the cluster failed", e);
      }
      try {
        server.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
      } catch (Exception e) {
        LOG.warn("server close did not complete", e);
      }
      engine.close();
      try {
        vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
      } catch (Exception e) {
        LOG.warn("Vert.x close did not complete", e);
      }
      model.close();
    }
  }

  @Override
  public Integer call() throws Exception {
    PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
    Running running = start();
    // SIGTERM/SIGINT drain the worker and the command exits 0 (as the gateway does).
    GatewayCommand.awaitShutdown(
        "starserve-worker-shutdown",
        () -> {
          LOG.info("draining for up to {}", running.drainTimeout());
          running.close();
        },
        () ->
            out.println(
                "worker "
                    + running.server().options().workerId()
                    + " serving "
                    + running.server().options().modelId()
                    + " on "
                    + running.server().address()));
    return 0;
  }

  /** Loads the model, starts serving and joins the cluster; the caller closes what it returns. */
  Running start() throws IOException {
    return start(null, null);
  }

  /**
   * Like {@link #start()}, but registers in {@code sharedCluster} (when not null: a member this JVM
   * already runs, which the worker then does not shut down) and with {@code secretOverride} (when
   * not null) instead of the configured secret.
   */
  Running start(HazelcastInstance sharedCluster, String secretOverride) throws IOException {
    if (maxPendingEvents < 4) {
      throw new IllegalArgumentException(
          "--max-pending-events must be >= 4, got " + maxPendingEvents);
    }
    if (grpcPort < 0 || grpcPort > 65535) {
      throw new IllegalArgumentException("--grpc-port must be in [0, 65535], got " + grpcPort);
    }
    Duration drain = parseDuration("--drain-timeout", drainTimeout);
    // Checked before the model loads: a bad cluster flag fails at once, not minutes later.
    ClusterSettings clusterSettings = sharedCluster == null ? cluster.settings() : null;
    String secret = secretOverride != null ? secretOverride : secret();
    LoadedModel lm =
        LoadedModel.open(
            model,
            device,
            threads == null ? LoadedModel.defaultThreads() : threads,
            engineOptions.quantize,
            engineOptions.tensorParallelSize);
    Engine engine = null;
    Vertx vertx = null;
    HazelcastInstance hz = null;
    try {
      engine =
          new Engine(
              lm.model(),
              lm.tokenizer(),
              lm.dir().eosTokenIds(),
              engineOptions.toConfig(lm.model().config()));
      vertx = Vertx.vertx();
      String id =
          modelId != null ? modelId : model.toAbsolutePath().normalize().getFileName().toString();
      WorkerOptions options =
          new WorkerOptions(
              workerId != null ? workerId : defaultWorkerId(),
              id,
              host,
              grpcPort,
              secret,
              maxPendingEvents,
              maxWaiting,
              drain);
      WorkerServer server = new WorkerServer(vertx, engine, options);
      server.start().toCompletionStage().toCompletableFuture().get(60, TimeUnit.SECONDS);
      hz = sharedCluster != null ? sharedCluster : ClusterOptions.join(clusterSettings);
      String advertised = advertisedAddress(server.port());
      RegistryPublisher publisher =
          new RegistryPublisher(hz, () -> server.info().toBuilder().setAddress(advertised).build())
              .start();
      server.markReady();
      LOG.info(
          "worker {} registered as {} in cluster '{}' (Hazelcast member {})",
          options.workerId(),
          advertised,
          cluster.clusterName,
          ClusterOptions.address(hz));
      return new Running(server, engine, vertx, lm, drain, hz, sharedCluster == null, publisher);
    } catch (Exception e) {
      if (engine != null) {
        engine.close();
      }
      if (vertx != null) {
        vertx.close();
      }
      if (hz != null && sharedCluster == null) {
        hz.shutdown();
      }
      lm.close();
      throw unwrap(e, "cannot serve on " + host + ":" + grpcPort);
    }
  }

  /**
   * A start failure as the command line reports it: a bind or startup failure inside a future
   * becomes an IOException with {@code what} and its cause's message; runtime errors pass as they
   * are.
   */
  static IOException unwrap(Exception e, String what) {
    if (e instanceof java.util.concurrent.ExecutionException ee && ee.getCause() != null) {
      return new IOException(what + ": " + ee.getCause().getMessage(), ee.getCause());
    }
    if (e instanceof RuntimeException re) {
      throw re;
    }
    if (e instanceof IOException io) {
      return io;
    }
    return new IOException(what + ": " + e.getMessage(), e);
  }

  private String secret() throws IOException {
    return clusterSecret(secretFile);
  }

  /**
   * The cluster's shared secret: the file's content, else {@code $STARSERVE_CLUSTER_SECRET}, else
   * null (no secret).
   */
  static String clusterSecret(Path secretFile) throws IOException {
    if (secretFile != null) {
      String s = Files.readString(secretFile, StandardCharsets.UTF_8).strip();
      if (s.isEmpty()) {
        throw new IllegalArgumentException("--cluster-secret-file " + secretFile + " is empty");
      }
      return s;
    }
    String env = System.getenv(SECRET_ENV);
    return env == null || env.isBlank() ? null : env.strip();
  }

  /** host:port under which the registry announces this worker. */
  String advertisedAddress(int port) {
    String h = advertiseHost;
    if (h == null || h.isBlank()) {
      h = host;
      if (h.equals("0.0.0.0") || h.equals("::")) {
        try {
          h = java.net.InetAddress.getLocalHost().getHostAddress();
        } catch (IOException e) {
          throw new IllegalArgumentException(
              "--host " + host + " binds every interface: give --advertise-host", e);
        }
      }
    }
    return h + ":" + port;
  }

  static String defaultWorkerId() {
    String host;
    try {
      host = java.net.InetAddress.getLocalHost().getHostName();
    } catch (IOException e) {
      host = "worker";
    }
    return host + "-" + ProcessHandle.current().pid();
  }

  /** {@code 30s}, {@code 500ms}, {@code 2m}, {@code 1h}, a bare number of seconds, or ISO-8601. */
  static Duration parseDuration(String flag, String s) {
    String t = s.trim().toLowerCase(Locale.ROOT);
    try {
      if (t.startsWith("pt")) {
        return nonNegative(flag, s, Duration.parse(t.toUpperCase(Locale.ROOT)));
      }
      if (t.endsWith("ms")) {
        return nonNegative(
            flag, s, Duration.ofMillis(Long.parseLong(t.substring(0, t.length() - 2))));
      }
      long n = Long.parseLong(t.replaceAll("[smh]$", ""));
      return nonNegative(
          flag,
          s,
          switch (t.charAt(t.length() - 1)) {
            case 'm' -> Duration.ofMinutes(n);
            case 'h' -> Duration.ofHours(n);
            default -> Duration.ofSeconds(n);
          });
    } catch (RuntimeException e) {
      if (e instanceof IllegalArgumentException iae && iae.getMessage().startsWith(flag)) {
        throw iae;
      }
      throw new IllegalArgumentException(
          flag + " must be a duration like 30s, 500ms or 2m, got '" + s + "'");
    }
  }

  private static Duration nonNegative(String flag, String s, Duration d) {
    if (d.isNegative()) {
      throw new IllegalArgumentException(flag + " must be >= 0, got '" + s + "'");
    }
    return d;
  }
}
