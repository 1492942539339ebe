package dev.starserve.model.parallel;

import dev.starserve.backend.Backend;
import dev.starserve.backend.BatchLayout;
import dev.starserve.backend.KvCache;
import dev.starserve.backend.KvDType;
import dev.starserve.backend.Quantization;
import dev.starserve.model.GptBigCodeConfig;
import dev.starserve.model.GptBigCodeWeights;
import dev.starserve.model.LanguageModel;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.IntFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The gpt_bigcode forward pass split over {@code N} tensor-parallel ranks (Megatron-style): query
 * heads and the MLP's inner columns are divided, the single K/V head of a multi-query model is
 * replicated, and an all-reduce follows attn.c_proj and mlp.c_proj. {@link RankShard} shows what
 * each rank holds.
 *
 * <pre>
 * engine thread = rank 0          rank 1 … N-1 (one platform thread each, started once)
 *   forward(batch): publish step
 *   ─────────── barrier: start ───────────
 *   rank 0's slice                 rank r's slice        (each on its own backend and threads)
 *     … c_proj ─── all-reduce ─── c_proj …               (2 per layer)
 *   logits[:, V_0]                 logits[:, V_r]        (lm_head split by vocabulary)
 *   ─────────── barrier: done ────────────
 *   return logits
 * </pre>
 *
 * Rank 0 runs on the caller's thread: the engine loop owns the scheduler and hands each step's plan
 * (the {@link BatchLayout}) to the other ranks. Every rank keeps the same K/V blocks ({@link
 * ShardedKvCache}), so a block id means the same on every rank.
 *
 * <p>When a rank fails (a bug: inputs are checked before the ranks start), the barrier is broken so
 * no rank waits forever, the caller gets the failure, and the model refuses every later step.
 *
 * <p>Not thread-safe: one engine loop owns a model.
 */
public final class TensorParallelModel implements LanguageModel {
  private static final Logger LOG = LoggerFactory.getLogger(TensorParallelModel.class);

  private final GptBigCodeConfig config;
  private final Quantization quantization;
  private final RankShard[] ranks;
  private final Thread[] threads; // [N-1]: ranks 1..N-1
  private final RankBarrier barrier;
  private final AllReduce allReduce;
  private final AtomicReference<Throwable> failure = new AtomicReference<>();
  private volatile boolean closed;

  // The step the ranks run, published to them by the start barrier.
  private BatchLayout stepBatch;
  private int[] stepRows;
  private ShardedKvCache stepCache;
  private float[] stepLogits;

  /**
   * Splits {@code weights} over {@code size} ranks, rank {@code r} on {@code backends.apply(r)} (a
   * new backend per rank, which this model closes), the linear layers held as {@code quantization}.
   *
   * @throws IllegalArgumentException when {@code size} is below 1 or does not divide n_head and
   *     n_inner
   */
  public TensorParallelModel(
      GptBigCodeConfig config,
      GptBigCodeWeights weights,
      int size,
      IntFunction<Backend> backends,
      Quantization quantization) {
    checkSize(config, size);
    this.config = config;
    this.quantization = quantization;
    this.ranks = new RankShard[size];
    this.barrier = new RankBarrier(size);
    Backend[] bs = new Backend[size];
    try {
      for (int r = 0; r < size; r++) {
        bs[r] = backends.apply(r);
        ranks[r] = new RankShard(r, size, config, weights, bs[r], quantization);
      }
      this.allReduce = AllReduce.forBackends(bs, barrier);
    } catch (RuntimeException e) {
      for (int r = 0; r < size; r++) {
        if (ranks[r] != null) {
          ranks[r].close();
        } else if (bs[r] != null) {
          bs[r].close();
        }
      }
      throw e;
    }
    this.threads = new Thread[size - 1];
    for (int r = 1; r < size; r++) {
      int rank = r;
      threads[r - 1] =
          Thread.ofPlatform().daemon().name("starserve-tp-rank-" + r).unstarted(() -> loop(rank));
      threads[r - 1].start();
    }
    LOG.info(describe());
  }

  /**
   * Checks that {@code size} ranks can split a model of this shape.
   *
   * @throws IllegalArgumentException naming --tensor-parallel-size, the shape field and the value
   */
  public static void checkSize(GptBigCodeConfig config, int size) {
    if (size < 1) {
      throw new IllegalArgumentException("--tensor-parallel-size must be >= 1, got " + size);
    }
    if (config.nHead() % size != 0) {
      throw new IllegalArgumentException(
          "--tensor-parallel-size "
              + size
              + " does not divide n_head = "
              + config.nHead()
              + ": every rank must get the same number of query heads"
              + (config.multiQuery() ? "" : " (and of K/V heads: multi_query is false)"));
    }
    if (config.nInner() % size != 0) {
      throw new IllegalArgumentException(
          "--tensor-parallel-size "
              + size
              + " does not divide n_inner = "
              + config.nInner()
              + ": every rank must get the same number of MLP columns");
    }
    if (config.vocabSize() < size) {
      throw new IllegalArgumentException(
          "--tensor-parallel-size " + size + " exceeds vocab_size = " + config.vocabSize());
    }
  }

