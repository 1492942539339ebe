package dev.starserve.model;

import dev.starserve.checkpoint.Checkpoint;
import dev.starserve.checkpoint.DType;
import dev.starserve.checkpoint.SafetensorsWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Writes a model whose greedy choice is always one given token, whatever the input, so that an
 * engine test can make a model produce {@code <|end|>} or EOS on purpose.
 *
 * <p>How: {@code ln_f.weight} is 0, so the final LayerNorm outputs its bias {@code b} at every
 * position; {@code b} is ±1 in turn, and the token's embedding row is {@code b} too. Its logit is
 * then {@code b·b = n_embd} (64 for the tiny shape), while any other token's is {@code b·w} for a
 * random row {@code w} of std 0.1, about N(0, 0.8²): the token wins by a wide margin. Everything
 * else is the usual random model.
 */
public final class ForcedTokenModelWriter {
  private ForcedTokenModelWriter() {}

  public static void write(Path dir, GptBigCodeConfig cfg, int token) throws IOException {
    if (token < 0 || token >= cfg.vocabSize()) {
      throw new IllegalArgumentException("token " + token + " outside the vocabulary");
    }
    long seed = 23;
    double std = 0.1;
    RandomModelWriter.write(dir, cfg, DType.F32, seed, std, 1);
    int e = cfg.nEmbd();
    List<SafetensorsWriter.Entry> entries = new ArrayList<>();
    for (Map.Entry<String, long[]> t : GptBigCodeWeights.tensorShapes(cfg).entrySet()) {
      String name = GptBigCodeWeights.PREFIX + t.getKey();
      SafetensorsWriter.Filler random = RandomModelWriter.filler(name, seed, std);
      SafetensorsWriter.Filler filler =
          switch (t.getKey()) {
            case "ln_f.weight" -> (start, dst, count) -> java.util.Arrays.fill(dst, 0, count, 0f);
            case "ln_f.bias" -> (start, dst, count) -> fillB(start, dst, count);
            case "wte.weight" ->
                (start, dst, count) -> {
                  random.fill(start, dst, count);
                  long row = (long) token * e;
                  for (int i = 0; i < count; i++) {
                    long at = start + i;
                    if (at >= row && at < row + e) {
                      dst[i] = b(at - row);
                    }
                  }
                };
            default -> random;
          };
      entries.add(new SafetensorsWriter.Entry(name, DType.F32, t.getValue(), filler));
    }
    Path weights = dir.resolve(Checkpoint.SINGLE_FILE);
    Files.delete(weights);
    SafetensorsWriter.write(weights, entries, Map.of("format", "pt"), 1);
  }

  private static float b(long i) {
    return i % 2 == 0 ? 1f : -1f;
  }

  private static void fillB(long start, float[] dst, int count) {
    for (int i = 0; i < count; i++) {
      dst[i] = b(start + i);
    }
  }
}
