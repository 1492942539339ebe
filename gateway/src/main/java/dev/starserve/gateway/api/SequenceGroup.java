package dev.starserve.gateway.api;

import dev.starserve.gateway.generate.GenerationException;
import dev.starserve.gateway.generate.GenerationListener;
import dev.starserve.gateway.generate.GenerationStream;
import dev.starserve.gateway.generate.Generator;
import dev.starserve.gateway.metrics.RequestTimer;
import dev.starserve.proto.worker.v1.Finished;
import dev.starserve.proto.worker.v1.GenerateRequest;
import dev.starserve.proto.worker.v1.Started;
import dev.starserve.proto.worker.v1.Tokens;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The sequences of one public request (OpenAI n × prompts, a TGIS batch), started together and
 * ended together: the first failure cancels the others and is reported once; cancel, pause and
 * resume apply to all. Used on the request's Vert.x context only.
 */
public final class SequenceGroup {
  private static final Logger LOG = LoggerFactory.getLogger(SequenceGroup.class);

  /** What the API adapter hears, tagged with the sequence's index in the request list. */
  public interface Events {
    default void started(int index, Started started) {}

    void tokens(int index, Tokens tokens);

    void finished(int index, Finished finished);

    /** Every sequence finished. */
    void completed();

    /** One sequence failed (the others are cancelled), or starting one was refused. */
    void failed(GenerationException error);
  }

  private final Events events;
  private final RequestTimer timer;
  private final List<GenerationStream> streams = new ArrayList<>();
  private int remaining;
  private boolean over;

  private SequenceGroup(Events events, RequestTimer timer, int count) {
    this.events = events;
    this.timer = timer;
    this.remaining = count;
  }

  /**
   * Starts every request. A refusal while starting (admission, routing) cancels the ones already
   * started and is reported through {@link Events#failed} before this returns.
   */
  public static SequenceGroup start(
      Generator generator, List<GenerateRequest> requests, RequestTimer timer, Events events) {
    SequenceGroup group = new SequenceGroup(events, timer, requests.size());
    for (int i = 0; i < requests.size() && !group.over; i++) {
      try {
        group.streams.add(generator.generate(requests.get(i), group.listener(i)));
      } catch (GenerationException e) {
        group.fail(e);
      } catch (RuntimeException e) {
        LOG.error("the generator failed to start a sequence", e);
        group.fail(
            new GenerationException(
                GenerationException.Kind.GENERATION_FAILED,
                "internal error starting a sequence",
                e));
      }
    }
    return group;
  }

  /** Whether the group has completed, failed or been cancelled. */
  public boolean over() {
    return over;
  }

  /** Cancels every sequence (client gone); the events hear nothing more. Idempotent. */
  public void cancel() {
    if (!over) {
      over = true;
      streams.forEach(GenerationStream::cancel);
    }
  }

  public void pause() {
    streams.forEach(GenerationStream::pause);
  }

  public void resume() {
    streams.forEach(GenerationStream::resume);
  }

  private void fail(GenerationException e) {
    if (over) {
      return;
    }
    over = true;
    streams.forEach(GenerationStream::cancel);
    try {
      events.failed(e);
    } catch (RuntimeException bug) {
      LOG.error("an API adapter failed reporting an error", bug);
    }
  }

  /**
   * Runs an adapter callback; an exception there is a bug in the adapter, so it is logged, the
   * group is cancelled and failed, and nothing is thrown back into the generator.
   */
  private void guard(Runnable callback) {
    try {
      callback.run();
    } catch (RuntimeException e) {
      LOG.error("an API adapter failed handling a generation event", e);
      fail(
          new GenerationException(GenerationException.Kind.GENERATION_FAILED, "internal error", e));
    }
  }

  private GenerationListener listener(int index) {
    return new GenerationListener() {
      @Override
      public void onStarted(Started started) {
        if (!over) {
          guard(() -> events.started(index, started));
        }
      }

      @Override
      public void onTokens(Tokens tokens) {
        if (!over) {
          timer.tokens(tokens.getTokensCount());
          guard(() -> events.tokens(index, tokens));
        }
      }

      @Override
      public void onFinished(Finished finished) {
        if (over) {
          return;
        }
        timer.finished(finished.getInputTokenCount(), finished.getGeneratedTokenCount());
        if (finished.getReason() == dev.starserve.proto.worker.v1.FinishReason.ERROR) {
          fail(
              new GenerationException(
                  GenerationException.Kind.GENERATION_FAILED,
                  finished.getError().isEmpty() ? "generation failed" : finished.getError()));
          return;
        }
        guard(() -> events.finished(index, finished));
        if (--remaining == 0 && !over) {
          over = true;
          guard(events::completed);
        }
      }

      @Override
      public void onError(GenerationException error) {
        fail(error);
      }
    };
  }
}
