package dev.starserve.engine;

import dev.starserve.backend.BatchLayout;
import dev.starserve.backend.KvCache;
import dev.starserve.engine.kv.KvBlockManager;
import dev.starserve.engine.sched.ScheduledBatch;
import dev.starserve.engine.sched.Sequence;
import dev.starserve.model.LanguageModel;

/**
 * Turns a scheduled batch into one forward pass: lays every scheduled token out as one row (its id,
 * position, cache slot and sequence), asks for logits only where a token is sampled or a prompt
 * logprob is wanted, and runs the model.
 *
 * <p>NOTE: the layout's arrays, the logit rows and the {@link StepLogits} are this runner's own and
 * are refilled in place by the next step whenever their sizes match (as they do, step after step,
 * while a batch decodes): a steady engine loop allocates nothing here. Nothing keeps them past a
 * step: the model is done with the layout when {@code forward} returns, and the engine with the
 * logits when {@code update} does. The layout record itself is new every step, since the CUDA
 * backend uploads its tables once per instance.
 */
final class ModelRunner {
  private final LanguageModel model;
  private final KvCache cache;
  private final KvBlockManager kv;
  private float[] logits = new float[0]; // [rows × vocab], grown when needed
  private int[] ids = new int[0]; // [T] for the step's T tokens
  private int[] positions = new int[0]; // [T]
  private int[] slots = new int[0]; // [T]
  private int[] tokenSeq = new int[0]; // [T]
  private int[] rows = new int[0]; // [T] scratch: the tokens that need logits
  private int[] logitRows = new int[0]; // [R] the first R of rows
  private int[][] tables = new int[0][]; // [S] block table of each scheduled sequence
  private int[] sampleRow = new int[0]; // [S]
  private int[] promptRow = new int[0]; // [S]
  private int[] promptPos = new int[0]; // [S]
  private int[] promptCount = new int[0]; // [S]
  private StepLogits stepLogits;

  ModelRunner(LanguageModel model, KvCache cache, KvBlockManager kv) {
    this.model = model;
    this.cache = cache;
    this.kv = kv;
  }

  StepLogits execute(ScheduledBatch batch) {
    int numSeqs = batch.size();
    int total = batch.totalTokens();
    if (ids.length != total) {
      ids = new int[total];
      positions = new int[total];
      slots = new int[total];
      tokenSeq = new int[total];
      rows = new int[total];
    }
    if (tables.length != numSeqs) {
      tables = new int[numSeqs][];
      sampleRow = new int[numSeqs];
      promptRow = new int[numSeqs];
      promptPos = new int[numSeqs];
      promptCount = new int[numSeqs];
    }
    int numRows = 0;
    int blockSize = kv.blockSize();
    int t = 0;
    for (int i = 0; i < numSeqs; i++) {
      Sequence s = batch.seq(i);
      int[] table = kv.blocks(s.seqId());
      tables[i] = table;
      int start = batch.start(i);
      int count = batch.count(i);
      promptRow[i] = -1;
      promptPos[i] = 0;
      promptCount[i] = 0;
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
    if (logitRows.length != numRows) {
      logitRows = new int[numRows];
    }
    System.arraycopy(rows, 0, logitRows, 0, numRows);
    int vocab = model.config().vocabSize();
    if (logits.length < numRows * vocab) {
      logits = new float[numRows * vocab];
    }
    BatchLayout layout = new BatchLayout(ids, positions, slots, tokenSeq, tables, blockSize);
    model.forward(layout, logitRows, cache, logits);
    if (stepLogits == null
        || stepLogits.logits() != logits
        || stepLogits.sampleRow() != sampleRow) {
      stepLogits = new StepLogits(logits, vocab, sampleRow, promptRow, promptPos, promptCount);
    }
    return stepLogits;
  }
}
