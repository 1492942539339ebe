package dev.starserve.engine.sched;

import java.util.Arrays;

/**
 * One sample of one request as the engine loop tracks it: its tokens (prompt, then generated), how
 * many of them have their K/V in the cache, and its place in the queue. Owned by the engine loop
 * thread; nothing else may touch it.
 */
public final class Sequence {
  private final long seqId;
  private final String requestId;
  private final int sampleIndex;
  private final int priority;
  private final long arrival;
  private final int promptLength;
  private final boolean usePrefixCache;
  private final boolean promptLogprobs;
  private final Sequence waitFor;
  private int[] tokens; // [capacity]; the first numTokens are prompt then generated
  private int numTokens;
  private int numComputed;
  private int cachedPromptTokens;
  private boolean finished;
  private boolean admitted;
  private Object output;

  /**
   * @param waitFor another sample of the same prompt whose prefill must finish first, so that this
   *     one finds the prompt in the prefix cache (null if none)
   */
  public Sequence(
      long seqId,
      String requestId,
      int sampleIndex,
      int priority,
      long arrival,
      int[] promptIds,
      boolean usePrefixCache,
      boolean promptLogprobs,
      Sequence waitFor) {
    this.seqId = seqId;
    this.requestId = requestId;
    this.sampleIndex = sampleIndex;
    this.priority = priority;
    this.arrival = arrival;
    this.promptLength = promptIds.length;
    this.usePrefixCache = usePrefixCache;
    this.promptLogprobs = promptLogprobs;
    this.waitFor = waitFor;
    this.tokens = Arrays.copyOf(promptIds, promptIds.length + 16);
    this.numTokens = promptIds.length;
  }

  public long seqId() {
    return seqId;
  }

  public String requestId() {
    return requestId;
  }

  public int sampleIndex() {
    return sampleIndex;
  }

  public int priority() {
    return priority;
  }

  public long arrival() {
    return arrival;
  }

  public int promptLength() {
    return promptLength;
  }

  public boolean usePrefixCache() {
    return usePrefixCache;
  }

  public boolean promptLogprobs() {
    return promptLogprobs;
  }

  /** The token array itself (not a copy): only {@code [0, numTokens)} is meaningful. */
  public int[] tokens() {
    return tokens;
  }

  public int numTokens() {
    return numTokens;
  }

  public int generatedTokens() {
    return numTokens - promptLength;
  }

  /** Tokens whose K/V is in the cache. */
  public int numComputed() {
    return numComputed;
  }

  public void setNumComputed(int n) {
    if (n < 0 || n > numTokens) {
      throw new IllegalArgumentException("numComputed " + n + " outside [0, " + numTokens + "]");
    }
    this.numComputed = n;
  }

  public int cachedPromptTokens() {
    return cachedPromptTokens;
  }

  public void setCachedPromptTokens(int n) {
    this.cachedPromptTokens = n;
  }

  /** Appends a generated token. */
  public void append(int id) {
    if (numTokens == tokens.length) {
      tokens = Arrays.copyOf(tokens, tokens.length * 2);
    }
    tokens[numTokens++] = id;
  }

  /** True once every prompt token has its K/V computed (at least once). */
  public boolean prefillDone() {
    return numComputed >= promptLength;
  }

  /** May this sequence be admitted now? (Its sibling's prompt is cached, or it has none.) */
  public boolean ready() {
    return waitFor == null || waitFor.finished || waitFor.prefillDone();
  }

  /** Records an admission; true the first time (later ones follow preemptions). */
  public boolean markAdmitted() {
    boolean first = !admitted;
    admitted = true;
    return first;
  }

  public boolean finished() {
    return finished;
  }

  public void markFinished() {
    this.finished = true;
  }

  /** The engine's per-sequence output state (sampler, detokenizer, stop checker). */
  public Object output() {
    return output;
  }

  public void setOutput(Object output) {
    this.output = output;
  }

  @Override
  public String toString() {
    return "Sequence["
        + requestId
        + "#"
        + sampleIndex
        + ", tokens "
        + numTokens
        + ", computed "
        + numComputed
        + "]";
  }
}
