package dev.starserve.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.starserve.checkpoint.DType;
import dev.starserve.model.Activation;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The committed PTX against its source: same kernels, same constants as the Java side, and (where
 * the same nvcc is installed) byte for byte what build-ptx.sh makes of kernels.cu today.
 */
class CudaPtxTest {
  private static final Path CUDA_DIR = Path.of("src/main/cuda");

  private static String source() throws IOException {
    return Files.readString(CUDA_DIR.resolve("kernels.cu"));
  }

  private static String ptx() {
    byte[] z = CudaBackend.ptx();
    assertEquals(0, z[z.length - 1], "the PTX handed to the driver is NUL-terminated");
    return new String(z, 0, z.length - 1, StandardCharsets.US_ASCII);
  }

  private static Set<String> all(Pattern p, String text) {
    Set<String> s = new TreeSet<>();
    Matcher m = p.matcher(text);
    while (m.find()) {
      s.add(m.group(1));
    }
    return s;
  }

  @Test
  void thePtxHoldsEveryKernelOfTheSourceForComputeCapability80() throws IOException {
    Set<String> inSource = all(Pattern.compile("extern \"C\" __global__ void (\\w+)\\("), source());
    Set<String> inPtx = all(Pattern.compile("\\.visible \\.entry (\\w+)\\("), ptx());
    assertEquals(inSource, inPtx);
    assertTrue(
        inPtx.containsAll(
            Set.of(
                "embed",
                "layer_norm",
                "linear_f32",
                "linear_bf16",
                "linear_f16",
                "linear_gemv_f32",
                "linear_gemv_bf16",
                "linear_gemv_f16",
                "activation",
                "add_in_place",
                "gather_rows",
                "kv_store_f32",
                "kv_store_bf16",
                "attention_f32",
                "attention_bf16",
                "copy_f32")),
        inPtx.toString());
    assertTrue(ptx().contains("\n.target sm_80\n"), "PTX for compute_80");
  }

  private static int define(String src, String name) {
    Matcher m = Pattern.compile("#define " + name + " (\\d+)").matcher(src);
    assertTrue(m.find(), name + " is defined in kernels.cu");
    return Integer.parseInt(m.group(1));
  }

  @Test
  void theJavaSideUsesTheKernelsCodesAndTileSizes() throws IOException {
    String src = source();
    assertEquals(define(src, "DT_F32"), CudaBackend.code(DType.F32));
    assertEquals(define(src, "DT_BF16"), CudaBackend.code(DType.BF16));
    assertEquals(define(src, "DT_F16"), CudaBackend.code(DType.F16));
    assertEquals(define(src, "ACT_GELU_TANH"), CudaBackend.code(Activation.GELU_TANH));
    assertEquals(define(src, "ACT_GELU_ERF"), CudaBackend.code(Activation.GELU_ERF));
    assertEquals(define(src, "ACT_RELU"), CudaBackend.code(Activation.RELU));
    assertEquals(3, Activation.values().length, "a new activation needs a kernel");
    // The attention block's shared memory: q and acc rows, a padded K/V tile, scores, 3 per row.
    int tj = define(src, "ATT_TJ");
    assertEquals(tj, AttentionPlan.ATT_TJ);
    assertEquals(4 * (2 * 48 * 128 + tj * 129 + 48 * tj + 3 * 48), AttentionPlan.smem(1, 48, 128));
    assertEquals(define(src, "LIN_BM"), define(src, "LIN_BN"));
    assertEquals(define(src, "GEMV_MAX_TOKENS"), CudaBackend.GEMV_MAX_TOKENS);
  }

  @Test
  void theCommittedPtxIsWhatBuildPtxMakesOfTheSource(@TempDir Path tmp) throws Exception {
    String nvccVersion = run("nvcc", "--version");
    assumeTrue(nvccVersion != null, "nvcc is not installed: the PTX cannot be rebuilt here");
    String committed = ptx();
    // The PTX header names the compiler; another nvcc may write other (equally valid) PTX.
    String release =
        nvccVersion
            .lines()
            .filter(l -> l.startsWith("Cuda compilation tools"))
            .findFirst()
            .orElse("?");
    assumeTrue(
        committed.contains("// " + release + "\n"),
        "the PTX was made by another nvcc than " + release);
    Path out = tmp.resolve("kernels.ptx");
    String log = run(CUDA_DIR.resolve("build-ptx.sh").toString(), out.toString());
    assertTrue(log != null && Files.isRegularFile(out), "build-ptx.sh failed: " + log);
    byte[] fresh = Files.readAllBytes(out);
    byte[] z = CudaBackend.ptx();
    assertArrayEquals(
        fresh,
        Arrays.copyOf(z, z.length - 1),
        "kernels.ptx is stale: run worker/src/main/cuda/build-ptx.sh and commit the result");
  }

  /** Runs a command; its output, or null when it cannot start or fails. */
  private static String run(String... cmd) throws InterruptedException {
    try {
      Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (!p.waitFor(120, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        return null;
      }
      return p.exitValue() == 0 ? out : null;
    } catch (IOException e) {
      return null;
    }
  }
}
