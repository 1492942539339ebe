package dev.starserve.worker.api;

import java.time.Duration;

/**
 * How a {@link WorkerServer} serves its engine.
 *
 * @param workerId this worker's id in the cluster registry, 1 to 128 characters
 * @param modelId the model id it serves (requests may name it or leave it empty)
 * @param host the address to bind, e.g. 127.0.0.1 or 0.0.0.0
 * @param port the port to bind, 0 for any free one
 * @param secret the cluster's shared secret every WorkerService call must carry in {@code
 *     x-starserve-secret}; null or empty: none asked
 * @param maxPendingEvents events one Generate call may hold for a slow reader before it is aborted
 *     with RESOURCE_EXHAUSTED, at least 4
 * @param maxWaiting Generate calls that may wait beyond the engine's running sequences before new
 *     ones get RESOURCE_EXHAUSTED, at least 0
 * @param drainTimeout how long {@link WorkerServer#drain} waits by default
 */
public record WorkerOptions(
    String workerId,
    String modelId,
    String host,
    int port,
    String secret,
    int maxPendingEvents,
    int maxWaiting,
    Duration drainTimeout) {
  public static final int DEFAULT_PORT = 8033;
  public static final int DEFAULT_MAX_PENDING_EVENTS = 8192;
  public static final int DEFAULT_MAX_WAITING = 1024;
  public static final Duration DEFAULT_DRAIN_TIMEOUT = Duration.ofSeconds(30);

  public WorkerOptions {
    if (workerId == null || workerId.isEmpty() || workerId.length() > 128) {
      throw new IllegalArgumentException("worker id must be 1 to 128 characters");
    }
    if (modelId == null || modelId.isEmpty()) {
      throw new IllegalArgumentException("model id must not be empty");
    }
    if (host == null || host.isEmpty()) {
      throw new IllegalArgumentException("host must not be empty");
    }
    if (port < 0 || port > 65535) {
      throw new IllegalArgumentException("port must be in [0, 65535], got " + port);
    }
    if (maxPendingEvents < 4) {
      throw new IllegalArgumentException(
          "max pending events must be >= 4, got " + maxPendingEvents);
    }
    if (maxWaiting < 0) {
      throw new IllegalArgumentException("max waiting must be >= 0, got " + maxWaiting);
    }
    if (drainTimeout == null || drainTimeout.isNegative()) {
      throw new IllegalArgumentException("drain timeout must be >= 0");
    }
    secret = secret == null || secret.isEmpty() ? null : secret;
  }

  /** Defaults for everything but the identity and the address. */
  public static WorkerOptions of(String workerId, String modelId, String host, int port) {
    return new WorkerOptions(
        workerId,
        modelId,
        host,
        port,
        null,
        DEFAULT_MAX_PENDING_EVENTS,
        DEFAULT_MAX_WAITING,
        DEFAULT_DRAIN_TIMEOUT);
  }

  public WorkerOptions withSecret(String s) {
    return new WorkerOptions(
        workerId, modelId, host, port, s, maxPendingEvents, maxWaiting, drainTimeout);
  }

  public WorkerOptions withMaxPendingEvents(int n) {
    return new WorkerOptions(workerId, modelId, host, port, secret, n, maxWaiting, drainTimeout);
  }

  public WorkerOptions withMaxWaiting(int n) {
    return new WorkerOptions(
        workerId, modelId, host, port, secret, maxPendingEvents, n, drainTimeout);
  }

  public WorkerOptions withDrainTimeout(Duration d) {
    return new WorkerOptions(
        workerId, modelId, host, port, secret, maxPendingEvents, maxWaiting, d);
  }

  @Override
  public String toString() {
    // NOTE: never print the secret.
    return "WorkerOptions[" + workerId + ", " + modelId + ", " + host + ":" + port + "]";
  }
}
