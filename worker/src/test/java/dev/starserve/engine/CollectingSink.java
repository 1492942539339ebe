package dev.starserve.engine;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/** Collects a request's events; {@link #await} returns when every sample has finished. */
class CollectingSink implements RequestSink {
  final List<List<TokenEvent>> tokens = new ArrayList<>();
  final FinishEvent[] finishes;
  private final CompletableFuture<Void> done = new CompletableFuture<>();
  private int remaining;

  CollectingSink(int n) {
    for (int i = 0; i < n; i++) {
      tokens.add(new ArrayList<>());
    }
    finishes = new FinishEvent[n];
    remaining = n;
  }

  @Override
  public synchronized void onToken(TokenEvent e) {
    if (finishes[e.sampleIndex()] != null) {
      done.completeExceptionally(new AssertionError("token after finish: " + e));
    }
    tokens.get(e.sampleIndex()).add(e);
  }

  @Override
  public synchronized void onFinish(FinishEvent e) {
    if (finishes[e.sampleIndex()] != null) {
      done.completeExceptionally(new AssertionError("second finish: " + e));
      return;
    }
    finishes[e.sampleIndex()] = e;
    if (--remaining == 0) {
      done.complete(null);
    }
  }

  CollectingSink await() {
    try {
      done.get(120, TimeUnit.SECONDS);
    } catch (Exception e) {
      throw new AssertionError("request did not finish", e);
    }
    return this;
  }

  synchronized int[] ids(int sample) {
    return tokens.get(sample).stream().mapToInt(TokenEvent::tokenId).toArray();
  }

  synchronized double[] logprobs(int sample) {
    return tokens.get(sample).stream().mapToDouble(TokenEvent::logprob).toArray();
  }

  synchronized String text(int sample) {
    StringBuilder sb = new StringBuilder();
    for (TokenEvent e : tokens.get(sample)) {
      sb.append(e.text());
    }
    if (finishes[sample] != null) {
      sb.append(finishes[sample].trailingText());
    }
    return sb.toString();
  }

  synchronized FinishEvent finish(int sample) {
    return finishes[sample];
  }
}
