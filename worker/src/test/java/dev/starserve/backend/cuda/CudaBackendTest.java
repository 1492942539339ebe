package dev.starserve.backend.cuda;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * GPU only: every CUDA kernel against the reference backend on random inputs, and the tiny model's
 * forward pass ({@link CudaSelfCheck} holds the checks). Each is skipped where {@link CudaProbe}
 * finds no usable GPU.
 */
class CudaBackendTest {
  private static CudaBackend gpu;

  static List<CudaSelfCheck.Check> checks() {
    return CudaSelfCheck.checks();
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("checks")
  void matchesTheReferenceBackend(CudaSelfCheck.Check check) {
    CudaProbe.Result probe = CudaProbe.get();
    assumeTrue(probe.usable(), () -> "no usable GPU: " + probe.describe());
    if (gpu == null) {
      gpu = new CudaBackend();
    }
    check.body().accept(gpu);
  }

  @AfterAll
  static void close() {
    if (gpu != null) {
      gpu.close();
    }
  }
}
