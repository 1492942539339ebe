package dev.starserve.bench.serve;

import java.util.List;
import java.util.SplittableRandom;

/**
 * Synthetic prompts of random English and programming words. The client has no tokenizer, so the
 * length is chosen in words: every word here, with the space before it, is one token of the
 * StarCoder tokenizer (the one every StarCoder-family model shares; a test proves it), so a prompt
 * of P words is P prompt tokens there. Other tokenizers differ; the report always gives the prompt
 * token counts the server reported.
 *
 * <p>Prompt {@code i} depends only on the seed and {@code i}, so runs are reproducible whatever
 * order requests go out in; 200 words at random make prompts that share no useful prefix (no
 * prefix-cache hits, no routing affinity between them).
 */
public final class PromptSource {
  /** 200 distinct words, each one token with a leading space in the StarCoder vocabulary. */
  public static final List<String> WORDS =
      List.of(
          """
          the of and to in is for that with on as it be by this are from or at an not have can
          if use value data file list name type return function class method object string
          number time user code test error result input output key table query index model
          server client request response buffer stream token batch cache memory thread worker
          queue event message state config option default system path line text field array map
          set node tree graph edge loop step count size length width height start end next first
          last left right top bottom open close read write load save send receive create update
          delete find sort merge split join parse print format check build run call wait stop
          begin order group level page image color point range scale shape block frame window
          view layer column row record entry item element child parent root source target random
          simple small large new old true false null empty full main local global public private
          static final abstract interface module package import export include header body
          content title label button form menu panel handler listener service manager factory
          builder reader writer parser printer logger counter timer filter mapper reducer
          """
              .strip()
              .split("\\s+"));

  private final long seed;
  private final int words;

  public PromptSource(long seed, int words) {
    if (words < 1) {
      throw new IllegalArgumentException("a prompt needs at least 1 word, got " + words);
    }
    this.seed = seed;
    this.words = words;
  }

  /** Prompt {@code index}: {@code words} words, each preceded by a space. */
  public String prompt(int index) {
    SplittableRandom r = new SplittableRandom(seed + 0x9E3779B97F4A7C15L * (index + 1L));
    StringBuilder sb = new StringBuilder(words * 8);
    for (int i = 0; i < words; i++) {
      sb.append(' ').append(WORDS.get(r.nextInt(WORDS.size())));
    }
    return sb.toString();
  }
}
