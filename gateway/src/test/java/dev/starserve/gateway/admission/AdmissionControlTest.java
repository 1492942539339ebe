package dev.starserve.gateway.admission;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

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
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class AdmissionControlTest {
  /** Keeps every listener so the test decides when each sequence ends. */
  private static class Held implements Generator {
    final List<GenerationListener> listeners = new ArrayList<>();
    int cancels;

    @Override
    public GenerationStream generate(GenerateRequest request, GenerationListener listener) {
      listeners.add(listener);
      return new GenerationStream() {
        @Override
        public void cancel() {
          cancels++;
        }

        @Override
        public void pause() {}

        @Override
        public void resume() {}
      };
    }

    @Override
    public Future<TokenizeResponse> tokenize(String modelId, TokenizeRequest request) {
      return Future.succeededFuture(TokenizeResponse.getDefaultInstance());
    }

    @Override
    public List<WorkerInfo> models() {
      return List.of();
    }
  }

  private static final GenerationListener IGNORE =
      new GenerationListener() {
        @Override
        public void onStarted(Started started) {}

        @Override
        public void onTokens(Tokens tokens) {}

        @Override
        public void onFinished(Finished finished) {}

        @Override
        public void onError(GenerationException error) {}
      };

  private static GenerateRequest request(String model) {
    return GenerateRequest.newBuilder().setModelId(model).build();
  }

  @Test
  void refusesBeyondTheBoundPerModelAndFreesEachSlotOnce() {
    Held held = new Held();
    AdmissionControl admission = new AdmissionControl(held, 2, new GatewayMetrics(false));
    GenerationStream first = admission.generate(request("a"), IGNORE);
    admission.generate(request("a"), IGNORE);
    admission.generate(request("b"), IGNORE);
    GenerationException e =
        assertThrows(GenerationException.class, () -> admission.generate(request("a"), IGNORE));
    assertEquals(GenerationException.Kind.OVERLOADED, e.kind());
    assertEquals(2, admission.inFlight("a"));
    assertEquals(1, admission.inFlight("b"));

    // finish, then cancel after the end: one slot freed, not two
    held.listeners.get(0).onFinished(Finished.getDefaultInstance());
    first.cancel();
    first.cancel();
    assertEquals(1, admission.inFlight("a"));
    // an error frees the other
    held.listeners
        .get(1)
        .onError(new GenerationException(GenerationException.Kind.UNAVAILABLE, "x"));
    assertEquals(0, admission.inFlight("a"));
    // a cancel frees at once, and the late finish does not free again
    GenerationStream third = admission.generate(request("a"), IGNORE);
    admission.generate(request("a"), IGNORE);
    third.cancel();
    assertEquals(1, admission.inFlight("a"));
    held.listeners.get(3).onFinished(Finished.getDefaultInstance());
    assertEquals(1, admission.inFlight("a"));
    assertEquals(3, held.cancels);
  }

  @Test
  void aGeneratorThatThrowsGivesTheSlotBack() {
    Generator throwing =
        new Held() {
          @Override
          public GenerationStream generate(GenerateRequest request, GenerationListener listener) {
            throw new GenerationException(GenerationException.Kind.UNAVAILABLE, "no worker");
          }
        };
    AdmissionControl admission = new AdmissionControl(throwing, 1, new GatewayMetrics(false));
    assertThrows(GenerationException.class, () -> admission.generate(request("a"), IGNORE));
    assertEquals(0, admission.inFlight("a"));
  }
}
