package dev.starserve.generate;

import dev.starserve.backend.BatchLayout;
import dev.starserve.backend.KvCache;
import dev.starserve.model.LanguageModel;
import dev.starserve.sample.LogProbs;
import java.util.List;

/**
 * How closely a candidate model (say, the same checkpoint with int8 weights) follows a baseline,
 * teacher-forced so that one early divergence does not make every later position differ:
 *
 * <pre>
 * per prompt:  t_1..t_N = the baseline's greedy continuation (prefill, then N decode steps)
 *              both models read prompt + t_1..t_{N-1} in one forward pass; at each of the N
 *              positions that predict t_1..t_N compare
 *                greedy agreement:  argmax(candidate) == argmax(baseline)
 *                |Δ logprob|:       |log p_base(t_i) − log p_cand(t_i)|  (the chosen token)
 *                                   and the largest over the whole vocabulary
 * </pre>
 *
 * A logprob error of δ can only flip positions whose baseline top-two margin is below 2δ, so the
 * agreement is also reported over the positions with a margin of at least {@value
 * #CONFIDENT_MARGIN} nats: with flat random-weight logits most positions have tiny margins.
 */
public final class TeacherForcedComparison {
  /** The baseline top-two logprob margin (nats) above which a position counts as confident. */
  public static final double CONFIDENT_MARGIN = 0.1;

  private static final int BLOCK_SIZE = 16;

  private TeacherForcedComparison() {}

  /**
   * What was measured over every compared position.
   *
   * @param positions compared positions (prompts × new tokens)
   * @param greedyMatches positions whose greedy tokens are equal
   * @param confidentPositions positions whose baseline top-two margin is ≥ {@link
   *     #CONFIDENT_MARGIN}
   * @param confidentMatches those of them whose greedy tokens are equal
   * @param maxChosenLogprobDiff max |Δ logprob| of the baseline's greedy token
   * @param meanChosenLogprobDiff mean |Δ logprob| of the baseline's greedy token
   * @param maxLogprobDiff max |Δ logprob| over the whole vocabulary
   */
  public record Result(
      int prompts,
      int positions,
      int greedyMatches,
      int confidentPositions,
      int confidentMatches,
      double maxChosenLogprobDiff,
      double meanChosenLogprobDiff,
      double maxLogprobDiff) {

    /** Fraction of positions with the same greedy token. */
    public double greedyAgreement() {
      return (double) greedyMatches / positions;
    }

    /** The same over the confident positions (NaN when there are none). */
    public double confidentAgreement() {
      return (double) confidentMatches / confidentPositions;
    }
  }

  /**
   * Compares {@code candidate} against {@code baseline} over {@code prompts}, {@code newTokens}
   * positions each. Both models must share the vocabulary; each prompt plus {@code newTokens} must
   * fit the context.
   */
  public static Result compare(
      LanguageModel baseline, LanguageModel candidate, List<int[]> prompts, int newTokens) {
    int vocab = baseline.config().vocabSize();
    if (candidate.config().vocabSize() != vocab) {
      throw new IllegalArgumentException("the models have different vocabularies");
    }
    if (newTokens < 1 || prompts.isEmpty()) {
      throw new IllegalArgumentException(
          "need at least one prompt and one new token, got "
              + prompts.size()
              + " prompts and "
              + newTokens
              + " new tokens");
    }
    int positions = 0;
    int matches = 0;
    int confident = 0;
    int confidentMatches = 0;
    double maxChosen = 0;
    double sumChosen = 0;
    double maxAll = 0;
    for (int[] prompt : prompts) {
      int p = prompt.length;
      if (p < 1 || p + newTokens > baseline.config().nPositions()) {
        throw new IllegalArgumentException(
            "a prompt of "
                + p
                + " tokens plus "
                + newTokens
                + " new tokens must fit n_positions = "
                + baseline.config().nPositions());
      }
      int[] seq = new int[p + newTokens - 1];
      System.arraycopy(prompt, 0, seq, 0, p);
      int[] teacher = greedyContinuation(baseline, prompt, newTokens);
      System.arraycopy(teacher, 0, seq, p, newTokens - 1);
      int[] rows = new int[newTokens];
      for (int i = 0; i < newTokens; i++) {
        rows[i] = p - 1 + i;
      }
      float[] base = forwardAll(baseline, seq, rows);
      float[] cand = forwardAll(candidate, seq, rows);
      for (int i = 0; i < newTokens; i++) {
        int off = i * vocab;
        double lseB = LogProbs.logSumExp(base, off, vocab);
        double lseC = LogProbs.logSumExp(cand, off, vocab);
        int b = LogProbs.argmax(base, off, vocab);
        int c = LogProbs.argmax(cand, off, vocab);
        double second = Double.NEGATIVE_INFINITY;
        for (int v = 0; v < vocab; v++) {
          double d = Math.abs((base[off + v] - lseB) - (cand[off + v] - lseC));
          maxAll = Math.max(maxAll, d);
          if (v != b) {
            second = Math.max(second, base[off + v]);
          }
        }
        int t = teacher[i];
        double chosen = Math.abs((base[off + t] - lseB) - (cand[off + t] - lseC));
        maxChosen = Math.max(maxChosen, chosen);
        sumChosen += chosen;
        positions++;
        matches += b == c ? 1 : 0;
        if (base[off + b] - second >= CONFIDENT_MARGIN) {
          confident++;
          confidentMatches += b == c ? 1 : 0;
        }
      }
    }
    return new Result(
        prompts.size(),
        positions,
        matches,
        confident,
        confidentMatches,
        maxChosen,
        sumChosen / positions,
        maxAll);
  }

  /** The baseline's greedy tokens after {@code prompt}: one prefill, then one token per step. */
  private static int[] greedyContinuation(LanguageModel model, int[] prompt, int n) {
    int vocab = model.config().vocabSize();
    int[] table = blockTable(prompt.length + n);
    KvCache cache = model.newKvCache(table.length, BLOCK_SIZE);
    float[] logits =
        model.forward(
            BatchLayout.singleSequence(prompt, 0, table, BLOCK_SIZE),
            new int[] {prompt.length - 1},
            cache);
    int[] out = new int[n];
    int[] one = new int[1];
    int[] row = {0};
    for (int i = 0; i < n; i++) {
      out[i] = LogProbs.argmax(logits, 0, vocab);
      if (i + 1 < n) {
        one[0] = out[i];
        model.forward(
            BatchLayout.singleSequence(one, prompt.length + i, table, BLOCK_SIZE),
            row,
            cache,
            logits);
      }
    }
    return out;
  }

  private static float[] forwardAll(LanguageModel model, int[] seq, int[] rows) {
    int[] table = blockTable(seq.length);
    KvCache cache = model.newKvCache(table.length, BLOCK_SIZE);
    return model.forward(BatchLayout.singleSequence(seq, 0, table, BLOCK_SIZE), rows, cache);
  }

  private static int[] blockTable(int tokens) {
    int[] table = new int[(tokens + BLOCK_SIZE - 1) / BLOCK_SIZE];
    for (int i = 0; i < table.length; i++) {
      table[i] = i;
    }
    return table;
  }
}
