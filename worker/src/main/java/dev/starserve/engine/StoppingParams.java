package dev.starserve.engine;

import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.IntStream;

/**
 * When a generation stops. Validated here; the engine adds what depends on the model (its context
 * length, its end-of-sequence ids).
 *
 * @param maxNewTokens at most this many generated tokens, in [1, 1_000_000]
 * @param minNewTokens end-of-sequence and stop token ids are suppressed until this many tokens were
 *     generated, in [0, maxNewTokens]
 * @param ignoreEos keep generating through end-of-sequence tokens
 * @param stopTokenIds more ids that end the generation like EOS (at most 32)
 * @param stopSequences texts that end the generation when they appear in the output (at most 16,
 *     each 1 to 240 characters)
 * @param includeStopSequence keep the matched stop sequence at the end of the output
 * @param timeLimitMillis end the request this long after it was submitted, wherever it is then
 *     (waiting, prefilling, preempted or generating), in [0, 604800000] (7 days), 0 for no limit
 */
public record StoppingParams(
    int maxNewTokens,
    int minNewTokens,
    boolean ignoreEos,
    int[] stopTokenIds,
    List<String> stopSequences,
    boolean includeStopSequence,
    long timeLimitMillis) {

  public static final int MAX_STOP_SEQUENCES = 16;
  public static final int MAX_STOP_SEQUENCE_LENGTH = 240;
  public static final int MAX_STOP_TOKEN_IDS = 32;
  public static final long MAX_TIME_LIMIT_MILLIS = 7L * 24 * 3600 * 1000;

  public StoppingParams {
    if (maxNewTokens < 1 || maxNewTokens > 1_000_000) {
      throw new IllegalArgumentException(
          "max_new_tokens must be in [1, 1000000], got " + maxNewTokens);
    }
    if (minNewTokens < 0 || minNewTokens > maxNewTokens) {
      throw new IllegalArgumentException(
          "min_new_tokens must be in [0, max_new_tokens = "
              + maxNewTokens
              + "], got "
              + minNewTokens);
    }
    stopTokenIds = stopTokenIds == null ? new int[0] : stopTokenIds.clone();
    if (stopTokenIds.length > MAX_STOP_TOKEN_IDS) {
      throw new IllegalArgumentException(
          "stop_token_ids may hold at most "
              + MAX_STOP_TOKEN_IDS
              + " ids, got "
              + stopTokenIds.length);
    }
    for (int id : stopTokenIds) {
      if (id < 0) {
        throw new IllegalArgumentException("stop_token_ids must be >= 0, got " + id);
      }
    }
    stopSequences = stopSequences == null ? List.of() : List.copyOf(stopSequences);
    if (stopSequences.size() > MAX_STOP_SEQUENCES) {
      throw new IllegalArgumentException(
          "stop may hold at most "
              + MAX_STOP_SEQUENCES
              + " sequences, got "
              + stopSequences.size());
    }
    for (String s : stopSequences) {
      if (s.isEmpty() || s.length() > MAX_STOP_SEQUENCE_LENGTH) {
        throw new IllegalArgumentException(
            "each stop sequence must be 1 to "
                + MAX_STOP_SEQUENCE_LENGTH
                + " characters, got "
                + s.length());
      }
    }
    if (timeLimitMillis < 0 || timeLimitMillis > MAX_TIME_LIMIT_MILLIS) {
      throw new IllegalArgumentException(
          "time_limit_ms must be in [0, "
              + MAX_TIME_LIMIT_MILLIS
              + "] (0 = no limit), got "
              + timeLimitMillis);
    }
  }

  @Override
  public int[] stopTokenIds() {
    return stopTokenIds.clone();
  }

  /**
   * These parameters plus the stops a prompt format implies (a chat format's end-of-turn token id,
   * the Tech Assistant format's next {@code "\nHuman:"}), without duplicates, so that a chat
   * request ends its turn whatever stops the client gave.
   *
   * @throws IllegalArgumentException when the client's stops and the format's together exceed the
   *     limits; the message says how many the format takes
   */
  public StoppingParams withFormatStops(
      int[] formatStopTokenIds, List<String> formatStopSequences) {
    int[] ids =
        IntStream.concat(IntStream.of(stopTokenIds), IntStream.of(formatStopTokenIds))
            .distinct()
            .toArray();
    if (ids.length > MAX_STOP_TOKEN_IDS) {
      int added = ids.length - (int) IntStream.of(stopTokenIds).distinct().count();
      throw new IllegalArgumentException(
          "stop_token_ids may hold at most "
              + (MAX_STOP_TOKEN_IDS - added)
              + " ids with this prompt format, which adds "
              + added
              + ", got "
              + stopTokenIds.length);
    }
    Set<String> seqs = new LinkedHashSet<>(stopSequences);
    seqs.addAll(formatStopSequences);
    if (seqs.size() > MAX_STOP_SEQUENCES) {
      int added = seqs.size() - new LinkedHashSet<>(stopSequences).size();
      throw new IllegalArgumentException(
          "stop may hold at most "
              + (MAX_STOP_SEQUENCES - added)
              + " sequences with this prompt format, which adds "
              + added
              + ", got "
              + stopSequences.size());
    }
    return new StoppingParams(
        maxNewTokens,
        minNewTokens,
        ignoreEos,
        ids,
        List.copyOf(seqs),
        includeStopSequence,
        timeLimitMillis);
  }

  /** Stop after {@code maxNewTokens}, at EOS, nothing else. */
  public static StoppingParams maxTokens(int maxNewTokens) {
    return new StoppingParams(maxNewTokens, 0, false, null, null, false, 0);
  }
}
