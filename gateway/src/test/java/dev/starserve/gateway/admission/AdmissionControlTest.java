package dev.starserve.gateway.admission;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

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

  /** Records what a listener hears. */
  private static final class Heard implements GenerationListener {
    final List<String> events = new ArrayList<>();

    @Override
    public void onStarted(Started started) {
      events.add("started");
    }

    @Override
    public void onTokens(Tokens tokens) {
      events.add("tokens");
    }

    @Override
    public void onFinished(Finished finished) {
      events.add("finished");
    }

    @Override
    public void onError(GenerationException error) {
      events.add(error.kind() + ": " + error.getMessage());
    }
  }

  @Test
  void drainingRefusesNewSequencesWaitsForTheAdmittedOnesAndCutsTheRest() {
    Held held = new Held();
    AdmissionControl admission = new AdmissionControl(held, 8, new GatewayMetrics(false));
    Heard a = new Heard();
    Heard b = new Heard();
    admission.generate(request("m"), a);
    admission.generate(request("m"), b);
    assertEquals(2, admission.inFlight());

    Future<Void> idle = admission.startDraining();
    assertTrue(admission.draining());
    GenerationException refused =
        assertThrows(GenerationException.class, () -> admission.generate(request("m"), IGNORE));
    assertEquals(GenerationException.Kind.UNAVAILABLE, refused.kind());
    assertEquals("gateway is draining", refused.getMessage());
    assertEquals(2, admission.inFlight(), "a refusal takes no slot");
    assertEquals(2, held.listeners.size());

    held.listeners.get(0).onTokens(Tokens.getDefaultInstance());
    held.listeners.get(0).onFinished(Finished.getDefaultInstance());
    assertEquals(List.of("tokens", "finished"), a.events);
    assertEquals(1, admission.endedWhileDraining());
    assertFalse(idle.isComplete(), "one sequence still runs");

    Future<Integer> cut =
        admission.cut(new GenerationException(GenerationException.Kind.UNAVAILABLE, "cut"));
    assertEquals(1, cut.result(), "only the running one is cut");
    assertEquals(List.of("UNAVAILABLE: cut"), b.events);
    assertEquals(1, held.cancels, "the cut sequence is cancelled on its worker");
    assertTrue(idle.succeeded());
    assertEquals(0, admission.inFlight());
    assertEquals(1, admission.endedWhileDraining(), "a cut is not counted as finished");
    // whatever the generator still sends after the cut is dropped
    held.listeners.get(1).onFinished(Finished.getDefaultInstance());
    assertEquals(List.of("UNAVAILABLE: cut"), b.events);
    assertEquals(0, admission.inFlight("m"));
    assertTrue(admission.startDraining().succeeded(), "idempotent");
  }

  @Test
  void drainingWithNothingInFlightIsIdleAtOnce() {
    AdmissionControl admission = new AdmissionControl(new Held(), 1, new GatewayMetrics(false));
    assertTrue(admission.startDraining().succeeded());
    assertEquals(
        0,
        admission.cut(new GenerationException(GenerationException.Kind.UNAVAILABLE, "x")).result());
  }
}
