package dev.starserve.bench.jmh;

import dev.starserve.backend.AttentionShape;
import dev.starserve.backend.BatchLayout;
import dev.starserve.backend.Buffer;
import dev.starserve.backend.KvCache;
import dev.starserve.backend.KvDType;
import dev.starserve.backend.cpu.CpuBackend;
import dev.starserve.backend.host.HostBuffer;
import dev.starserve.backend.host.HostKvCache;
import dev.starserve.model.GptBigCodeConfig;
import dev.starserve.model.ModelShape;
import java.util.SplittableRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * One layer's multi-query attention of {@code tiny_starcoder_py} (12 query heads of 64 sharing one
 * K/V head) through {@link CpuBackend#attention}, over the paged K/V cache the engine uses (blocks
 * of 16 positions, each sequence's blocks scattered over the cache as after many requests came and
 * went). A call stores the new tokens' K/V and attends over the whole context, as in the model.
 *
 * <pre>
 * batch=decodeN   N sequences, one token each at position context−1 (a decode step of N requests)
 * batch=prefillN  one sequence, N tokens at positions context−N .. context−1 (the last chunk of a
 *                 context-long prompt; each token attends causally)
 * </pre>
 *
 * <p>Counted ({@link Work}): {@code gflop} = 4 · positions attended · 64 · 12 per token (q·k and
 * p·v, 2 FLOP per multiply-add; the softmax is left out); {@code gbyte} = each sequence's K and V
 * over its context once in the cache dtype (the 12 heads share them), plus the tokens' c_attn rows
 * and outputs in float32.
 *
 * <p>NOTE: as in the model, consecutive calls use consecutive layers of the cache (up to the
 * model's 20, fewer when fewer already fill {@code rotateMiB} MiB), so that a layer's K/V is not
 * still in the caches from the previous call.
 */
@State(Scope.Benchmark)
public class AttentionBench extends KernelBench {
  private static final GptBigCodeConfig MODEL = ModelShape.TINY_STARCODER_PY.config();
  private static final int BLOCK_SIZE = 16; // the engine's default --block-size
  private static final Pattern BATCH = Pattern.compile("(decode|prefill)([1-9][0-9]*)");

  /** Positions each query token attends to (its own included). */
  @Param({"128", "512", "2048"})
  public int context;

  /** decodeN: N sequences of one token; prefillN: one sequence, an N-token chunk. */
  @Param({"decode1", "decode32", "prefill32"})
  public String batch;

  /** How the cache stores K and V ({@code --kv-cache-dtype}). */
  @Param({"fp32", "bf16"})
  public String kvDtype;

  /** Compute threads of the backend (0 = all cores). */
  @Param("0")
  public int threads;

  /** Rotate over enough layers of K/V to fill this many MiB, at most the model's 20. */
  @Param("256")
  public int rotateMiB;

  // Package-private: JmhBenchmarksTest checks the result against the reference backend.
  private CpuBackend backend;
  AttentionShape shape;
  KvCache cache;
  BatchLayout layout;
  Buffer qkv; // [tokens × qkvDim]
  Buffer out; // [tokens × n_embd]
  int layer; // the layer the next call uses
  private double flopPerCall;
  private double bytesPerCall;

  @Setup(Level.Trial)
  public void setUp() {
    Matcher m = BATCH.matcher(batch);
    if (!m.matches()) {
      throw new IllegalArgumentException(
          "batch must be decodeN or prefillN (N >= 1), got '" + batch + "'");
    }
    boolean decode = m.group(1).equals("decode");
    int n = Integer.parseInt(m.group(2));
    if (!decode && n > context) {
      throw new IllegalArgumentException(
          "a prefill chunk of " + n + " tokens does not fit a context of " + context);
    }
    int seqs = decode ? n : 1;
    int blocksPerSeq = (context + BLOCK_SIZE - 1) / BLOCK_SIZE;
    int numBlocks = seqs * blocksPerSeq;
    KvDType dtype = KvDType.fromCliName(kvDtype);
    int kvDim = MODEL.kvDim();
    long layerBytes = 2L * numBlocks * BLOCK_SIZE * kvDim * dtype.byteSize();
    int layers =
        Math.clamp((((long) rotateMiB << 20) + layerBytes - 1) / layerBytes, 1, MODEL.nLayer());

    backend = new CpuBackend(computeThreads(threads));
    float scale = (float) (1.0 / Math.sqrt(MODEL.headDim()));
    shape = new AttentionShape(MODEL.nHead(), MODEL.kvHeads(), MODEL.headDim(), scale);
    cache = backend.allocateKvCache(layers, numBlocks, BLOCK_SIZE, kvDim, dtype);

    // Every block of the cache dealt out to the sequences in a shuffled order.
    SplittableRandom rnd = new SplittableRandom(7);
    int[] order = new int[numBlocks];
    for (int i = 0; i < numBlocks; i++) {
      int j = rnd.nextInt(i + 1);
      order[i] = order[j];
      order[j] = i;
    }
    int[][] tables = new int[seqs][blocksPerSeq];
    for (int s = 0; s < seqs; s++) {
      System.arraycopy(order, s * blocksPerSeq, tables[s], 0, blocksPerSeq);
    }

    // Earlier positions' K/V: random values, stored as the backend stores them.
    HostKvCache kv = HostKvCache.of(cache);
    float[] row = new float[kvDim];
    int slots = numBlocks * BLOCK_SIZE;
    for (int l = 0; l < layers; l++) {
      for (int slot = 0; slot < slots; slot++) {
        RandomData.fill(row, rnd.nextLong(), 1f);
        kv.storeKey(l, slot * kvDim, row, 0, kvDim);
        RandomData.fill(row, rnd.nextLong(), 1f);
        kv.storeValue(l, slot * kvDim, row, 0, kvDim);
      }
    }

    int[] ids = new int[n];
    int[] positions = new int[n];
    int[] slotMapping = new int[n];
    int[] tokenSeq = new int[n];
    for (int t = 0; t < n; t++) {
      int s = decode ? t : 0;
      int p = decode ? context - 1 : context - n + t;
      ids[t] = rnd.nextInt(MODEL.vocabSize());
      positions[t] = p;
      tokenSeq[t] = s;
      slotMapping[t] = tables[s][p / BLOCK_SIZE] * BLOCK_SIZE + p % BLOCK_SIZE;
    }
    layout = new BatchLayout(ids, positions, slotMapping, tokenSeq, tables, BLOCK_SIZE);
    qkv = backend.allocate(n, shape.qkvDim());
    out = backend.allocate(n, shape.outDim());
    RandomData.fill(HostBuffer.of(qkv).data(), 8, 1f);

    long attended = 0;
    for (int p : positions) {
      attended += p + 1;
    }
    flopPerCall = 4.0 * attended * MODEL.headDim() * MODEL.nHead();
    bytesPerCall =
        2.0 * seqs * context * kvDim * dtype.byteSize()
            + 4.0 * n * (shape.qkvDim() + shape.outDim());
  }

  @Benchmark
  public void attention(Work work) {
    backend.attention(qkv, layout, shape, cache, layer, out);
    layer = layer + 1 == cache.layers() ? 0 : layer + 1;
    work.add(flopPerCall, bytesPerCall);
  }

  @TearDown(Level.Trial)
  public void tearDown() {
    backend.close();
  }
}
