package dev.starserve.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.starserve.engine.Engine;
import dev.starserve.engine.EngineConfig;
import dev.starserve.engine.EngineRequest;
import dev.starserve.engine.FinishEvent;
import dev.starserve.engine.RequestSink;
import dev.starserve.engine.TokenEvent;
import dev.starserve.prompt.PromptResolver;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

/**
 * {@code generate --requests FILE}: every valid line is submitted at once into one engine; one JSON
 * result per line is printed in input order, an {@code {"error": ...}} object for a bad line.
 */
final class RequestFileRunner {
  private RequestFileRunner() {}

  /** Collects one request's events from the engine thread. */
  private static final class Collector implements RequestSink {
    final List<List<TokenEvent>> tokens = new ArrayList<>();
    final FinishEvent[] finishes;
    final CountDownLatch done;

    Collector(int n) {
      for (int i = 0; i < n; i++) {
        tokens.add(new ArrayList<>());
      }
      finishes = new FinishEvent[n];
      done = new CountDownLatch(n);
    }

    @Override
    public synchronized void onToken(TokenEvent e) {
      tokens.get(e.sampleIndex()).add(e);
    }

    @Override
    public synchronized void onFinish(FinishEvent e) {
      finishes[e.sampleIndex()] = e;
      done.countDown();
    }
  }

  static int run(LoadedModel lm, EngineConfig config, Path file, PrintStream out)
      throws IOException {
    List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
    PromptResolver resolver = new PromptResolver(lm.tokenizer());
    Object[] results = new Object[lines.size()];
    Collector[] collectors = new Collector[lines.size()];
    int failures = 0;
    long seedBase = System.nanoTime();
    try (Engine engine = new Engine(lm.model(), lm.tokenizer(), lm.dir().eosTokenIds(), config)) {
      for (int i = 0; i < lines.size(); i++) {
        String line = lines.get(i);
        if (line.isBlank()) {
          continue;
        }
        try {
          JsonNode j;
          try {
            j = Json.MAPPER.readTree(line);
          } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalArgumentException("not valid JSON: " + e.getOriginalMessage());
          }
          EngineRequest r = RequestLine.parse("line-" + (i + 1), j, resolver, seedBase + i);
          Collector c = new Collector(r.n());
          engine.submit(r, c);
          collectors[i] = c;
        } catch (IllegalArgumentException e) {
          results[i] = Map.of("error", "line " + (i + 1) + ": " + e.getMessage());
          failures++;
        }
      }
      for (int i = 0; i < lines.size(); i++) {
        if (collectors[i] != null) {
          try {
            collectors[i].done.await();
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return 130;
          }
          synchronized (collectors[i]) {
            results[i] = RequestLine.result(collectors[i].finishes, collectors[i].tokens);
          }
        }
      }
    }
    for (Object r : results) {
      if (r != null) {
        out.println(Json.write(r));
      }
    }
    return failures == 0 ? 0 : 1;
  }
}
