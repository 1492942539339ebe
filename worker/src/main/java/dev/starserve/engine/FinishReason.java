package dev.starserve.engine;

/** Why a generation ended. */
public enum FinishReason {
  /** max_new_tokens reached, or the model's context is full. */
  LENGTH("length"),
  /** the model produced an end-of-sequence token (or a stop token id). */
  EOS_TOKEN("eos_token"),
  /** a stop sequence appeared in the generated text. */
  STOP_SEQUENCE("stop_sequence"),
  /** the request's time limit passed. */
  TIME_LIMIT("time_limit"),
  /** the request was aborted (client gone, explicit cancel, engine shut down). */
  CANCELLED("cancelled");

  private final String wireName;

  FinishReason(String wireName) {
    this.wireName = wireName;
  }

  /** The name used in JSON output. */
  public String wireName() {
    return wireName;
  }
}
