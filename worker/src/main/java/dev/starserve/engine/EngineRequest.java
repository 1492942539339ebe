package dev.starserve.engine;

import dev.starserve.sample.SamplingParams;

/**
 * One generation request as the engine takes it: prompt token ids (the caller has already built
 * them from text, a fill-in-the-middle pair or chat messages) and how to sample and stop.
 *
 * @param id unique among the engine's live requests, 1 to 256 characters
 * @param promptIds the prompt, at least one token
 * @param sampling how each next token is chosen
 * @param stopping when generation ends
 * @param n independent samples of this prompt, in [1, 16]; sample i uses seed + i
 * @param logprobs top alternatives to report per generated token, in [0, 20]
 * @param promptLogprobs also report each prompt token's logprob (disables the prefix cache for this
 *     request: cached tokens are not recomputed and so have no logits)
 * @param priority lower values are served first; equal priorities first come, first served
 * @param truncatePromptTokens when > 0 and the prompt is longer, keep only its last this-many
 *     tokens (left truncation)
 * @param resumeTokenIds failover: tokens this request already generated elsewhere. The engine runs
 *     them as context after the (truncated) prompt, counts them as generated (max_new_tokens,
 *     min_new_tokens, penalties, a seeded sampler's draws), replays them silently through the
 *     detokenizer and stop checker, and emits only what follows, indexed from their count. Only
 *     with n = 1, and fewer than max_new_tokens of them.
 */
public record EngineRequest(
    String id,
    int[] promptIds,
    SamplingParams sampling,
    StoppingParams stopping,
    int n,
    int logprobs,
    boolean promptLogprobs,
    int priority,
    int truncatePromptTokens,
    int[] resumeTokenIds) {

  public static final int MAX_N = 16;
  public static final int MAX_LOGPROBS = 20;

  public EngineRequest {
    if (id == null || id.isEmpty() || id.length() > 256) {
      throw new IllegalArgumentException("request id must be 1 to 256 characters");
    }
    if (promptIds == null || promptIds.length == 0) {
      throw new IllegalArgumentException("the prompt is empty: give at least one token");
    }
    promptIds = promptIds.clone();
    if (sampling == null || stopping == null) {
      throw new IllegalArgumentException("sampling and stopping parameters are required");
    }
    if (n < 1 || n > MAX_N) {
      throw new IllegalArgumentException("n must be in [1, " + MAX_N + "], got " + n);
    }
    if (logprobs < 0 || logprobs > MAX_LOGPROBS) {
      throw new IllegalArgumentException(
          "logprobs must be in [0, " + MAX_LOGPROBS + "], got " + logprobs);
    }
    if (truncatePromptTokens < 0) {
      throw new IllegalArgumentException(
          "truncate_prompt_tokens must be >= 0, got " + truncatePromptTokens);
    }
    resumeTokenIds = resumeTokenIds == null ? new int[0] : resumeTokenIds.clone();
    if (resumeTokenIds.length > 0) {
      if (n != 1) {
        throw new IllegalArgumentException(
            "resume_token_ids needs n = 1 (they belong to one sample), got n = " + n);
      }
      if (resumeTokenIds.length >= stopping.maxNewTokens()) {
        throw new IllegalArgumentException(
            "resume_token_ids must hold fewer than max_new_tokens = "
                + stopping.maxNewTokens()
                + " ids (the request would already be done), got "
                + resumeTokenIds.length);
      }
    }
  }

  /** A request without resumed tokens. */
  public EngineRequest(
      String id,
      int[] promptIds,
      SamplingParams sampling,
      StoppingParams stopping,
      int n,
      int logprobs,
      boolean promptLogprobs,
      int priority,
      int truncatePromptTokens) {
    this(
        id,
        promptIds,
        sampling,
        stopping,
        n,
        logprobs,
        promptLogprobs,
        priority,
        truncatePromptTokens,
        null);
  }

  @Override
  public int[] promptIds() {
    return promptIds.clone();
  }

  @Override
  public int[] resumeTokenIds() {
    return resumeTokenIds.clone();
  }

  /** These parameters resuming after {@code ids} (failover); see {@link #resumeTokenIds}. */
  public EngineRequest withResumeTokenIds(int[] ids) {
    return new EngineRequest(
        id,
        promptIds,
        sampling,
        stopping,
        n,
        logprobs,
        promptLogprobs,
        priority,
        truncatePromptTokens,
        ids);
  }

  /** A greedy request for {@code maxNewTokens} tokens with no extras. */
  public static EngineRequest greedy(String id, int[] promptIds, int maxNewTokens) {
    return new EngineRequest(
        id,
        promptIds,
        SamplingParams.greedy(),
        StoppingParams.maxTokens(maxNewTokens),
        1,
        0,
        false,
        0,
        0);
  }
}
