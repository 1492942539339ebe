package dev.starserve.model;

import java.util.Arrays;

/**
 * The gpt_bigcode shapes StarServe knows by name, for {@code make-model} and benchmarks. All are
 * multi-query with gelu_pytorch_tanh, epsilon 1e-5 and bos = eos = 0 ({@code <|endoftext|>} is id 0
 * in the StarCoder tokenizer).
 */
public enum ModelShape {
  /** A toy for tests: 64 wide, 4 heads, 2 layers, the real vocabulary. */
  TINY("tiny", 64, 4, 2, 256, 512, 49152),
  /** bigcode/tiny_starcoder_py (164M parameters). */
  TINY_STARCODER_PY("tiny_starcoder_py", 768, 12, 20, 3072, 8192, 49152),
  /** bigcode/starcoderbase-1b. */
  STARCODERBASE_1B("starcoderbase-1b", 2048, 16, 24, 8192, 8192, 49152),
  /** bigcode/gpt_bigcode-santacoder (1.1B). */
  SANTACODER("santacoder", 2048, 16, 24, 8192, 2048, 49280),
  /** bigcode/starcoder (15.5B). */
  STARCODER("starcoder", 6144, 48, 40, 24576, 8192, 49152);

  private final String cliName;
  private final GptBigCodeConfig config;

  ModelShape(
      String cliName, int nEmbd, int nHead, int nLayer, int nInner, int nPositions, int vocab) {
    this.cliName = cliName;
    this.config =
        new GptBigCodeConfig(
            nEmbd,
            nHead,
            nLayer,
            nInner,
            nPositions,
            vocab,
            true,
            1e-5f,
            Activation.GELU_TANH,
            true,
            0,
            0);
  }

  /** The name used on the command line, e.g. {@code starcoderbase-1b}. */
  public String cliName() {
    return cliName;
  }

  /** The architecture of this shape. */
  public GptBigCodeConfig config() {
    return config;
  }

  /** Parses a command-line name; the error lists every allowed name. */
  public static ModelShape fromCliName(String name) {
    for (ModelShape s : values()) {
      if (s.cliName.equals(name)) {
        return s;
      }
    }
    throw new IllegalArgumentException(
        "unknown model shape '"
            + name
            + "': allowed are "
            + Arrays.stream(values()).map(ModelShape::cliName).toList());
  }
}
