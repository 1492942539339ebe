package dev.starserve.cli;

import com.hazelcast.core.HazelcastInstance;
import dev.starserve.engine.Engine;
import dev.starserve.worker.api.WorkerServer;
import java.io.IOException;
import picocli.CommandLine;

/**
 * A worker started from {@code starserve worker} flags exactly as the command starts one (its own
 * model, engine, Vert.x and Hazelcast member), in this JVM: for cluster tests outside this package.
 */
public final class InProcessWorker implements AutoCloseable {
  private final WorkerCommand.Running running;

  private InProcessWorker(WorkerCommand.Running running) {
    this.running = running;
  }

  /**
   * Parses {@code args} as the worker command does and starts it with {@code secret} as the
   * cluster's shared secret; the caller closes it.
   */
  public static InProcessWorker start(String secret, String... args) throws IOException {
    WorkerCommand cmd = new WorkerCommand();
    new CommandLine(cmd).parseArgs(args);
    return new InProcessWorker(cmd.start(null, secret));
  }

  public Engine engine() {
    return running.engine();
  }

  public WorkerServer server() {
    return running.server();
  }

  public HazelcastInstance hazelcast() {
    return running.hazelcast();
  }

  /** Drains (up to the drain timeout), leaves the registry and the cluster, frees everything. */
  @Override
  public void close() {
    running.close();
  }
}
