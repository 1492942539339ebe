package dev.starserve.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The CUDA kernels' source executed on the host (src/test/cuda/run-emulated.sh: one thread per CUDA
 * thread, barriers for __syncthreads and warp shuffles) against double-precision loops, with
 * CudaBackend's launch configurations: their indexing, tiling, masking and online softmax are
 * checked on machines without a GPU. Skipped without g++.
 */
class CudaKernelEmulationTest {

  @Test
  void everyKernelComputesWhatItsPlainLoopComputes(@TempDir Path build) throws Exception {
    Process p;
    try {
      p =
          new ProcessBuilder("src/test/cuda/run-emulated.sh", build.toString())
              .redirectErrorStream(true)
              .start();
    } catch (java.io.IOException e) {
      throw new AssertionError("cannot start run-emulated.sh", e);
    }
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(600, TimeUnit.SECONDS), "run-emulated.sh did not finish");
    assumeTrue(p.exitValue() != 2, "no C++ compiler: " + out);
    assertEquals(0, p.exitValue(), out);
    assertTrue(out.contains("all emulated kernel checks passed"), out);
  }
}
