package dev.starserve.bench.jmh;

import dev.starserve.backend.Buffer;
import dev.starserve.backend.Matrix;
import dev.starserve.backend.Quantization;
import dev.starserve.backend.cpu.CpuBackend;
import dev.starserve.backend.host.HostBuffer;
import dev.starserve.backend.host.Int8Quantizer;
import dev.starserve.checkpoint.DType;
import dev.starserve.checkpoint.TensorView;
import dev.starserve.model.GptBigCodeConfig;
import dev.starserve.model.ModelShape;
import java.lang.foreign.Arena;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * One linear layer of {@code tiny_starcoder_py} through {@link CpuBackend#linear}: {@code out[t] =
 * x[t] · wᵀ + bias} for {@code tokens} rows, the weight packed by {@link CpuBackend#uploadLinear}
 * as the model packs it. One token is a decode step (reads the whole weight for 2 FLOP per weight:
 * bandwidth-bound); 8 to 512 tokens are a decode batch or a prefill chunk (compute-bound).
 *
 * <p>{@code weights=int8} quantizes a bf16 weight at upload ({@code --quantize int8}: blocks of 32
 * input columns, one float32 scale each) and keeps a bf16 bias.
 *
 * <p>Counted ({@link Work}): {@code gflop} = 2 · tokens · in · out; {@code gbyte} = the weight once
 * as held (int8: 36 bytes per 32 weights), the bias, {@code tokens} input rows and {@code tokens}
 * output rows in float32.
 *
 * <p>NOTE: in the model the weights of 20 layers pass between two uses of one weight, so each is
 * read from memory, never from the caches. To measure the same, the weight is uploaded several
 * times (at least {@code rotateMiB} MiB in all) and each call uses the next copy; {@code
 * rotateMiB=0} keeps one copy, which stays in the caches when it fits.
 */
@State(Scope.Benchmark)
public class LinearBench extends KernelBench {
  private static final GptBigCodeConfig MODEL = ModelShape.TINY_STARCODER_PY.config();

  /** The layer, named as in the checkpoint ({@code transformer.h.N.attn.c_attn} etc.). */
  @Param({"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj", "lm_head"})
  public String layer;

  /**
   * The weights' dtype in the checkpoint.
   *
   * <p>INT8: when int8 weights land ({@code --quantize int8}, branch int8), add "int8" here and
   * upload the quantized weight in {@link #uploadWeight}; the rest of this benchmark stays as it
   * is.
   */
  @Param({"f32", "bf16", "f16", "int8"})
  public String weights;

  /** Rows of x: 1 = one decode token; more = a decode batch or a prefill chunk. */
  @Param({"1", "8", "32", "128", "512"})
  public int tokens;

  /** Compute threads of the backend (0 = all cores). */
  @Param("0")
  public int threads;

  /** At least this many MiB of weight copies, used in turn (0 = one copy). */
  @Param("256")
  public int rotateMiB;

  static final long WEIGHT_SEED = 1;

  // Package-private: JmhBenchmarksTest checks the result against the reference backend.
  private CpuBackend backend;
  private Arena arena;
  private Matrix[] w; // copies of [out × in], packed
  Matrix bias; // [1 × out] or null (lm_head has none)
  Buffer x; // [tokens × in]
  Buffer out; // [tokens × out]
  private int next;
  private double flopPerCall;
  private double bytesPerCall;

  @Setup(Level.Trial)
  public void setUp() {
    int in;
    int outDim;
    boolean hasBias = true;
    switch (layer) {
      case "attn.c_attn" -> {
        in = MODEL.nEmbd();
        outDim = MODEL.qkvDim();
      }
      case "attn.c_proj" -> {
        in = MODEL.nEmbd();
        outDim = MODEL.nEmbd();
      }
      case "mlp.c_fc" -> {
        in = MODEL.nEmbd();
        outDim = MODEL.nInner();
      }
      case "mlp.c_proj" -> {
        in = MODEL.nInner();
        outDim = MODEL.nEmbd();
      }
      case "lm_head" -> {
        in = MODEL.nEmbd();
        outDim = MODEL.vocabSize();
        hasBias = false;
      }
      default ->
          throw new IllegalArgumentException(
              "layer must be one of attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj, lm_head, got '"
                  + layer
                  + "'");
    }
    backend = new CpuBackend(computeThreads(threads));
    arena = Arena.ofShared();
    boolean int8 = weights.equals("int8");
    DType dtype = sourceDtype(weights);
    long weightBytes =
        int8
            ? (long) outDim * Int8Quantizer.blocks(in) * (Int8Quantizer.BLOCK + 4)
            : (long) outDim * in * dtype.byteSize();
    int copies = (int) Math.max(1, (((long) rotateMiB << 20) + weightBytes - 1) / weightBytes);
    w = new Matrix[copies];
    try (Arena source = Arena.ofShared()) {
      TensorView t =
          RandomData.tensor(source, layer + ".weight", dtype, WEIGHT_SEED, 0, 0.02f, outDim, in);
      for (int i = 0; i < copies; i++) {
        w[i] = uploadWeight(t);
      }
    }
    bias =
        hasBias
            ? backend.upload(RandomData.tensor(arena, layer + ".bias", dtype, 2, 0, 0.02f, outDim))
            : null;
    x = backend.allocate(tokens, in);
    out = backend.allocate(tokens, outDim);
    RandomData.fill(HostBuffer.of(x).data(), 3, 1f);
    flopPerCall = 2.0 * tokens * in * outDim;
    bytesPerCall =
        weightBytes
            + (hasBias ? (double) outDim * dtype.byteSize() : 0)
            + 4.0 * tokens * (in + outDim);
  }

  /** Prepares one copy of the weight as the model does. */
  private Matrix uploadWeight(TensorView t) {
    return backend.uploadLinear(t, weights.equals("int8") ? Quantization.INT8 : Quantization.NONE);
  }

  /** The checkpoint dtype a {@code weights} value starts from (int8: quantized from bf16). */
  static DType sourceDtype(String weights) {
    return RandomData.dtype(weights.equals("int8") ? "bf16" : weights);
  }

  @Benchmark
  public void linear(Work work) {
    Matrix m = w[next];
    next = next + 1 == w.length ? 0 : next + 1;
    backend.linear(x, tokens, m, bias, out);
    work.add(flopPerCall, bytesPerCall);
  }

  @TearDown(Level.Trial)
  public void tearDown() {
    backend.close();
    arena.close();
  }
}
