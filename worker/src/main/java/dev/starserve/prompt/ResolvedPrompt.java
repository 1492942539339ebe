package dev.starserve.prompt;

import java.util.List;

/**
 * A prompt as token ids, with the stops its format implies (a chat format's end-of-turn token, the
 * Tech Assistant format's next "Human:" turn) that add to the request's own.
 */
public record ResolvedPrompt(int[] ids, int[] stopTokenIds, List<String> stopSequences) {
  public ResolvedPrompt {
    ids = ids.clone();
    stopTokenIds = stopTokenIds.clone();
    stopSequences = List.copyOf(stopSequences);
  }

  @Override
  public int[] ids() {
    return ids.clone();
  }

  @Override
  public int[] stopTokenIds() {
    return stopTokenIds.clone();
  }
}
