package dev.starserve.gateway.admission;

import dev.starserve.gateway.generate.GenerationException;
import dev.starserve.gateway.generate.GenerationListener;
import dev.starserve.gateway.generate.GenerationStream;
import dev.starserve.gateway.generate.Generator;
import dev.starserve.gateway.metrics.GatewayMetrics;
import dev.starserve.proto.worker.v1.Finished;
import dev.starserve.proto.worker.v1.GenerateRequest;
import dev.starserve.proto.worker.v1.Started;
import dev.starserve.proto.worker.v1.TokenizeRequest;
import dev.starserve.proto.worker.v1.TokenizeResponse;
import dev.starserve.proto.worker.v1.Tokens;
import dev.starserve.proto.worker.v1.WorkerInfo;
import io.vertx.core.Future;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Bounds the sequences in flight per model in front of another {@link Generator}. A sequence over
 * the bound is refused at once: {@link #generate} throws {@link GenerationException} with {@link
 * GenerationException.Kind#OVERLOADED}, which the APIs answer with 429 + Retry-After or
 * RESOURCE_EXHAUSTED, instead of queueing without bound. A slot is freed exactly once, when the
 * sequence finishes, fails or is cancelled.
 */
public final class AdmissionControl implements Generator {
  private final Generator delegate;
  private final int maxInFlightPerModel;
  private final GatewayMetrics metrics;
  private final ConcurrentHashMap<String, AtomicInteger> inFlight = new ConcurrentHashMap<>();

  public AdmissionControl(Generator delegate, int maxInFlightPerModel, GatewayMetrics metrics) {
    if (maxInFlightPerModel < 1) {
      throw new IllegalArgumentException(
          "maxInFlightPerModel must be >= 1, got " + maxInFlightPerModel);
    }
    this.delegate = delegate;
    this.maxInFlightPerModel = maxInFlightPerModel;
    this.metrics = metrics;
  }

  @Override
  public GenerationStream generate(GenerateRequest request, GenerationListener listener) {
    String model = request.getModelId();
    AtomicInteger count = inFlight.computeIfAbsent(model, m -> new AtomicInteger());
    int now = count.incrementAndGet();
    if (now > maxInFlightPerModel) {
      count.decrementAndGet();
      throw new GenerationException(
          GenerationException.Kind.OVERLOADED,
          "the gateway has "
              + maxInFlightPerModel
              + " sequences in flight for model '"
              + model
              + "', its limit; retry later");
    }
    metrics.inFlight(model, now);
    Slot slot = new Slot(model, count);
    GenerationStream stream;
    try {
      stream = delegate.generate(request, new Releasing(listener, slot));
    } catch (RuntimeException e) {
      slot.release();
      throw e;
    }
    return new GenerationStream() {
      @Override
      public void cancel() {
        stream.cancel();
        slot.release();
      }

      @Override
      public void pause() {
        stream.pause();
      }

      @Override
      public void resume() {
        stream.resume();
      }
    };
  }

  /** Sequences admitted and not yet ended for a model. */
  public int inFlight(String model) {
    AtomicInteger count = inFlight.get(model);
    return count == null ? 0 : count.get();
  }

  @Override
  public Future<TokenizeResponse> tokenize(String modelId, TokenizeRequest request) {
    return delegate.tokenize(modelId, request);
  }

  @Override
  public List<WorkerInfo> models() {
    return delegate.models();
  }

  private final class Slot {
    private final String model;
    private final AtomicInteger count;
    private final AtomicBoolean released = new AtomicBoolean();

    Slot(String model, AtomicInteger count) {
      this.model = model;
      this.count = count;
    }

    void release() {
      if (released.compareAndSet(false, true)) {
        metrics.inFlight(model, count.decrementAndGet());
      }
    }
  }

  private record Releasing(GenerationListener listener, Slot slot) implements GenerationListener {
    @Override
    public void onStarted(Started started) {
      listener.onStarted(started);
    }

    @Override
    public void onTokens(Tokens tokens) {
      listener.onTokens(tokens);
    }

    @Override
    public void onFinished(Finished finished) {
      slot.release();
      listener.onFinished(finished);
    }

    @Override
    public void onError(GenerationException error) {
      slot.release();
      listener.onError(error);
    }
  }
}
