package dev.starserve.model;

/** The MLP non-linearities gpt_bigcode checkpoints use. */
public enum Activation {
  /** 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))): gelu_pytorch_tanh, gelu_new, gelu_fast. */
  GELU_TANH,
  /** 0.5·x·(1 + erf(x/√2)): gelu. */
  GELU_ERF,
  /** max(0, x): relu. */
  RELU;

  /** Maps a HuggingFace {@code activation_function} name. */
  public static Activation fromHf(String name) {
    return switch (name) {
      case "gelu_pytorch_tanh", "gelu_new", "gelu_fast" -> GELU_TANH;
      case "gelu" -> GELU_ERF;
      case "relu" -> RELU;
      default ->
          throw new IllegalArgumentException(
              "activation_function '"
                  + name
                  + "' is not supported; allowed: gelu_pytorch_tanh, gelu_new, gelu_fast, gelu, relu");
    };
  }
}
