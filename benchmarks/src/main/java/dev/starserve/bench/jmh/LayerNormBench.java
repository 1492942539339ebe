package dev.starserve.bench.jmh;

import dev.starserve.backend.Buffer;
import dev.starserve.backend.Matrix;
import dev.starserve.backend.cpu.CpuBackend;
import dev.starserve.backend.host.HostBuffer;
import dev.starserve.checkpoint.DType;
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
 * {@code ln_1}/{@code ln_2}/{@code ln_f} of {@code tiny_starcoder_py} (768 wide, epsilon 1e-5)
 * through {@link CpuBackend#layerNorm} on {@code tokens} rows, gamma and beta in the checkpoint's
 * dtype as the model uploads them.
 *
 * <p>Counted ({@link Work}): {@code gbyte} = the rows read once and written once in float32, plus
 * gamma and beta; {@code gflop} = 7 FLOP per element (mean, variance, normalize, scale and shift;
 * the square root per row left out). At these sizes the rows stay in the caches, as they do in the
 * model between the residual add and the next linear layer.
 */
@State(Scope.Benchmark)
public class LayerNormBench extends KernelBench {
  private static final GptBigCodeConfig MODEL = ModelShape.TINY_STARCODER_PY.config();

  @Param({"1", "32", "512"})
  public int tokens;

  /** The dtype of gamma and beta in the checkpoint. */
  @Param({"f32", "bf16", "f16"})
  public String weights;

  /** Compute threads of the backend (0 = all cores). */
  @Param("0")
  public int threads;

  // Package-private: JmhBenchmarksTest checks the result against the reference backend.
  private CpuBackend backend;
  private Arena arena;
  Matrix gamma; // [1 × n_embd]
  Matrix beta; // [1 × n_embd]
  Buffer x; // [tokens × n_embd]
  Buffer out; // [tokens × n_embd]
  private double flopPerCall;
  private double bytesPerCall;

  @Setup(Level.Trial)
  public void setUp() {
    int d = MODEL.nEmbd();
    DType dtype = RandomData.dtype(weights);
    backend = new CpuBackend(computeThreads(threads));
    arena = Arena.ofShared();
    gamma = backend.upload(RandomData.tensor(arena, "ln_1.weight", dtype, 1, 1f, 0.1f, d));
    beta = backend.upload(RandomData.tensor(arena, "ln_1.bias", dtype, 2, 0f, 0.1f, d));
    x = backend.allocate(tokens, d);
    out = backend.allocate(tokens, d);
    RandomData.fill(HostBuffer.of(x).data(), 3, 1f);
    flopPerCall = 7.0 * tokens * d;
    bytesPerCall = 8.0 * tokens * d + 2.0 * d * dtype.byteSize();
  }

  @Benchmark
  public void layerNorm(Work work) {
    backend.layerNorm(x, tokens, gamma, beta, MODEL.layerNormEpsilon(), out);
    work.add(flopPerCall, bytesPerCall);
  }

  @TearDown(Level.Trial)
  public void tearDown() {
    backend.close();
    arena.close();
  }
}
