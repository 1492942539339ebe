package dev.starserve.engine;

import dev.starserve.backend.BatchLayout;
import dev.starserve.backend.KvCache;
import dev.starserve.engine.kv.KvBlockManager;
import dev.starserve.engine.sched.ScheduledBatch;
import dev.starserve.engine.sched.Sequence;
import dev.starserve.model.LanguageModel;
import java.util.Arrays;

/**
 * Turns a scheduled batch into one forward pass: lays every scheduled token out as one row (its id,
 * position, cache slot and sequence), asks for logits only where a token is sampled or a prompt
 * logprob is wanted, and runs the model.
 */
final class ModelRunner {
  private final LanguageModel model;
  private final KvCache cache;
  private final KvBlockManager kv;
  private float[] logits = new float[0];

  ModelRunner(LanguageModel model, KvCache cache, KvBlockManager kv) {
    this.model = model;
    this.cache = cache;
    this.kv = kv;
  }

  StepLogits execute(ScheduledBatch batch) {
    int numSeqs = batch.seqs().size();
    int total = 0;
    for (int c : batch.count()) {
      total += c;
    }
    int[] ids = new int[total];
    int[] positions = new int[total];
    int[] slots = new int[total];
    int[] tokenSeq = new int[total];
    int[][] tables = new int[numSeqs][];
    int[] sampleRow = new int[numSeqs];
    int[] promptRow = new int[numSeqs];
    int[] promptPos = new int[numSeqs];
    int[] promptCount = new int[numSeqs];
    int[] rows = new int[total];
    int numRows = 0;
    int blockSize = kv.blockSize();
    int t = 0;
    for (int i = 0; i < numSeqs; i++) {
      Sequence s = batch.seqs().get(i);
      int[] table = kv.blockTable(s.seqId());
      tables[i] = table;
      int start = batch.start()[i];
      int count = batch.count()[i];
      promptRow[i] = -1;
      sampleRow[i] = -1;
      int firstRow = t;
      for (int j = 0; j < count; j++, t++) {
        int p = start + j;
        ids[t] = s.tokens()[p];
        positions[t] = p;
        tokenSeq[t] = i;
        slots[t] = table[p / blockSize] * blockSize + p % blockSize;
      }
      if (s.promptLogprobs() && start < s.promptLength() - 1) {
        int end = Math.min(start + count, s.promptLength() - 1);
        promptRow[i] = numRows;
        promptPos[i] = start;
        promptCount[i] = end - start;
        for (int p = start; p < end; p++) {
          rows[numRows++] = firstRow + (p - start);
        }
      }
      if (batch.samples(i)) {
        sampleRow[i] = numRows;
        rows[numRows++] = firstRow + count - 1;
      }
    }
    int vocab = model.config().vocabSize();
    if (logits.length < numRows * vocab) {
      logits = new float[numRows * vocab];
    }
    BatchLayout layout = new BatchLayout(ids, positions, slots, tokenSeq, tables, blockSize);
    model.forward(layout, Arrays.copyOf(rows, numRows), cache, logits);
    return new StepLogits(logits, vocab, sampleRow, promptRow, promptPos, promptCount);
  }
}
