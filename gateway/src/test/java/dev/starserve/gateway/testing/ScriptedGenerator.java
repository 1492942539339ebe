package dev.starserve.gateway.testing;

import dev.starserve.gateway.generate.GenerationException;
import dev.starserve.gateway.generate.GenerationListener;
import dev.starserve.gateway.generate.GenerationStream;
import dev.starserve.gateway.generate.Generator;
import dev.starserve.proto.worker.v1.FinishReason;
import dev.starserve.proto.worker.v1.Finished;
import dev.starserve.proto.worker.v1.GenerateRequest;
import dev.starserve.proto.worker.v1.PromptToken;
import dev.starserve.proto.worker.v1.Started;
import dev.starserve.proto.worker.v1.Token;
import dev.starserve.proto.worker.v1.TokenizeRequest;
import dev.starserve.proto.worker.v1.TokenizeResponse;
import dev.starserve.proto.worker.v1.Tokens;
import dev.starserve.proto.worker.v1.TopToken;
import dev.starserve.proto.worker.v1.WorkerInfo;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A fake {@link Generator} with a fixed script, so tests can compute every expected answer.
 *
 * <p>Sequence: generated token i has id {@code 100 + i}, token text {@code " w<i>"}, logprob {@code
 * -0.5}; alternatives j (top_logprobs) have ids {@code 100 + i + j} (so the chosen token is rank
 * 1), texts {@code " a<j>"}, logprob {@code -0.5 - j}. After {@link #eosAfter} tokens comes EOS (id
 * 0, text ""), unless max_new_tokens comes first (LENGTH). The last token's text is held back
 * (empty) and released as {@code Finished.trailing_text}, as a real worker may do. Prompt tokens:
 * one per character of a text prompt (id = the char), logprob {@code -1} except the first. Events
 * are delivered asynchronously on the caller's context, one token per {@link #tokenDelayMs}.
 */
public final class ScriptedGenerator implements Generator {
  public static final String MODEL = "tiny-starcoder";
  public static final int EOS = 0;

  public volatile int eosAfter = 5;
  public volatile long tokenDelayMs = 1;
  public volatile GenerationException failWith;

  /** When >= 0, the sequence fails (GENERATION_FAILED) after this many tokens. */
  public volatile int failAfterTokens = -1;

  /** Appended to every token's text (makes events large, to fill socket buffers quickly). */
  public volatile String tokenPadding = "";

  public volatile List<WorkerInfo> models =
      List.of(
          WorkerInfo.newBuilder()
              .setModelId(MODEL)
              .setMaxContext(8192)
              .setVocabSize(49152)
              .setEosTokenId(EOS)
              .setSupportsFim(true)
              .setChatFormat("starchat")
              .build());

  public final List<GenerateRequest> requests = new CopyOnWriteArrayList<>();

  /** The gRPC deadline current at each {@link #generate} call (empty when there was none). */
  public final List<java.util.Optional<io.grpc.Deadline>> deadlines = new CopyOnWriteArrayList<>();

  public final AtomicInteger cancels = new AtomicInteger();
  public final AtomicInteger pauses = new AtomicInteger();
  public final AtomicInteger finished = new AtomicInteger();
  private final Vertx vertx;

  public ScriptedGenerator(Vertx vertx) {
    this.vertx = vertx;
  }

  public static String tokenText(int i) {
    return " w" + i;
  }

