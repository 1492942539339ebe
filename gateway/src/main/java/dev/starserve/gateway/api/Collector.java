package dev.starserve.gateway.api;

import dev.starserve.gateway.generate.GenerationException;
import dev.starserve.proto.worker.v1.Finished;
import dev.starserve.proto.worker.v1.Started;
import dev.starserve.proto.worker.v1.Token;
import dev.starserve.proto.worker.v1.Tokens;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/** Gathers a {@link SequenceGroup}'s events into one {@link SequenceResult} per sequence. */
public final class Collector implements SequenceGroup.Events {
  private final List<SequenceResult> results;
  private final Promise<List<SequenceResult>> promise = Promise.promise();

  public Collector(int count) {
    List<SequenceResult> list = new ArrayList<>(count);
    for (int i = 0; i < count; i++) {
      list.add(new SequenceResult());
    }
    results = Collections.unmodifiableList(list);
  }

  public Future<List<SequenceResult>> future() {
    return promise.future();
  }

  @Override
  public void started(int index, Started started) {
    results.get(index).started = started;
  }

  @Override
  public void tokens(int index, Tokens tokens) {
    SequenceResult r = results.get(index);
    for (Token t : tokens.getTokensList()) {
      r.tokens.add(t);
      r.text.append(t.getText());
    }
  }

  @Override
  public void finished(int index, Finished finished) {
    SequenceResult r = results.get(index);
    r.text.append(finished.getTrailingText());
    r.finished = finished;
  }

  @Override
  public void completed() {
    promise.tryComplete(results);
  }

  @Override
  public void failed(GenerationException error) {
    promise.tryFail(error);
  }
}
