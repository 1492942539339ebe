package dev.starserve.bench.jmh;

import dev.starserve.model.ModelShape;
import dev.starserve.sample.Sampler;
import dev.starserve.sample.SamplingParams;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * Choosing one token from 49152 logits with {@link Sampler#sample}, as the engine does once per
 * sequence per step, on the calling thread. The score is tokens chosen per second; its inverse is
 * what sampling adds to every sequence's step.
 *
 * <pre>
 * greedy          temperature 0: argmax
 * top_k           temperature 0.7, top_k 50
 * top_p           temperature 0.7, top_p 0.9
 * top_k_top_p     temperature 0.7, top_k 50, top_p 0.9
 * </pre>
 *
 * <p>The logits are {@code N(0, logitStd²)} (16 different rows used in turn, so no single row's
 * branches are learnt). How peaked they are decides how many tokens top-p has to rank: at
 * temperature 0.7, 90% of the mass lies in about 3000 tokens with {@code logitStd=2} (a flat,
 * unsure distribution) and in a few to a few tens with {@code logitStd=4} (a confident one).
 */
@State(Scope.Benchmark)
public class SamplerBench extends KernelBench {
  private static final int VOCAB = ModelShape.TINY_STARCODER_PY.config().vocabSize();
  private static final int ROWS = 16;

  @Param({"greedy", "top_k", "top_p", "top_k_top_p"})
  public String mode;

  /** Standard deviation of the random logits. */
  @Param({"2.0", "4.0"})
  public float logitStd;

  // Package-private: JmhBenchmarksTest checks the greedy choice.
  private Sampler sampler;
  float[][] logits; // [ROWS][vocab]
  int row; // the row the next call uses

  @Setup(Level.Trial)
  public void setUp() {
    SamplingParams p =
        switch (mode) {
          case "greedy" -> SamplingParams.greedy();
          case "top_k" -> new SamplingParams(0.7, 50, 1, 1, 0, 1, 0, 0, 42);
          case "top_p" -> new SamplingParams(0.7, 0, 0.9, 1, 0, 1, 0, 0, 42);
          case "top_k_top_p" -> new SamplingParams(0.7, 50, 0.9, 1, 0, 1, 0, 0, 42);
          default ->
              throw new IllegalArgumentException(
                  "mode must be one of greedy, top_k, top_p, top_k_top_p, got '" + mode + "'");
        };
    sampler = new Sampler(p, VOCAB);
    logits = new float[ROWS][VOCAB];
    for (int r = 0; r < ROWS; r++) {
      RandomData.fill(logits[r], 100 + r, logitStd);
    }
  }

  @Benchmark
  public int sample() {
    float[] l = logits[row];
    row = row + 1 == ROWS ? 0 : row + 1;
    return sampler.sample(l, 0);
  }
}
