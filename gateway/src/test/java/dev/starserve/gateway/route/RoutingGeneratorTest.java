package dev.starserve.gateway.route;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.gateway.generate.GenerationException;
import dev.starserve.gateway.generate.GenerationListener;
import dev.starserve.gateway.generate.GenerationStream;
import dev.starserve.proto.worker.v1.Finished;
import dev.starserve.proto.worker.v1.GenerateRequest;
import dev.starserve.proto.worker.v1.Prompt;
import dev.starserve.proto.worker.v1.Started;
import dev.starserve.proto.worker.v1.Stopping;
import dev.starserve.proto.worker.v1.Token;
import dev.starserve.proto.worker.v1.TokenizeRequest;
import dev.starserve.proto.worker.v1.TokenizeResponse;
import dev.starserve.proto.worker.v1.Tokens;
import dev.starserve.proto.worker.v1.WorkerInfo;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class RoutingGeneratorTest {
  private static final String MODEL = "tiny";

  private Vertx vertx;
  private Context context;
  private StaticView view;
  private FakeWorker a;
  private FakeWorker b;
  private final AtomicInteger retried = new AtomicInteger();
  private final AtomicInteger failedOver = new AtomicInteger();
  private RoutingGenerator router;

  @BeforeEach
  void setUp() throws Exception {
    vertx = Vertx.vertx();
    context = vertx.getOrCreateContext();
    view = new StaticView();
    a = new FakeWorker(vertx, "worker-a");
    b = new FakeWorker(vertx, "worker-b");
    view.put(a.info(MODEL));
    view.put(b.info(MODEL));
    router = router(RoutingGenerator.Settings.DEFAULT);
  }

  private RoutingGenerator router(RoutingGenerator.Settings settings) {
    return new RoutingGenerator(
        vertx,
        view,
        new RoutePolicy(RoutePolicy.Settings.DEFAULT, new SplittableRandom(7)),
        settings,
        new RoutingEvents() {
          @Override
          public void retried(String model) {
            retried.incrementAndGet();
          }

          @Override
          public void failedOver(String model) {
            failedOver.incrementAndGet();
          }
        });
  }

  @AfterEach
  void tearDown() throws Exception {
    router.close();
    a.close();
    b.close();
    vertx.close().await(10, TimeUnit.SECONDS);
  }

  /** Everything one sequence's listener heard, in order. */
  static class Heard implements GenerationListener {
    final List<Started> started = new CopyOnWriteArrayList<>();
    final List<Token> tokens = new CopyOnWriteArrayList<>();
    final List<Object> after = new CopyOnWriteArrayList<>();
    final CompletableFuture<Object> end = new CompletableFuture<>();

    @Override
    public void onStarted(Started s) {
      started.add(s);
    }

    @Override
    public void onTokens(Tokens t) {
      tokens.addAll(t.getTokensList());
    }

    @Override
    public void onFinished(Finished f) {
      if (!end.complete(f)) {
        after.add(f);
      }
    }

    @Override
    public void onError(GenerationException e) {
      if (!end.complete(e)) {
        after.add(e);
      }
    }

    Object await() throws Exception {
      return end.get(20, TimeUnit.SECONDS);
    }

    List<Integer> ids() {
      return tokens.stream().map(Token::getId).toList();
    }
  }

  private static GenerateRequest request(String prompt, int maxNewTokens) {
    return GenerateRequest.newBuilder()
        .setRequestId("r-" + prompt.hashCode())
        .setModelId(MODEL)
        .setPrompt(Prompt.newBuilder().setText(prompt))
        .setStopping(Stopping.newBuilder().setMaxNewTokens(maxNewTokens))
        .build();
  }

  private static List<Integer> expected(String prompt, int n) {
    List<Integer> ids = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      ids.add(FakeWorker.tokenAt(prompt, i));
    }
    return ids;
  }

  private GenerationStream[] start(RoutingGenerator r, GenerateRequest req, Heard heard) {
    GenerationStream[] stream = new GenerationStream[1];
    CompletableFuture<Void> started = new CompletableFuture<>();
    context.runOnContext(
        v -> {
          stream[0] = r.generate(req, heard);
          started.complete(null);
        });
    started.join();
    return stream;
  }

  /** A prompt whose affinity target among a and b is {@code target}. */
  private String promptPreferring(FakeWorker target, String stem) {
    RoutePolicy policy = new RoutePolicy();
    List<WorkerInfo> both = List.of(a.info(MODEL), b.info(MODEL));
    for (int i = 0; ; i++) {
      String prompt = stem + " #" + i;
      String key = policy.affinityKey(Prompt.newBuilder().setText(prompt).build());
      if (RoutePolicy.rendezvous(both, key).getWorkerId().equals(target.id)) {
        return prompt;
      }
    }
  }

  private static void await(String what, BooleanSupplier condition) throws InterruptedException {
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > end) {
        throw new AssertionError("timed out waiting until " + what);
      }
      Thread.sleep(10);
    }
  }

  private void assertComplete(Heard heard, String prompt, int n) throws Exception {
    Object end = heard.await();
    assertTrue(end instanceof Finished, "finished, got " + end);
    assertEquals(1, heard.started.size(), "exactly one Started reaches the client");
    assertEquals(expected(prompt, n), heard.ids(), "every token once, in order");
    for (int i = 0; i < heard.tokens.size(); i++) {
      assertEquals(i, heard.tokens.get(i).getIndex());
    }
    Thread.sleep(20);
    assertEquals(List.of(), heard.after, "nothing after the end");
  }

  @Test
  void distinctPromptsSpreadOverBothWorkers() throws Exception {
    for (int i = 0; i < 16; i++) {
      String prompt = "print(" + i + ")";
      Heard heard = new Heard();
      start(router, request(prompt, 3), heard);
      assertComplete(heard, prompt, 3);
    }
    assertTrue(
        a.requests.size() >= 3 && b.requests.size() >= 3,
        "a: " + a.requests.size() + ", b: " + b.requests.size());
    assertEquals(16, a.requests.size() + b.requests.size());
    assertEquals(0, retried.get());
    assertEquals(0, router.inFlight(a.id) + router.inFlight(b.id), "in-flight counts return to 0");
  }

  @Test
  void promptsSharingAPrefixStickToOneWorker() throws Exception {
    String prefix = "import numpy as np\n".repeat(20);
    for (int i = 0; i < 10; i++) {
      String prompt = prefix + "x = " + i;
      Heard heard = new Heard();
      start(router, request(prompt, 2), heard);
      assertComplete(heard, prompt, 2);
    }
    assertTrue(
        a.requests.isEmpty() != b.requests.isEmpty(),
        "one worker got all: a " + a.requests.size() + ", b " + b.requests.size());
  }

  @Test
  void aWorkerThatFailsBeforeTheFirstTokenIsRetriedElsewhere() throws Exception {
    a.failAfterTokens = 0;
    String prompt = promptPreferring(a, "def f():");
    Heard heard = new Heard();
    start(router, request(prompt, 5), heard);
    assertComplete(heard, prompt, 5);
    assertEquals(1, a.requests.size());
    assertEquals(1, b.requests.size());
    assertEquals(0, b.requests.getFirst().getResumeTokenIdsCount());
    assertEquals(1, retried.get());
    assertEquals(0, failedOver.get());
  }

  @Test
  void aWorkerThatFailsMidStreamIsResumedElsewhereWithoutGapOrRepeat() throws Exception {
    a.failAfterTokens = 4;
    String prompt = promptPreferring(a, "class Foo:");
    Heard heard = new Heard();
    start(router, request(prompt, 12), heard);
    assertComplete(heard, prompt, 12);
    GenerateRequest resumed = b.requests.getFirst();
    assertEquals(expected(prompt, 4), resumed.getResumeTokenIdsList());
    assertEquals(FakeWorker.DEFAULT_SEED, resumed.getSampling().getSeed(), "same seed");
    assertEquals(1, failedOver.get());
    assertEquals(0, retried.get());
  }

  @Test
  void aWorkerProcessThatDiesMidStreamIsResumedElsewhere() throws Exception {
    a.failAfterTokens = 3;
    a.failure = FakeWorker.Failure.KILL;
    String prompt = promptPreferring(a, "fn main() {");
    Heard heard = new Heard();
    start(router, request(prompt, 10), heard);
    assertComplete(heard, prompt, 10);
    assertEquals(expected(prompt, 3), b.requests.getFirst().getResumeTokenIdsList());
    assertEquals(1, failedOver.get());
  }

  @Test
  void aHungWorkerThatLeavesTheRegistryIsFailedOver() throws Exception {
    a.failAfterTokens = 2;
    a.failure = FakeWorker.Failure.HANG;
    String prompt = promptPreferring(a, "SELECT");
    Heard heard = new Heard();
    start(router, request(prompt, 6), heard);
    await("two tokens arrive", () -> heard.tokens.size() == 2);
    Thread.sleep(50);
    assertNull(heard.end.getNow(null), "still waiting on the hung worker");
    view.remove(a.id);
    assertComplete(heard, prompt, 6);
    await("the hung call is cancelled on the worker", () -> a.cancellations.get() == 1);
  }

  @Test
  void aWorkerWhoseRecordLapsesWhileStillAMemberFinishesItsStreamsButTakesNoNewOnes()
      throws Exception {
    a.tokenDelayMillis = 40;
    String prompt = promptPreferring(a, "class Stale:");
    Heard heard = new Heard();
    start(router, request(prompt, 8), heard);
    await("two tokens arrive", () -> heard.tokens.size() >= 2);
    view.markStale(a.id);
    assertComplete(heard, prompt, 8);
    assertEquals(0, failedOver.get(), "not failed over");
    assertEquals(0, a.cancellations.get());
    assertEquals(List.of(), b.requests);

    String next = promptPreferring(a, "class Fresh:");
    Heard second = new Heard();
    start(router, request(next, 3), second);
    assertComplete(second, next, 3);
    assertEquals(1, b.requests.size(), "a new request avoids the stale worker");
    assertEquals(1, a.requests.size());
  }

  /** Starts the sequence inside a gRPC context whose deadline is {@code millis} away. */
  private GenerationStream[] startWithDeadline(
      RoutingGenerator r, GenerateRequest req, Heard heard, long millis) {
    GenerationStream[] stream = new GenerationStream[1];
    CompletableFuture<Void> started = new CompletableFuture<>();
    ScheduledExecutorService timers = Executors.newSingleThreadScheduledExecutor();
    try {
      context.runOnContext(
          v -> {
            io.grpc.Context.CancellableContext grpc =
                io.grpc.Context.current().withDeadlineAfter(millis, TimeUnit.MILLISECONDS, timers);
            grpc.run(() -> stream[0] = r.generate(req, heard));
            started.complete(null);
          });
      started.join();
    } finally {
      timers.shutdownNow();
    }
    return stream;
  }

  @Test
  void theCallersDeadlineTravelsToTheWorkerAndWithoutOneNoneIsSent() throws Exception {
    String prompt = promptPreferring(a, "deadline");
    Heard with = new Heard();
    startWithDeadline(router, request(prompt, 4), with, 30_000);
    assertComplete(with, prompt, 4);
    Heard without = new Heard();
    start(router, request(prompt, 4), without);
    assertComplete(without, prompt, 4);
    assertEquals(2, a.deadlinesSeen.size(), "both calls went to the affinity worker");
    long left = a.deadlinesSeen.get(0);
    assertTrue(left > 0 && left <= 30_000, "the worker got what was left: " + left + " ms");
    assertEquals(-1L, a.deadlinesSeen.get(1), "no deadline, no grpc-timeout");
  }

  @Test
  void aPassedDeadlineEndsTheSequenceWithDeadlineExceededAndNoRetry() throws Exception {
    a.failAfterTokens = 2;
    a.failure = FakeWorker.Failure.HANG;
    String prompt = promptPreferring(a, "too slow");
    Heard heard = new Heard();
    startWithDeadline(router, request(prompt, 6), heard, 1000);
    Object end = heard.await();
    GenerationException e = assertInstanceOf(GenerationException.class, end);
    assertEquals(GenerationException.Kind.DEADLINE_EXCEEDED, e.kind(), e.getMessage());
    assertTrue(heard.tokens.size() <= 2, "only what the worker sent: " + heard.tokens.size());
    assertTrue(b.requests.isEmpty(), "a deadline is not retried elsewhere");
    await("in-flight back to 0", () -> router.inFlight(a.id) == 0 && router.openStreams() == 0);
  }

  @Test
  void cancelReachesTheWorkerAndSilencesTheListener() throws Exception {
    a.tokenDelayMillis = 20;
    String prompt = promptPreferring(a, "while True:");
    Heard heard = new Heard();
    GenerationStream[] stream = start(router, request(prompt, 1000), heard);
    await("tokens flow", () -> heard.tokens.size() >= 2);
    context.runOnContext(v -> stream[0].cancel());
    await("the worker sees the cancel", () -> a.cancellations.get() == 1);
    int seen = heard.tokens.size();
    Thread.sleep(100);
    assertTrue(heard.tokens.size() <= seen + 1);
    assertNull(heard.end.getNow(null), "no end event after cancel");
    await("in-flight back to 0", () -> router.inFlight(a.id) == 0 && router.openStreams() == 0);
    stream[0].cancel(); // idempotent
  }

  @Test
  void pauseHoldsEventsAndResumeDeliversTheRest() throws Exception {
    a.tokenDelayMillis = 20; // 40 tokens take 800 ms: the pause lands before the last
    String prompt = promptPreferring(a, "pause");
    Heard heard = new Heard();
    GenerationStream[] stream = start(router, request(prompt, 40), heard);
    await("tokens flow", () -> heard.tokens.size() >= 2);
    CompletableFuture<Void> paused = new CompletableFuture<>();
    context.runOnContext(
        v -> {
          stream[0].pause();
          paused.complete(null);
        });
    paused.get(10, TimeUnit.SECONDS);
    Thread.sleep(50);
    int held = heard.tokens.size();
    Thread.sleep(200);
    assertTrue(heard.tokens.size() <= held + 1, "paused: " + held + " -> " + heard.tokens.size());
    assertTrue(held < 40);
    context.runOnContext(v -> stream[0].resume());
    assertComplete(heard, prompt, 40);
  }

  @Test
  void aPausedStreamStopsTheWorkerInsteadOfBufferingEverything() throws Exception {
    a.flood = true;
    String prompt = promptPreferring(a, "flood");
    int total = 4_000; // 4 MiB of token text if nothing held it back
    // The listener pauses at the first tokens, on the context: a pause sent from this thread could
    // come after a stall in which the flood ran on unread.
    GenerationStream[] stream = new GenerationStream[1];
    AtomicBoolean paused = new AtomicBoolean();
    Heard heard =
        new Heard() {
          @Override
          public void onTokens(Tokens t) {
            super.onTokens(t);
            if (paused.compareAndSet(false, true)) {
              stream[0].pause();
            }
          }
        };
    CompletableFuture<Void> started = new CompletableFuture<>();
    context.runOnContext(
        v -> {
          stream[0] = router.generate(request(prompt, total), heard);
          started.complete(null);
        });
    started.join();
    await("the stream pauses at its first tokens", paused::get);
    int plateau = -1;
    for (int i = 0; i < 50; i++) {
      int before = a.emitted.get();
      Thread.sleep(100);
      if (a.emitted.get() == before) {
        plateau = before;
        break;
      }
    }
    assertTrue(plateau > 0 && plateau < total / 4, "the worker stopped at " + plateau);
    context.runOnContext(v -> stream[0].resume());
    assertComplete(heard, prompt, total);
  }

  @Test
  void withNoWorkerTheRequestFailsAtOnce() throws Exception {
    view.remove(a.id);
    view.remove(b.id);
    Heard heard = new Heard();
    start(router, request("x", 3), heard);
    GenerationException e = (GenerationException) heard.await();
    assertEquals(GenerationException.Kind.MODEL_NOT_FOUND, e.kind());
  }

  @Test
  void whenEveryWorkerIsUnreachableTheClientGetsUnavailable() throws Exception {
    a.killAndWait();
    b.killAndWait();
    Heard heard = new Heard();
    start(router, request("y", 3), heard);
    GenerationException e = (GenerationException) heard.await();
    assertEquals(GenerationException.Kind.UNAVAILABLE, e.kind());
    assertEquals(1, retried.get(), "tried the second worker once");
  }

  @Test
  void whenEveryWorkerIsFullTheClientGetsOverloaded() throws Exception {
    a.exhausted = true;
    b.exhausted = true;
    Heard heard = new Heard();
    start(router, request("z", 3), heard);
    GenerationException e = (GenerationException) heard.await();
    assertEquals(GenerationException.Kind.OVERLOADED, e.kind());
  }

  @Test
  void invalidArgumentFromAWorkerIsNotRetried() throws Exception {
    String prompt = promptPreferring(a, "bad");
    GenerateRequest req =
        request(prompt, 3).toBuilder().addResumeTokenIds(FakeWorker.tokenAt(prompt, 0) + 1).build();
    Heard heard = new Heard();
    start(router, req, heard);
    GenerationException e = (GenerationException) heard.await();
    assertEquals(GenerationException.Kind.INVALID_ARGUMENT, e.kind());
    assertEquals(1, a.requests.size() + b.requests.size());
  }

  @Test
  void theSharedSecretIsSentAndAWrongOneFailsCleanly() throws Exception {
    a.requiredSecret = "s3cret";
    b.requiredSecret = "s3cret";
    RoutingGenerator withSecret = router(RoutingGenerator.Settings.DEFAULT.withSecret("s3cret"));
    try {
      Heard ok = new Heard();
      start(withSecret, request("secret", 2), ok);
      assertComplete(ok, "secret", 2);
    } finally {
      withSecret.close();
    }
    Set<String> seen = new HashSet<>(a.secretsSeen);
    seen.addAll(b.secretsSeen);
    assertEquals(Set.of("s3cret"), seen);

    Heard refused = new Heard();
    start(router, request("nosecret", 2), refused);
    GenerationException e = (GenerationException) refused.await();
    assertEquals(GenerationException.Kind.GENERATION_FAILED, e.kind());
  }

  @Test
  void tokenizeAndModelsUseReadyWorkers() throws Exception {
    CompletableFuture<TokenizeResponse> f = new CompletableFuture<>();
    context.runOnContext(
        v ->
            router
                .tokenize(MODEL, TokenizeRequest.newBuilder().setText("ab").build())
                .onComplete(
                    (r, t) -> {
                      if (t != null) {
                        f.completeExceptionally(t);
                      } else {
                        f.complete(r);
                      }
                    }));
    assertEquals(List.of((int) 'a', (int) 'b'), f.get(10, TimeUnit.SECONDS).getIdsList());
    List<WorkerInfo> models = router.models();
    assertEquals(1, models.size());
    assertEquals(MODEL, models.getFirst().getModelId());
    assertNotNull(models.getFirst().getAddress());
  }
}
