package dev.starserve.engine;

import dev.starserve.generate.GeneratedToken;
import dev.starserve.sample.LogProbs;
import dev.starserve.sample.Sampler;
import dev.starserve.text.IncrementalDetokenizer;
import dev.starserve.text.StopChecker;
import java.util.ArrayList;
import java.util.List;

/**
 * Everything the engine keeps to turn one sample's logits into events: its sampler (with its own
 * seeded generator), detokenizer, stop checker and limits. Owned by the engine loop.
 */
final class OutputState {
  final EngineRequest request;
  final RequestSink sink;
  final Sampler sampler;
  final IncrementalDetokenizer detokenizer;
  final StopChecker stopChecker;
  final int[] endIds; // EOS ids (unless ignore_eos) and stop token ids
  final long deadlineNanos; // 0 = none
  final List<FinishEvent.PromptLogprob> promptLogprobs;
  private final int tokenizerVocab;

  OutputState(
      EngineRequest request,
      RequestSink sink,
      Sampler sampler,
      IncrementalDetokenizer detokenizer,
      int[] endIds,
      long nowNanos,
      int tokenizerVocab) {
    this.request = request;
    this.sink = sink;
    this.sampler = sampler;
    this.detokenizer = detokenizer;
    StoppingParams st = request.stopping();
    this.stopChecker = new StopChecker(st.stopSequences(), st.includeStopSequence());
    this.endIds = endIds;
    this.deadlineNanos =
        st.timeLimitMillis() == 0 ? 0 : nowNanos + st.timeLimitMillis() * 1_000_000;
    this.promptLogprobs = request.promptLogprobs() ? new ArrayList<>() : null;
    this.tokenizerVocab = tokenizerVocab;
  }

  boolean isEnd(int id) {
    for (int e : endIds) {
      if (e == id) {
        return true;
      }
    }
    return false;
  }

  /** The text a token adds (special tokens and ids beyond the tokenizer add none). */
  String detokenize(int id) {
    return id < tokenizerVocab ? detokenizer.push(id) : "";
  }

  /** Top alternatives of a raw logits row, with their logprobs given its log-sum-exp. */
  List<GeneratedToken.TopLogprob> top(float[] logits, int off, int vocab, double lse) {
    int k = request.logprobs();
    if (k == 0) {
      return List.of();
    }
    List<GeneratedToken.TopLogprob> top = new ArrayList<>(k);
    for (int id : LogProbs.topK(logits, off, vocab, k)) {
      top.add(new GeneratedToken.TopLogprob(id, logits[off + id] - lse));
    }
    return top;
  }
}
