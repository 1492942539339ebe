package dev.starserve.prompt;

import dev.starserve.text.Tokenizer;

/**
 * Builds fill-in-the-middle prompts in PSM order, as StarCoder and SantaCoder were trained: {@code
 * <fim_prefix>} prefix {@code <fim_suffix>} suffix {@code <fim_middle>}, after which the model
 * writes the middle and ends it with {@code <|endoftext|>}. StarCoder spells the tokens with
 * underscores; the original SantaCoder with dashes ({@code <fim-prefix>}).
 *
 * <p>The three FIM tokens are always their exact ids: prefix and suffix are encoded separately, so
 * no text can merge with them.
 *
 * <p>NOTE: special-token text written literally inside prefix or suffix (say, a Python file about
 * tokenizers that contains {@code "<|endoftext|>"}) is encoded as that special token, as HF's
 * {@code tokenizer(text)} does and as vLLM and TGI do when they pass the prompt through it. So a
 * client gets the same ids here as from those servers; the model then sees the token, which may end
 * or derail its answer.
 *
 * <p>Immutable and thread-safe.
 */
public final class FimPromptBuilder {
  private final Tokenizer tokenizer;
  private final int prefixId; // -1 when the tokenizer has no FIM tokens
  private final int suffixId;
  private final int middleId;

  private FimPromptBuilder(Tokenizer tokenizer, int prefixId, int suffixId, int middleId) {
    this.tokenizer = tokenizer;
    this.prefixId = prefixId;
    this.suffixId = suffixId;
    this.middleId = middleId;
  }

  /** Finds the model's FIM tokens: StarCoder's underscore spelling first, then SantaCoder's. */
  public static FimPromptBuilder forTokenizer(Tokenizer tokenizer) {
    for (String sep : new String[] {"_", "-"}) {
      int prefix = tokenizer.tokenId("<fim" + sep + "prefix>");
      int suffix = tokenizer.tokenId("<fim" + sep + "suffix>");
      int middle = tokenizer.tokenId("<fim" + sep + "middle>");
      if (prefix >= 0 && suffix >= 0 && middle >= 0) {
        return new FimPromptBuilder(tokenizer, prefix, suffix, middle);
      }
    }
    return new FimPromptBuilder(tokenizer, -1, -1, -1);
  }

  /** Whether the model has the three FIM tokens. */
  public boolean supported() {
    return prefixId >= 0;
  }

  /**
   * The prompt ids: {@code <fim_prefix>} + encode(prefix) + {@code <fim_suffix>} + encode(suffix) +
   * {@code <fim_middle>}.
   *
   * @throws IllegalArgumentException when the model has no FIM tokens, or prefix or suffix is null
   */
  public int[] build(String prefix, String suffix) {
    if (!supported()) {
      throw new IllegalArgumentException(
          "this model has no fill-in-the-middle tokens (<fim_prefix>/<fim-prefix>)");
    }
    if (prefix == null) {
      throw new IllegalArgumentException("prefix must be a string, got null");
    }
    if (suffix == null) {
      throw new IllegalArgumentException("suffix must be a string, got null");
    }
    int[] p = tokenizer.encode(prefix);
    int[] s = tokenizer.encode(suffix);
    int[] ids = new int[p.length + s.length + 3];
    ids[0] = prefixId;
    System.arraycopy(p, 0, ids, 1, p.length);
    ids[1 + p.length] = suffixId;
    System.arraycopy(s, 0, ids, 2 + p.length, s.length);
    ids[ids.length - 1] = middleId;
    return ids;
  }
}
