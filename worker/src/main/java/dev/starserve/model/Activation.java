package dev.starserve.model;

import java.util.List;

/** The MLP activation of a gpt_bigcode model, from config.json's {@code activation_function}. */
public enum Activation {
  /** {@code 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))}: gelu_pytorch_tanh, gelu_new, gelu_fast. */
  GELU_TANH("gelu_pytorch_tanh"),
  /** {@code 0.5·x·(1 + erf(x/√2))}: gelu. */
  GELU_ERF("gelu"),
  /** {@code max(0, x)}: relu. */
  RELU("relu");

  /** Every HuggingFace name accepted, in the order an error message lists them. */
  public static final List<String> HF_NAMES =
      List.of("gelu_pytorch_tanh", "gelu_new", "gelu_fast", "gelu", "relu");

  private final String hfName;

  Activation(String hfName) {
    this.hfName = hfName;
  }

  /** The canonical HuggingFace name, as written to config.json. */
  public String hfName() {
    return hfName;
  }

  /**
   * Maps a HuggingFace {@code activation_function}. NOTE: gelu_new and gelu_fast compute the same
   * tanh formula as gelu_pytorch_tanh (they differ only in how PyTorch evaluates it), so all three
   * are GELU_TANH.
   */
  public static Activation fromHf(String name) {
    if (name != null) {
      switch (name) {
        case "gelu_pytorch_tanh", "gelu_new", "gelu_fast" -> {
          return GELU_TANH;
        }
        case "gelu" -> {
          return GELU_ERF;
        }
        case "relu" -> {
          return RELU;
        }
        default -> {}
      }
    }
    throw new IllegalArgumentException(
        "unknown activation_function '" + name + "': allowed are " + HF_NAMES);
  }
}
