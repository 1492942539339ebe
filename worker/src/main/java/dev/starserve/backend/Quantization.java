package dev.starserve.backend;

/**
 * How the weights of the linear layers (c_attn, attn.c_proj, c_fc, mlp.c_proj, lm_head) are held
 * once loaded. Embeddings, LayerNorms and biases always stay as the checkpoint stores them.
 */
public enum Quantization {
  /** As the checkpoint stores them (f32, bf16 or f16). */
  NONE("none"),
  /**
   * Signed 8-bit integers in blocks of {@value #INT8_BLOCK} consecutive input columns of one row,
   * each block with one float32 scale {@code max|w| / 127}: {@code w ≈ q · scale}, {@code q} in
   * {@code [-127, 127]} (llama.cpp's Q8_0 idea with a float32 instead of a float16 scale). 1.125
   * bytes per weight.
   */
  INT8("int8");

  /** Input columns sharing one int8 scale. */
  public static final int INT8_BLOCK = 32;

  private final String cliName;

  Quantization(String cliName) {
    this.cliName = cliName;
  }

  /** The name on the command line and in logs: {@code none}, {@code int8}. */
  public String cliName() {
    return cliName;
  }

  /** The allowed names, comma-separated, for error messages. */
  public static String allowedNames() {
    StringBuilder sb = new StringBuilder();
    for (Quantization q : values()) {
      sb.append(sb.isEmpty() ? "" : ", ").append(q.cliName);
    }
    return sb.toString();
  }

  /**
   * Parses a {@link #cliName()}.
   *
   * @throws IllegalArgumentException naming the allowed values, for any other name
   */
  public static Quantization fromCliName(String name) {
    for (Quantization q : values()) {
      if (q.cliName.equals(name)) {
        return q;
      }
    }
    throw new IllegalArgumentException(
        "quantize must be one of " + allowedNames() + ", got '" + name + "'");
  }
}
