package dev.starserve.generate;

/** Why a generation ended. */
public enum FinishReason {
  /** max_new_tokens reached, or the model's context is full. */
  LENGTH("length"),
  /** the model produced an end-of-sequence token. */
  EOS_TOKEN("eos_token");

  private final String wireName;

  FinishReason(String wireName) {
    this.wireName = wireName;
  }

  /** The name used in JSON output. */
  public String wireName() {
    return wireName;
  }
}