  private String describe() {
    int n = ranks.length;
    return String.format(
        Locale.ROOT,
        "tensor parallel over %d ranks on the %s backend: %d of %d query heads, %d of %d MLP"
            + " columns and about 1/%d of the vocabulary per rank; %s; %.1f MB of linear weights"
            + " per rank",
        n,
        ranks[0].backend().name(),
        config.nHead() / n,
        config.nHead(),
        config.nInner() / n,
        config.nInner(),
        n,
        config.multiQuery()
            ? "the one K/V head and its cache replicated on every rank"
            : "K/V heads and their cache split with the query heads",
        ranks[0].linearWeightBytes() / 1e6);
  }

  @Override
  public GptBigCodeConfig config() {
    return config;
  }

  @Override
  public Quantization quantization() {
    return quantization;
  }

  @Override
  public int tensorParallelSize() {
    return ranks.length;
  }

  /** Summed over the ranks: each reads its slices and its own copy of what is replicated. */
  @Override
  public long decodeWeightBytes() {
    long b = 0;
    for (RankShard r : ranks) {
      b += r.decodeWeightBytes();
    }
    return b;
  }

  /**
   * One cache per rank with the same blocks. NOTE: with multi-query attention each rank stores the
   * whole K/V, so the process holds {@code N} copies of it.
   */
  @Override
  public KvCache newKvCache(int numBlocks, int blockSize, KvDType dtype) {
    List<KvCache> caches = new ArrayList<>(ranks.length);
    for (RankShard r : ranks) {
      caches.add(r.newKvCache(numBlocks, blockSize, dtype));
    }
    return new ShardedKvCache(caches, config.kvDim());
  }

  @Override
  public void forward(BatchLayout batch, int[] logitRows, KvCache cache, float[] logitsOut) {
    if (closed) {
      throw new IllegalStateException("the model is closed");
    }
    Throwable failed = failure.get();
    if (failed != null) {
      throw new IllegalStateException(
          "a tensor-parallel rank failed earlier; the model cannot run again", failed);
    }
    checkStep(batch, logitRows, cache, logitsOut);
    stepBatch = batch;
    stepRows = logitRows;
    stepCache = (ShardedKvCache) cache;
    stepLogits = logitsOut;
    if (barrier.await()) {
      runRank(0);
      barrier.await();
    }
    stepBatch = null;
    stepRows = null;
    stepCache = null;
    stepLogits = null;
    failed = failure.get();
    if (failed != null) {
      throw new IllegalStateException("a tensor-parallel rank failed", failed);
    }
    if (closed) {
      throw new IllegalStateException("the model was closed during a forward pass");
    }
  }

  /**
   * Everything that could make a rank throw on bad input, checked here, so that a rank fails only
   * on a bug.
   */
  private void checkStep(BatchLayout batch, int[] logitRows, KvCache cache, float[] logitsOut) {
    if (!(cache instanceof ShardedKvCache s) || s.ranks().size() != ranks.length) {
      throw new IllegalArgumentException(
          "the K/V cache was not made by this model's newKvCache (" + ranks.length + " ranks)");
    }
    int n = batch.numTokens();
    int vocab = config.vocabSize();
    if (logitsOut.length < (long) logitRows.length * vocab) {
      throw new IllegalArgumentException(
          "logitsOut holds "
              + logitsOut.length
              + " floats, needs "
              + (long) logitRows.length * vocab);
    }
    for (int row : logitRows) {
      if (row < 0 || row >= n) {
        throw new IllegalArgumentException("logit row " + row + " is outside the batch of " + n);
      }
    }
    for (int t = 0; t < n; t++) {
      int id = batch.tokenIds()[t];
      if (id < 0 || id >= vocab) {
        throw new IllegalArgumentException(
            "token id " + id + " is outside the vocabulary [0, " + vocab + ")");
      }
      if (batch.positions()[t] >= config.nPositions()) {
        throw new IllegalArgumentException(
            "position "
                + batch.positions()[t]
                + " is beyond the model's "
                + config.nPositions()
                + " positions");
      }
      int slot = batch.slotMapping()[t];
      if (slot < 0 || slot >= cache.numBlocks() * cache.blockSize()) {
        throw new IllegalArgumentException(
            "token "
                + t
                + " writes slot "
                + slot
                + " outside the cache's "
                + cache.numBlocks()
                + " blocks of "
                + cache.blockSize());
      }
    }
  }

  private void loop(int rank) {
    while (barrier.await()) {
      runRank(rank);
      if (!barrier.await()) {
        return;
      }
    }
  }

  private void runRank(int rank) {
    try {
      ranks[rank].forward(stepBatch, stepRows, stepCache.rank(rank), stepLogits, allReduce);
    } catch (RankBarrier.RankAbortedException e) {
      // Another rank failed (and recorded why) or the model is closing.
    } catch (Throwable t) {
      if (failure.compareAndSet(null, t)) {
        LOG.error("tensor-parallel rank {} failed; the model cannot run again", rank, t);
      }
      barrier.breakAll();
    }
  }

  /** Stops the rank threads and closes every rank's backend. Call from the owning thread. */
  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    barrier.breakAll();
    for (Thread t : threads) {
      try {
        t.join();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
    }
    for (RankShard r : ranks) {
      r.close();
    }
  }
}
