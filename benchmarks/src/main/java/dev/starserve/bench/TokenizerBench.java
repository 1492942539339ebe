package dev.starserve.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.starserve.text.Tokenizer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Encode speed of the StarCoder tokenizer (a main, not a test: timings are not assertions).
 *
 * <ul>
 *   <li>throughput: all conformance texts joined, encoded repeatedly after warm-up (MB/s of UTF-8
 *       input, word cache warm);
 *   <li>an ~8192-token source-code prompt (the code windows of the conformance file, joined): ms
 *       per encode with a warm word cache and with an empty one (a freshly loaded tokenizer, JIT
 *       warm), the latter being the worst case for a prompt never seen before;
 *   <li>decode and incremental detokenization of that prompt's ids.
 * </ul>
 *
 * <p>Usage: {@code TokenizerBench [conformance.jsonl] [tokenizer.json]}, run from the repository
 * root; see benchmarks/README.md.
 */
public final class TokenizerBench {
  private static final int PROMPT_TOKENS = 8192;

  private TokenizerBench() {}

  public static void main(String[] args) throws IOException {
    Path conformance =
        Path.of(args.length > 0 ? args[0] : "worker/src/test/resources/conformance.jsonl");
    Path tokenizerJson =
        Path.of(
            args.length > 1
                ? args[1]
                : "worker/src/main/resources/starcoder-tokenizer/tokenizer.json");
    List<String> texts = readTexts(conformance);

    long t0 = System.nanoTime();
    Tokenizer tok = Tokenizer.load(tokenizerJson, null);
    System.out.printf(
        "load tokenizer.json: %.0f ms (first load, cold JVM)%n", ms(System.nanoTime() - t0));

    String all = String.join("\n", texts);
    double mb = all.getBytes(StandardCharsets.UTF_8).length / 1e6;
    int allTokens = tok.encode(all).length;
    System.out.printf(
        "corpus: %d texts, %.2f MB UTF-8, %d tokens (%.2f bytes/token)%n",
        texts.size(), mb, allTokens, mb * 1e6 / allTokens);

    for (int i = 0; i < 20; i++) {
      tok.encode(all); // warm-up: JIT and word cache
    }
    int reps = 0;
    long start = System.nanoTime();
    long elapsed;
    do {
      tok.encode(all);
      reps++;
      elapsed = System.nanoTime() - start;
    } while (elapsed < 5_000_000_000L);
    System.out.printf(
        "encode throughput (warm cache): %.1f MB/s (%d runs, %.1f ms per run)%n",
        mb * reps / (elapsed / 1e9), reps, ms(elapsed) / reps);

    String prompt = codePrompt(tok, texts);
    int[] promptIds = tok.encode(prompt);
    System.out.printf(
        "prompt: %d chars of source code, %d tokens%n", prompt.length(), promptIds.length);

    double[] warm = new double[200];
    for (int i = 0; i < warm.length; i++) {
      long s = System.nanoTime();
      tok.encode(prompt);
      warm[i] = ms(System.nanoTime() - s);
    }
    report("encode prompt, warm word cache", warm);

    double[] cold = new double[8];
    for (int i = 0; i < cold.length; i++) {
      Tokenizer fresh = Tokenizer.load(tokenizerJson, null);
      long s = System.nanoTime();
      int n = fresh.encode(prompt).length;
      cold[i] = ms(System.nanoTime() - s);
      if (n != promptIds.length) {
        throw new IllegalStateException("fresh tokenizer gave " + n + " tokens");
      }
    }
    report("encode prompt, empty word cache", cold);

    double[] dec = new double[200];
    for (int i = 0; i < dec.length; i++) {
      long s = System.nanoTime();
      tok.decode(promptIds, false);
      dec[i] = ms(System.nanoTime() - s);
    }
    report("decode prompt", dec);

    double[] stream = new double[200];
    for (int i = 0; i < stream.length; i++) {
      long s = System.nanoTime();
      var d = tok.newDetokenizer(false);
      for (int id : promptIds) {
        d.push(id);
      }
      d.flush();
      stream[i] = ms(System.nanoTime() - s);
    }
    report("incremental detokenize prompt (all ids)", stream);
  }

  private static List<String> readTexts(Path jsonl) throws IOException {
    ObjectMapper json = new ObjectMapper();
    List<String> texts = new ArrayList<>();
    for (String line : Files.readAllLines(jsonl, StandardCharsets.UTF_8)) {
      texts.add(json.readTree(line).get("text").asText());
    }
    return texts;
  }

  /** Code windows (multi-line texts) joined until the prompt reaches about 8192 tokens. */
  private static String codePrompt(Tokenizer tok, List<String> texts) {
    StringBuilder sb = new StringBuilder();
    int tokens = 0;
    for (String t : texts) {
      if (t.indexOf('\n') < 0 || t.length() < 200) {
        continue;
      }
      int n = tok.encode(t).length;
      if (tokens + n > PROMPT_TOKENS) {
        // cut the last window by characters to land close to the target
        int keep = (int) ((long) t.length() * (PROMPT_TOKENS - tokens) / n);
        sb.append(t, 0, keep);
        break;
      }
      sb.append(t);
      tokens += n;
    }
    return sb.toString();
  }

  private static void report(String what, double[] ms) {
    double[] sorted = ms.clone();
    Arrays.sort(sorted);
    System.out.printf(
        "%s: median %.2f ms, min %.2f ms, max %.2f ms (%d runs)%n",
        what, sorted[sorted.length / 2], sorted[0], sorted[sorted.length - 1], sorted.length);
  }

  private static double ms(long nanos) {
    return nanos / 1e6;
  }
}
