package dev.starserve.bench;

import dev.starserve.backend.BatchLayout;
import dev.starserve.backend.KvCache;
import dev.starserve.model.GptBigCodeConfig;
import dev.starserve.model.LanguageModel;
import dev.starserve.sample.LogProbs;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Prefill and single-stream decode speed of one model on one backend, without an engine: a prompt
 * of {@code promptLen} random tokens in one forward pass, then {@code genLen} greedy decode steps
 * of one token each. Repeated {@code runs} times after {@code warmups} untimed runs; the best run
 * is reported (the machine is shared and noisy; the best run is the least disturbed).
 */
public final class ForwardBench {
  private ForwardBench() {}

  /**
   * Measured speeds. {@code weightBytes} is what one decode step reads of the weights as the
   * backend holds them ({@link LanguageModel#decodeWeightBytes}: int8 weights count their int8
   * bytes and scales).
   */
  public record Result(
      int promptLen,
      int genLen,
      double prefillTokensPerSecond,
      double decodeTokensPerSecond,
      long weightBytes,
      double decodeWeightGigabytesPerSecond) {}

  public static Result run(LanguageModel model, int promptLen, int genLen, int warmups, int runs) {
    GptBigCodeConfig cfg = model.config();
    if (promptLen < 1 || promptLen + genLen > cfg.nPositions()) {
      throw new IllegalArgumentException(
          "prompt length "
              + promptLen
              + " + generated "
              + genLen
              + " must be in [1, n_positions = "
              + cfg.nPositions()
              + "]");
    }
    int blockSize = 16;
    int blocks = (promptLen + genLen + blockSize - 1) / blockSize;
    int[] table = new int[blocks];
    Arrays.setAll(table, i -> i);
    KvCache cache = model.newKvCache(blocks, blockSize);
    int[] prompt = new int[promptLen];
    SplittableRandom rnd = new SplittableRandom(1);
    for (int i = 0; i < promptLen; i++) {
      prompt[i] = rnd.nextInt(cfg.vocabSize());
    }
    float[] logits = new float[cfg.vocabSize()];
    double bestPrefill = Double.MAX_VALUE;
    double bestDecode = Double.MAX_VALUE;
    for (int run = 0; run < warmups + runs; run++) {
      long t0 = System.nanoTime();
      model.forward(
          BatchLayout.singleSequence(prompt, 0, table, blockSize),
          new int[] {promptLen - 1},
          cache,
          logits);
      long t1 = System.nanoTime();
      int[] one = new int[1];
      int[] row = {0};
      for (int i = 0; i < genLen; i++) {
        one[0] = LogProbs.argmax(logits, 0, logits.length);
        model.forward(
            BatchLayout.singleSequence(one, promptLen + i, table, blockSize), row, cache, logits);
      }
      long t2 = System.nanoTime();
      if (run >= warmups) {
        bestPrefill = Math.min(bestPrefill, (t1 - t0) / 1e9);
        bestDecode = Math.min(bestDecode, (t2 - t1) / 1e9);
      }
    }
    long bytes = model.decodeWeightBytes();
    double decodeTps = genLen / bestDecode;
    return new Result(
        promptLen, genLen, promptLen / bestPrefill, decodeTps, bytes, bytes * decodeTps / 1e9);
  }
}
