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
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Bounds the sequences in flight per model in front of another {@link Generator}. A sequence over
 * the bound is refused at once: {@link #generate} throws {@link GenerationException} with {@link
 * GenerationException.Kind#OVERLOADED}, which the APIs answer with 429 + Retry-After or
 * RESOURCE_EXHAUSTED, instead of queueing without bound. A slot is freed exactly once, when the
 * sequence finishes, fails or is cancelled.
 *
 * <p>It also drains the gateway: after {@link #startDraining()} every new sequence is refused with
 * {@link GenerationException.Kind#UNAVAILABLE} "gateway is draining" while the admitted ones run
 * on; the returned future completes when none is left, and {@link #cut} ends those still running (a
 * drain timeout) with an error their clients see.
 */
public final class AdmissionControl implements Generator {
  private final Generator delegate;
  private final int maxInFlightPerModel;
  private final GatewayMetrics metrics;
  private final ConcurrentHashMap<String, AtomicInteger> inFlight = new ConcurrentHashMap<>();

  /** The message new requests get while the gateway drains. */
  public static final String DRAINING_MESSAGE = "gateway is draining";

  private final AtomicInteger total = new AtomicInteger();
  private final Set<Slot> live = ConcurrentHashMap.newKeySet();
  private final Promise<Void> idle = Promise.promise();
  private final AtomicInteger endedWhileDraining = new AtomicInteger();
  private volatile boolean draining;

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
    // Counted before the draining check, so a drain that starts meanwhile either refuses this
    // sequence or waits for it, never neither.
    total.incrementAndGet();
    if (draining) {
      leave();
      throw new GenerationException(GenerationException.Kind.UNAVAILABLE, DRAINING_MESSAGE);
    }
    String model = request.getModelId();
    AtomicInteger count = inFlight.computeIfAbsent(model, m -> new AtomicInteger());
    int now = count.incrementAndGet();
    if (now > maxInFlightPerModel) {
      count.decrementAndGet();
      leave();
      throw new GenerationException(
          GenerationException.Kind.OVERLOADED,
          "the gateway has "
              + maxInFlightPerModel
              + " sequences in flight for model '"
              + model
              + "', its limit; retry later");
    }
    metrics.inFlight(model, now);
    Slot slot = new Slot(model, count, Vertx.currentContext(), listener);
    live.add(slot);
    GenerationStream stream;
    try {
      stream = delegate.generate(request, new Releasing(listener, slot));
    } catch (RuntimeException e) {
      slot.release(false);
      throw e;
    }
    slot.stream = stream;
    return new GenerationStream() {
      @Override
      public void cancel() {
        stream.cancel();
        slot.release(false);
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

  /** Sequences admitted and not yet ended, over all models. */
  public int inFlight() {
    return total.get();
  }

  /** Whether {@link #startDraining()} was called. */
  public boolean draining() {
    return draining;
  }

  /**
   * From now on refuses every new sequence (UNAVAILABLE, {@value #DRAINING_MESSAGE}); the ones
   * admitted run on. The future completes once none is in flight (at once when none is).
   * Idempotent.
   */
  public Future<Void> startDraining() {
    draining = true;
    if (total.get() == 0) {
      idle.tryComplete();
    }
    return idle.future();
  }

  /** Sequences that ended on their own (finished, failed, cancelled) since draining started. */
  public int endedWhileDraining() {
    return endedWhileDraining.get();
  }

  /**
   * Ends every sequence still in flight: cancels it on its worker and tells its listener {@code
   * error}, on the Vert.x context that started it, as if the generator had failed it. The future
   * holds how many were cut (sequences that ended meanwhile are not).
   */
  public Future<Integer> cut(GenerationException error) {
    List<Future<Boolean>> cuts = new ArrayList<>();
    for (Slot slot : List.copyOf(live)) {
      Promise<Boolean> p = Promise.promise();
      cuts.add(p.future());
      Runnable task =
          () -> {
            try {
              p.complete(slot.cut(error));
            } catch (RuntimeException e) {
              p.complete(true);
              throw e;
            }
          };
      if (slot.context == null) {
        task.run();
      } else {
        slot.context.runOnContext(v -> task.run());
      }
    }
    return Future.join(cuts)
        .transform(
            ar -> {
              int n = 0;
              for (Future<Boolean> f : cuts) {
                if (f.succeeded() && f.result()) {
                  n++;
                }
              }
              return Future.succeededFuture(n);
            });
  }

  private void leave() {
    if (total.decrementAndGet() == 0 && draining) {
      idle.tryComplete();
    }
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
    private final Context context;
    private final GenerationListener listener;
    private final AtomicBoolean released = new AtomicBoolean();
    private volatile GenerationStream stream;
    private volatile boolean wasCut;

    Slot(String model, AtomicInteger count, Context context, GenerationListener listener) {
      this.model = model;
      this.count = count;
      this.context = context;
      this.listener = listener;
    }

    /** Frees the slot; true when this call did (the first one). */
    boolean release(boolean cutting) {
      if (!released.compareAndSet(false, true)) {
        return false;
      }
      metrics.inFlight(model, count.decrementAndGet());
      live.remove(this);
      if (draining && !cutting) {
        endedWhileDraining.incrementAndGet();
      }
      leave();
      return true;
    }

    /** Ends a sequence still running with {@code error}; false when it had already ended. */
    boolean cut(GenerationException error) {
      if (!release(true)) {
        return false;
      }
      wasCut = true;
      GenerationStream s = stream;
      if (s != null) {
        s.cancel();
      }
      listener.onError(error);
      return true;
    }
  }

  /** Frees the slot when the sequence ends; drops whatever the generator sends after a cut. */
  private record Releasing(GenerationListener listener, Slot slot) implements GenerationListener {
    @Override
    public void onStarted(Started started) {
      if (!slot.wasCut) {
        listener.onStarted(started);
      }
    }

    @Override
    public void onTokens(Tokens tokens) {
      if (!slot.wasCut) {
        listener.onTokens(tokens);
      }
    }

    @Override
    public void onFinished(Finished finished) {
      if (!slot.wasCut) {
        slot.release(false);
        listener.onFinished(finished);
      }
    }

    @Override
    public void onError(GenerationException error) {
      if (!slot.wasCut) {
        slot.release(false);
        listener.onError(error);
      }
    }
  }
}
