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
  final boolean hasDeadline;
  final long deadlineNanos; // meaningful when hasDeadline
  final List<FinishEvent.PromptLogprob> promptLogprobs;
  private final int tokenizerVocab;
  private boolean drained;
  boolean promptLogprobsSent;

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
    this.hasDeadline = st.timeLimitMillis() > 0;
    this.deadlineNanos = nowNanos + st.timeLimitMillis() * 1_000_000;
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

  boolean pastDeadline(long nowNanos) {
    return hasDeadline && nowNanos - deadlineNanos >= 0;
  }

  /**
   * Releases the text still held back at the end of the sample: the detokenizer's unfinished bytes,
   * then what the stop checker kept as a possible stop-sequence start. Afterwards {@link
   * StopChecker#stopped()} tells whether that completed a stop sequence. Returns "" when called
   * again or after a stop sequence already ended the sample.
   */
  String drain() {
    if (drained || stopChecker.stopped()) {
      return "";
    }
    drained = true;
    String text = stopChecker.append(detokenizer.flush());
    return stopChecker.stopped() ? text : text + stopChecker.flush();
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
