package dev.starserve.gateway.api;

import dev.starserve.proto.worker.v1.Finished;
import dev.starserve.proto.worker.v1.Started;
import dev.starserve.proto.worker.v1.Token;
import java.util.ArrayList;
import java.util.List;

/** Everything one sequence produced, for the non-streaming answers. */
public final class SequenceResult {
  public Started started = Started.getDefaultInstance();
  public final List<Token> tokens = new ArrayList<>();
  public final StringBuilder text = new StringBuilder();
  public Finished finished;
}