  /** The text a sequence with this budget produces. */
  public String expectedText(int maxNewTokens) {
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < Math.min(maxNewTokens, eosAfter); i++) {
      sb.append(tokenText(i));
    }
    return sb.toString();
  }

  @Override
  public GenerationStream generate(GenerateRequest request, GenerationListener listener) {
    requests.add(request);
    deadlines.add(java.util.Optional.ofNullable(io.grpc.Context.current().getDeadline()));
    Context context = Vertx.currentContext();
    if (context == null) {
      throw new IllegalStateException("generate must be called on a Vert.x context");
    }
    Run run = new Run(request, listener, context);
    context.runOnContext(v -> run.start());
    return run;
  }

  @Override
  public Future<TokenizeResponse> tokenize(String modelId, TokenizeRequest request) {
    TokenizeResponse.Builder b = TokenizeResponse.newBuilder();
    String text = request.getText();
    // one token per space-separated word (with its leading space), offsets in chars
    int start = 0;
    for (int i = 1; i <= text.length(); i++) {
      if (i == text.length() || text.charAt(i) == ' ') {
        b.addIds(1000 + start);
        if (request.getReturnTokens()) {
          b.addTokens(text.substring(start, i));
        }
        if (request.getReturnOffsets()) {
          b.addOffsets(TokenizeResponse.Offset.newBuilder().setStart(start).setEnd(i));
        }
        start = i;
      }
    }
    return Future.succeededFuture(b.build());
  }

  @Override
  public List<WorkerInfo> models() {
    return models;
  }

  private final class Run implements GenerationStream {
    private final GenerateRequest request;
    private final GenerationListener listener;
    private final Context context;
    private boolean cancelled;
    private boolean paused;
    private boolean waiting;
    private int next;
    private boolean done;

    Run(GenerateRequest request, GenerationListener listener, Context context) {
      this.request = request;
      this.listener = listener;
      this.context = context;
    }

    void start() {
      if (cancelled) {
        return;
      }
      if (failWith != null) {
        done = true;
        listener.onError(failWith);
        return;
      }
      Started.Builder s =
          Started.newBuilder()
              .setInputTokenCount(promptLength())
              .setSeed(request.getSampling().hasSeed() ? request.getSampling().getSeed() : 42);
      if (request.getReturnPromptTokens() || request.getPromptLogprobs()) {
        String text = request.getPrompt().getText();
        for (int i = 0; i < text.length(); i++) {
          PromptToken.Builder pt =
              PromptToken.newBuilder().setId(text.charAt(i)).setText(text.substring(i, i + 1));
          if (request.getPromptLogprobs() && i > 0) {
            pt.setLogprob(-1f);
          }
          s.addPromptTokens(pt);
        }
      }
      listener.onStarted(s.build());
      schedule();
    }

    private int promptLength() {
      return switch (request.getPrompt().getKindCase()) {
        case TEXT -> request.getPrompt().getText().length();
        case TOKEN_IDS -> request.getPrompt().getTokenIds().getIdsCount();
        default -> 7;
      };
    }

    private void schedule() {
      if (cancelled || done) {
        return;
      }
      if (paused) {
        waiting = true;
        return;
      }
      vertx.setTimer(Math.max(1, tokenDelayMs), t -> context.runOnContext(v -> step()));
    }

    private void step() {
      if (cancelled || done) {
        return;
      }
      if (paused) {
        waiting = true;
        return;
      }
      int max = request.getStopping().getMaxNewTokens();
      int i = next++;
      if (i == failAfterTokens) {
        done = true;
        listener.onError(
            new GenerationException(GenerationException.Kind.GENERATION_FAILED, "worker lost"));
        return;
      }
      boolean eos = i == eosAfter;
      boolean last = eos || i + 1 == max;
      String tokenText = eos ? "" : tokenText(i) + tokenPadding;
      Token.Builder t =
          Token.newBuilder()
              .setIndex(i)
              .setId(eos ? EOS : 100 + i)
              .setTokenText(tokenText)
              .setText(last ? "" : tokenText)
              .setLogprob(-0.5f);
      for (int j = 0; j < request.getTopLogprobs(); j++) {
        t.addTopTokens(
            TopToken.newBuilder()
                .setId(j == 0 ? t.getId() : 100 + i + j)
                .setText(j == 0 ? tokenText : " a" + j)
                .setLogprob(-0.5f - j));
      }
      listener.onTokens(Tokens.newBuilder().addTokens(t).build());
      if (last) {
        done = true;
        finished.incrementAndGet();
        listener.onFinished(
            Finished.newBuilder()
                .setReason(eos ? FinishReason.EOS_TOKEN : FinishReason.LENGTH)
                .setTrailingText(tokenText)
                .setInputTokenCount(promptLength())
                .setGeneratedTokenCount(i + 1)
                .build());
      } else {
        schedule();
      }
    }

    @Override
    public void cancel() {
      context.runOnContext(
          v -> {
            if (!cancelled && !done) {
              cancels.incrementAndGet();
            }
            cancelled = true;
          });
    }

    @Override
    public void pause() {
      context.runOnContext(
          v -> {
            if (!paused) {
              pauses.incrementAndGet();
            }
            paused = true;
          });
    }

    @Override
    public void resume() {
      context.runOnContext(
          v -> {
            paused = false;
            if (waiting) {
              waiting = false;
              schedule();
            }
          });
    }
  }
}
