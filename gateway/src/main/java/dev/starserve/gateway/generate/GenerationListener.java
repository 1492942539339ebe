package dev.starserve.gateway.generate;

import dev.starserve.proto.worker.v1.Finished;
import dev.starserve.proto.worker.v1.Started;
import dev.starserve.proto.worker.v1.Tokens;

/** Receives one sequence's events from a {@link Generator}; see there for the order. */
public interface GenerationListener {
  void onStarted(Started started);

  void onTokens(Tokens tokens);

  void onFinished(Finished finished);

  /** The sequence failed and will produce nothing more; tokens already delivered stay valid. */
  void onError(GenerationException error);
}
