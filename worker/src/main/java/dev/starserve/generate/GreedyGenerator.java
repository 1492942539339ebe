package dev.starserve.generate;

import dev.starserve.backend.BatchLayout;
import dev.starserve.backend.KvCache;
import dev.starserve.engine.FinishReason;
import dev.starserve.model.LanguageModel;
import dev.starserve.sample.LogProbs;
import dev.starserve.text.IncrementalDetokenizer;
import dev.starserve.text.Tokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;

/**
 * Greedy generation of one sequence at a time: prefill the prompt in chunks, then decode one token
 * per forward pass, reading K/V from a private cache. The continuous-batching engine replaces this
 * for serving; it stays as the simplest end-to-end path and as the sequential reference that
 * batched results are compared with.
 */
public final class GreedyGenerator {
  /** Prompt tokens per forward pass while prefilling (bounds the activation memory). */
  static final int DEFAULT_PREFILL_CHUNK = 512;

  private static final int BLOCK_SIZE = 16;

  private final LanguageModel model;
  private final Tokenizer tokenizer;
  private final int[] eosTokenIds;
  private final int prefillChunk;

  public GreedyGenerator(LanguageModel model, Tokenizer tokenizer, int[] eosTokenIds) {
    this(model, tokenizer, eosTokenIds, DEFAULT_PREFILL_CHUNK);
  }

  GreedyGenerator(LanguageModel model, Tokenizer tokenizer, int[] eosTokenIds, int prefillChunk) {
    if (prefillChunk < 1) {
      throw new IllegalArgumentException("prefillChunk must be >= 1, got " + prefillChunk);
    }
    this.model = model;
    this.tokenizer = tokenizer;
    this.eosTokenIds = eosTokenIds.clone();
    this.prefillChunk = prefillChunk;
  }

  /**
   * Generates up to {@code maxNewTokens} tokens after {@code promptIds}, greedily, calling {@code
   * onToken} as each is produced. Stops at an end-of-sequence token or when the model's context
   * ({@code n_positions}) is full.
   *
   * @throws IllegalArgumentException for an empty prompt, a prompt that does not fit the context,
   *     token ids outside the vocabulary, or negative counts
   */
  public GenerationResult generate(
      int[] promptIds, int maxNewTokens, int topLogprobs, Consumer<GeneratedToken> onToken) {
    int vocab = model.config().vocabSize();
    int context = model.config().nPositions();
    if (promptIds.length == 0) {
      throw new IllegalArgumentException("the prompt is empty: give at least one token");
    }
    if (promptIds.length >= context) {
      throw new IllegalArgumentException(
          "the prompt has "
              + promptIds.length
              + " tokens but the model's context is "
              + context
              + " (n_positions): it must be shorter to leave room for a new token");
    }
    if (maxNewTokens < 0) {
      throw new IllegalArgumentException("max_new_tokens must be >= 0, got " + maxNewTokens);
    }
    if (topLogprobs < 0 || topLogprobs > 20) {
      throw new IllegalArgumentException("logprobs must be in [0, 20], got " + topLogprobs);
    }
    for (int id : promptIds) {
      if (id < 0 || id >= vocab) {
        throw new IllegalArgumentException(
            "prompt token id " + id + " is outside the vocabulary [0, " + vocab + ")");
      }
    }
    int total = Math.min(context, promptIds.length + maxNewTokens);
    int blocks = (total + BLOCK_SIZE - 1) / BLOCK_SIZE;
    int[] table = new int[blocks];
    Arrays.setAll(table, i -> i);
    KvCache cache = model.newKvCache(blocks, BLOCK_SIZE);

    float[] logits = new float[vocab];
    for (int start = 0; start < promptIds.length; start += prefillChunk) {
      int end = Math.min(promptIds.length, start + prefillChunk);
      int[] chunk = Arrays.copyOfRange(promptIds, start, end);
      BatchLayout batch = BatchLayout.singleSequence(chunk, start, table, BLOCK_SIZE);
      int[] rows = end == promptIds.length ? new int[] {chunk.length - 1} : new int[0];
      model.forward(batch, rows, cache, logits);
    }

    IncrementalDetokenizer detok = tokenizer.newDetokenizer(true);
    List<GeneratedToken> out = new ArrayList<>();
    StringBuilder text = new StringBuilder();
    FinishReason reason = FinishReason.LENGTH;
    int position = promptIds.length;
    while (out.size() < maxNewTokens) {
      int next = LogProbs.argmax(logits, 0, vocab);
      double lse = LogProbs.logSumExp(logits, 0, vocab);
      List<GeneratedToken.TopLogprob> top = new ArrayList<>(topLogprobs);
      for (int id : LogProbs.topK(logits, 0, vocab, topLogprobs)) {
        top.add(new GeneratedToken.TopLogprob(id, logits[id] - lse));
      }
      boolean eos = isEos(next);
      String piece = next < tokenizer.vocabSize() ? detok.push(next) : "";
      if (eos || out.size() + 1 == maxNewTokens || position + 1 >= total) {
        piece += detok.flush();
      }
      GeneratedToken token = new GeneratedToken(next, piece, logits[next] - lse, top);
      out.add(token);
      text.append(piece);
      onToken.accept(token);
      if (eos) {
        reason = FinishReason.EOS_TOKEN;
        break;
      }
      if (out.size() == maxNewTokens || position + 1 >= total) {
        break;
      }
      BatchLayout batch = BatchLayout.singleSequence(new int[] {next}, position, table, BLOCK_SIZE);
      model.forward(batch, new int[] {0}, cache, logits);
      position++;
    }
    return new GenerationResult(promptIds.length, out, text.toString(), reason);
  }

  private boolean isEos(int id) {
    for (int e : eosTokenIds) {
      if (e == id) {
        return true;
      }
    }
    return false;
  }
}
