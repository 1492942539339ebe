package dev.starserve.bench.jmh;

import dev.starserve.backend.Buffer;
import dev.starserve.backend.cpu.CpuBackend;
import dev.starserve.backend.host.HostBuffer;
import dev.starserve.model.Activation;
import dev.starserve.model.GptBigCodeConfig;
import dev.starserve.model.ModelShape;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * The MLP activation of {@code tiny_starcoder_py} ({@code gelu_pytorch_tanh} over the 3072-wide
 * {@code c_fc} output) through {@link CpuBackend#activation} on {@code tokens} rows.
 *
 * <p>The backend applies it in place, and applied again and again the values would drift towards
 * zero and into subnormals (a slow path on most CPUs). So each {@link #geluTanh} call first copies
 * fresh inputs into the buffer; {@link #restoreOnly} times that copy alone, to subtract.
 *
 * <p>Counted ({@link Work}) for {@link #geluTanh}: {@code gbyte} = the rows read and written once
 * in float32 (the restore not counted); {@code gflop} = 0 (tanh is a call into the Vector API's
 * math library, not a fixed number of FLOP), so read the score as rows/s, or {@code gbyte}.
 */
@State(Scope.Benchmark)
public class GeluBench extends KernelBench {
  private static final GptBigCodeConfig MODEL = ModelShape.TINY_STARCODER_PY.config();

  @Param({"1", "32", "512"})
  public int tokens;

  /** Compute threads of the backend (0 = all cores). */
  @Param("0")
  public int threads;

  // Package-private: JmhBenchmarksTest checks the result against the scalar GELU.
  private CpuBackend backend;
  Buffer x; // [tokens × n_inner]
  float[] fresh; // [tokens × n_inner] the inputs, copied into x before each call
  private double bytesPerCall;

  @Setup(Level.Trial)
  public void setUp() {
    backend = new CpuBackend(computeThreads(threads));
    x = backend.allocate(tokens, MODEL.nInner());
    fresh = new float[tokens * MODEL.nInner()];
    // c_fc outputs: roughly N(0, 1), half of them negative.
    RandomData.fill(fresh, 4, 1f);
    bytesPerCall = 8.0 * fresh.length;
  }

  @Benchmark
  public void geluTanh(Work work) {
    System.arraycopy(fresh, 0, HostBuffer.of(x).data(), 0, fresh.length);
    backend.activation(x, tokens, Activation.GELU_TANH);
    work.add(0, bytesPerCall);
  }

  @Benchmark
  public void restoreOnly() {
    System.arraycopy(fresh, 0, HostBuffer.of(x).data(), 0, fresh.length);
  }

  @TearDown(Level.Trial)
  public void tearDown() {
    backend.close();
  }
}
