package dev.starserve.worker.api;

import dev.starserve.backend.KvDType;
import dev.starserve.backend.cpu.CpuBackend;
import dev.starserve.checkpoint.DType;
import dev.starserve.engine.Engine;
import dev.starserve.engine.EngineConfig;
import dev.starserve.engine.sched.SchedulerConfig;
import dev.starserve.model.GptBigCodeConfig;
import dev.starserve.model.GptBigCodeModel;
import dev.starserve.model.ModelDirectory;
import dev.starserve.model.ModelShape;
import dev.starserve.model.RandomModelWriter;
import dev.starserve.proto.worker.v1.GenerateEvent;
import dev.starserve.proto.worker.v1.GenerateRequest;
import dev.starserve.proto.worker.v1.Prompt;
import dev.starserve.proto.worker.v1.Stopping;
import dev.starserve.proto.worker.v1.TokenIds;
import dev.starserve.proto.worker.v1.WorkerServiceGrpc;
import dev.starserve.text.Tokenizer;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.stub.MetadataUtils;
import io.vertx.core.Vertx;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/** A tiny random-weight model (real StarCoder tokenizer), engines over it and servers for them. */
final class WorkerFixture implements AutoCloseable {
  final ModelDirectory dir;
  final GptBigCodeModel model;
  final Tokenizer tokenizer;
  final Vertx vertx = Vertx.vertx();
  private final List<AutoCloseable> open = new ArrayList<>();

  WorkerFixture(Path tmp) {
    Path p = tmp.resolve("tiny");
    try {
      GptBigCodeConfig t = ModelShape.TINY.config();
      // Wider than the tiny shape and with 2048 positions, so that a long request runs for a
      // second or more: long enough to be cancelled, drained or timed out mid-stream.
      GptBigCodeConfig cfg =
          new GptBigCodeConfig(
              256,
              4,
              4,
              1024,
              2048,
              t.vocabSize(),
              true,
              t.layerNormEpsilon(),
              t.activation(),
              t.scaleAttnWeights(),
              0,
              0);
      RandomModelWriter.write(p, cfg, DType.F32, 17, 0.1, 1);
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
    dir = ModelDirectory.open(p);
    model = new GptBigCodeModel(dir.config(), dir.weights(), new CpuBackend(2));
    tokenizer = Tokenizer.load(dir.tokenizerJson(), dir.tokenizerConfigJson());
  }

  Engine engine(int maxSeqs) {
    Engine e =
        new Engine(
            model,
            tokenizer,
            dir.eosTokenIds(),
            new EngineConfig(16, 256, KvDType.FP32, new SchedulerConfig(maxSeqs, 64), true));
    open.add(e);
    return e;
  }

  /** A started server on a free loopback port. */
  WorkerServer server(Engine engine, WorkerOptions options) {
    WorkerServer s = unreadyServer(engine, options);
    s.markReady();
    return s;
  }

  /** A started server that has not been marked ready (its Health answers NOT_SERVING). */
  WorkerServer unreadyServer(Engine engine, WorkerOptions options) {
    WorkerServer s = new WorkerServer(vertx, engine, options);
    await(s.start().toCompletionStage().toCompletableFuture());
    open.add(() -> await(s.close().toCompletionStage().toCompletableFuture()));
    return s;
  }

  static WorkerOptions options() {
    return WorkerOptions.of("w1", "tiny", "127.0.0.1", 0);
  }

  ManagedChannel channel(WorkerServer s) {
    ManagedChannel c =
        Grpc.newChannelBuilderForAddress("127.0.0.1", s.port(), InsecureChannelCredentials.create())
            .build();
    open.add(
        () -> {
          c.shutdownNow();
          c.awaitTermination(5, TimeUnit.SECONDS);
        });
    return c;
  }

  static WorkerServiceGrpc.WorkerServiceBlockingStub withSecret(
      WorkerServiceGrpc.WorkerServiceBlockingStub stub, String secret) {
    Metadata m = new Metadata();
    m.put(SecretInterceptor.HEADER, secret);
    return stub.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(m));
  }

  static GenerateRequest.Builder greedy(String id, int[] prompt, int maxNew) {
    TokenIds.Builder ids = TokenIds.newBuilder();
    for (int t : prompt) {
      ids.addIds(t);
    }
    return GenerateRequest.newBuilder()
        .setRequestId(id)
        .setPrompt(Prompt.newBuilder().setTokenIds(ids))
        .setStopping(Stopping.newBuilder().setMaxNewTokens(maxNew).setIgnoreEos(true));
  }

  static List<GenerateEvent> all(Iterator<GenerateEvent> it) {
    List<GenerateEvent> out = new ArrayList<>();
    it.forEachRemaining(out::add);
    return out;
  }

  static <T> T await(java.util.concurrent.Future<T> f) {
    try {
      return f.get(60, TimeUnit.SECONDS);
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }

  static void eventually(String what, BooleanSupplier cond) {
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (!cond.getAsBoolean()) {
      if (System.nanoTime() > end) {
        throw new AssertionError("timed out waiting until " + what);
      }
      try {
        Thread.sleep(10);
      } catch (InterruptedException e) {
        throw new AssertionError(e);
      }
    }
  }

  /**
   * Closes the servers, channels and engines made so far, newest first. NOTE: engines share the
   * model, whose forward pass is not safe to run from two engine threads at once, so a test must
   * not leave one running into the next.
   */
  void closeOpened() {
    for (int i = open.size() - 1; i >= 0; i--) {
      try {
        open.get(i).close();
      } catch (Exception e) {
        throw new AssertionError(e);
      }
    }
    open.clear();
  }

  @Override
  public void close() {
    closeOpened();
    await(vertx.close().toCompletionStage().toCompletableFuture());
    model.close();
    dir.close();
  }
}
