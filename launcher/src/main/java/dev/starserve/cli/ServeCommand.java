package dev.starserve.cli;

import com.hazelcast.core.HazelcastInstance;
import dev.starserve.gateway.ClusterGateway;
import dev.starserve.gateway.cluster.ClusterSettings;
import dev.starserve.gateway.metrics.GatewayMetrics;
import io.vertx.core.Future;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code starserve serve}: a gateway and one worker in one JVM around an embedded Hazelcast member
 * (other workers may join it with {@code --cluster-members}). Without {@code --model} it serves a
 * random-weight {@code tiny_starcoder_py}-shaped model it creates once in the cache folder.
 */
@Command(
    name = "serve",
    mixinStandardHelpOptions = true,
    description =
        "Serve a model on this machine: the public APIs and a worker in one process (without"
            + " --model: a tiny_starcoder_py-shaped random-weight model, created once).")
final class ServeCommand implements Callable<Integer> {
  private static final Logger LOG = LoggerFactory.getLogger(ServeCommand.class);

  @Option(
      names = "--model",
      description =
          "model directory (default: a tiny_starcoder_py-shaped random-weight model in the cache"
              + " folder, $STARSERVE_CACHE_DIR or ~/.cache/starserve)")
  Path model;

  @Option(names = "--model-id", description = "the model id served (default: the directory name)")
  String modelId;

  @Option(
      names = "--worker-port",
      defaultValue = "0",
      description =
          "the in-process worker's internal gRPC port on 127.0.0.1 (default: any free port)")
  int workerPort;

  @Option(
      names = "--cluster-secret-file",
      description =
          "file holding the cluster's shared secret (default: $"
              + WorkerCommand.SECRET_ENV
              + ", else a random one: then no outside worker can serve for this gateway)")
  Path secretFile;

  @Option(
      names = "--drain-timeout",
      defaultValue = "30s",
      description =
          "on SIGTERM, how long running requests may finish (the gateway refuses new ones, both"
              + " drain together) before they are ended (default: ${DEFAULT-VALUE})")
  String drainTimeout;

  @Option(names = "--device", defaultValue = "cpu", description = Devices.DESCRIPTION)
  String device;

  @Option(names = "--threads", description = "compute threads (default: all cores)")
  Integer threads;

  @Mixin GatewayOptions gateway;

  @Mixin EngineOptions engineOptions;

  @Mixin ClusterOptions cluster;

  @Mixin ConfigFileOption config;

  /**
   * What serve runs; closing drains the gateway and the worker together (each up to the drain
   * timeout: the gateway refuses new requests while those in flight finish on the worker), then
   * stops everything, gateway first.
   */
  record Running(ClusterGateway gateway, WorkerCommand.Running worker, HazelcastInstance hazelcast)
      implements AutoCloseable {
    @Override
    public void close() {
      Duration timeout = worker.drainTimeout();
      Future<?> gatewayDrained = gateway.drain(timeout);
      worker.drain();
      GatewayCommand.await(gatewayDrained, "gateway drain", timeout.plusSeconds(15));
      GatewayCommand.await(gateway.close(), "gateway close");
      worker.close();
      hazelcast.shutdown();
    }
  }

  @Override
  public Integer call() throws Exception {
    PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
    Running running = start(out);
    String model = running.worker().server().options().modelId();
    GatewayCommand.awaitShutdown(
        "starserve-serve-shutdown",
        running,
        () ->
            out.println(
                "serving "
                    + model
                    + ": OpenAI and TGI HTTP on http://"
                    + gateway.host
                    + ":"
                    + running.gateway().httpPort()
                    + " (/v1/completions, /v1/chat/completions, /generate, /metrics), fmaas gRPC on "
                    + gateway.host
                    + ":"
                    + running.gateway().grpcPort()
                    + "; Ctrl-C stops"));
    return 0;
  }

  Running start(PrintStream out) throws Exception {
    // Checked before the model is made or loaded: a bad cluster flag fails at once.
    ClusterSettings clusterSettings = cluster.settings();
    Path dir = model;
    if (dir == null) {
      Path cache = DefaultModel.cacheDir(System.getenv());
      out.println(
          "no --model given: serving a "
              + DefaultModel.SHAPE.cliName()
              + "-shaped model with RANDOM weights (its text is gibberish; it shows the whole"
              + " system working), kept in "
              + cache.resolve("models"));
      DefaultModel.Created c = DefaultModel.ensure(cache, DefaultModel.SHAPE);
      if (c.created()) {
        out.println("created " + c.dir());
      }
      dir = c.dir();
    }
    String secret = WorkerCommand.clusterSecret(secretFile);
    if (secret == null) {
      byte[] b = new byte[24];
      new SecureRandom().nextBytes(b);
      secret = HexFormat.of().formatHex(b);
    }
    WorkerCommand worker = workerCommand(dir);
    HazelcastInstance hz = ClusterOptions.join(clusterSettings);
    WorkerCommand.Running w = null;
    try {
      w = worker.start(hz, secret);
      ClusterGateway.Settings settings =
          new ClusterGateway.Settings(
              gateway.host,
              gateway.httpPort,
              gateway.grpcPort,
              gateway.limits(),
              gateway.keys(),
              secret);
      ClusterGateway g =
          ClusterGateway.start(w.vertx(), hz, settings, new GatewayMetrics())
              .toCompletionStage()
              .toCompletableFuture()
              .get(60, TimeUnit.SECONDS);
      awaitRegistered(g, w.server().options().workerId());
      return new Running(g, w, hz);
    } catch (Exception e) {
      if (w != null) {
        w.close();
      }
      hz.shutdown();
      throw WorkerCommand.unwrap(e, "cannot start serving");
    }
  }

  /** The worker half, configured from this command's flags. */
  private WorkerCommand workerCommand(Path dir) {
    WorkerCommand w = new WorkerCommand();
    List<String> args = new ArrayList<>();
    args.addAll(List.of("--model", dir.toString(), "--host", "127.0.0.1"));
    args.addAll(List.of("--grpc-port", Integer.toString(workerPort)));
    args.addAll(List.of("--worker-id", "serve-" + ProcessHandle.current().pid()));
    args.addAll(List.of("--drain-timeout", drainTimeout, "--device", device));
    if (modelId != null) {
      args.addAll(List.of("--model-id", modelId));
    }
    if (threads != null) {
      args.addAll(List.of("--threads", threads.toString()));
    }
    new CommandLine(w).parseArgs(args.toArray(String[]::new));
    w.engineOptions = engineOptions;
    return w;
  }

  /**
   * Waits (up to 10 s) until the gateway's directory lists the worker, so the first request finds
   * it.
   */
  private static void awaitRegistered(ClusterGateway g, String workerId)
      throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (!g.directory().snapshot().containsKey(workerId)) {
      if (System.nanoTime() > deadline) {
        LOG.warn("worker {} is not in the registry after 10 s; requests may get 503", workerId);
        return;
      }
      Thread.sleep(20);
    }
  }
}
