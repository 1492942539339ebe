package dev.starserve.bench.jmh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.starserve.backend.Buffer;
import dev.starserve.backend.host.Gelu;
import dev.starserve.backend.host.HostBuffer;
import dev.starserve.backend.ref.ReferenceBackend;
import dev.starserve.sample.LogProbs;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.runner.BenchmarkList;
import org.openjdk.jmh.runner.BenchmarkListEntry;

/**
 * The JMH benchmarks are found and forked with the right flags, and each one computes what it
 * claims to on the data it claims to (compared with the reference backend), so that no benchmark
 * times a kernel on a wrong layout or on zeros. Nothing here is timed.
 */
class JmhBenchmarksTest {
  private static final List<Class<?>> BENCHMARKS =
      List.of(
          LinearBench.class,
          AttentionBench.class,
          LayerNormBench.class,
          GeluBench.class,
          SamplerBench.class);
  private static final double ATOL = 1e-5;
  private static final double RTOL = 1e-4;

  private static List<BenchmarkListEntry> benchmarkList() throws IOException {
    try (InputStream in =
        JmhBenchmarksTest.class.getResourceAsStream(BenchmarkList.BENCHMARK_LIST)) {
      assertNotNull(
          in,
          BenchmarkList.BENCHMARK_LIST
              + " is missing: the JMH annotation processor did not run (annotationProcessorPaths)");
      return BenchmarkList.readBenchmarkList(in);
    }
  }

  @Test
  void generatedBenchmarkListHoldsEveryBenchmarkMethodOfEveryBenchmarkClass() throws IOException {
    TreeSet<String> expected = new TreeSet<>();
    for (Class<?> c : BENCHMARKS) {
      for (Method m : c.getDeclaredMethods()) {
        if (m.isAnnotationPresent(Benchmark.class)) {
          expected.add(c.getName() + "." + m.getName());
        }
      }
    }
    assertEquals(6, expected.size(), "benchmark methods found by reflection: " + expected);
    TreeSet<String> listed = new TreeSet<>();
    for (BenchmarkListEntry e : benchmarkList()) {
      listed.add(e.getUsername());
    }
    assertEquals(expected, listed);
  }

  @Test
  void everyForkGetsTheKernelFlagsFromTheParentPom() throws IOException {
    String pomFlags = System.getProperty("starserve.jvm.flags");
    assertNotNull(pomFlags, "surefire passes the parent pom's starserve.jvm.flags");
    List<String> pom = normalize(Arrays.asList(pomFlags.trim().split("\\s+")));
    List<String> fork =
        List.of(
            KernelBench.ADD_VECTOR_MODULE,
            KernelBench.ENABLE_NATIVE_ACCESS,
            KernelBench.ALLOW_UNSAFE_MEMORY_ACCESS);
    assertTrue(pom.containsAll(fork), "fork flags " + fork + " not all in the pom's " + pom);
    for (BenchmarkListEntry e : benchmarkList()) {
      Collection<String> append = e.getJvmArgsAppend().orElse(List.of());
      assertEquals(List.copyOf(fork), List.copyOf(append), e.getUsername() + " jvmArgsAppend");
    }
  }

  /** {@code --add-modules X} and {@code --add-modules=X} are the same flag. */
  private static List<String> normalize(List<String> flags) {
    List<String> out = new ArrayList<>();
    for (int i = 0; i < flags.size(); i++) {
      String f = flags.get(i);
      if (f.startsWith("--") && !f.contains("=") && i + 1 < flags.size()) {
        String value = flags.get(i + 1);
        if (!value.startsWith("-")) {
          out.add(f + "=" + value);
          i++;
          continue;
        }
      }
      out.add(f);
    }
    return out;
  }

  @Test
  void defaultParametersCoverTheDecodeAndPrefillShapesOfTheIssue() throws IOException {
    Map<String, Map<String, String[]>> params = new TreeMap<>();
    for (BenchmarkListEntry e : benchmarkList()) {
      params.put(e.getUsername(), e.getParams().orElse(Map.of()));
    }
    Map<String, String[]> linear = params.get(LinearBench.class.getName() + ".linear");
    assertEquals(
        List.of("1", "8", "32", "128", "512"), Arrays.asList(linear.get("tokens")), "tokens");
    assertEquals(
        List.of("f32", "bf16", "f16", "int8"), Arrays.asList(linear.get("weights")), "weights");
    Map<String, String[]> attention = params.get(AttentionBench.class.getName() + ".attention");
    assertEquals(List.of("128", "512", "2048"), Arrays.asList(attention.get("context")));
  }

  @ParameterizedTest
  @CsvSource({"f32, 1", "bf16, 1", "f16, 8", "bf16, 8", "int8, 1", "int8, 8"})
  void linearComputesTheProductOfItsWeightAsTheReferenceBackendDoes(String weights, int tokens) {
    LinearBench b = new LinearBench();
    b.layer = "attn.c_attn";
    b.weights = weights;
    b.tokens = tokens;
    b.threads = 2;
    b.rotateMiB = 2; // bf16: two copies, so the rotation is exercised
    b.setUp();
    Work work = new Work();
    try (ReferenceBackend ref = new ReferenceBackend();
        Arena arena = Arena.ofShared()) {
      b.linear(work);
      b.linear(work); // the second copy of the weight gives the same result
      int in = b.x.cols();
      int out = b.out.cols();
      assertEquals(768, in);
      assertEquals(768 + 2 * 64, out);
      // int8: the reference backend quantizes the same bf16 weight (its scalar twin).
      var w =
          ref.uploadLinear(
              RandomData.tensor(
                  arena,
                  "w",
                  LinearBench.sourceDtype(weights),
                  LinearBench.WEIGHT_SEED,
                  0,
                  0.02f,
                  out,
                  in),
              weights.equals("int8")
                  ? dev.starserve.backend.Quantization.INT8
                  : dev.starserve.backend.Quantization.NONE);
      Buffer expected = ref.allocate(tokens, out);
      ref.linear(b.x, tokens, w, b.bias, expected);
      assertClose(data(expected), data(b.out), tokens * out, "linear " + weights);
      assertEquals(2 * 2.0 * tokens * in * out * 1e-9, work.gflop, 1e-12);
    } finally {
      b.tearDown();
    }
  }

  @ParameterizedTest
  @CsvSource({
    "decode1, fp32",
    "decode3, fp32",
    "prefill5, fp32",
    "decode3, bf16",
    "prefill5, bf16"
  })
  void attentionOverThePagedCacheMatchesTheReferenceBackend(String batch, String kvDtype) {
    AttentionBench b = new AttentionBench();
    b.context = 40; // not a whole number of blocks
    b.batch = batch;
    b.kvDtype = kvDtype;
    b.threads = 2;
    b.rotateMiB = 0;
    b.setUp();
    try (ReferenceBackend ref = new ReferenceBackend()) {
      int n = b.layout.numTokens();
      for (int t = 0; t < n; t++) {
        assertTrue(b.layout.positions()[t] < 40);
      }
      assertEquals(39, b.layout.positions()[n - 1], "the last token attends to all 40 positions");
      b.attention(new Work());
      Buffer expected = ref.allocate(n, b.out.cols());
      ref.attention(b.qkv, b.layout, b.shape, b.cache, 0, expected);
      assertClose(data(expected), data(b.out), n * b.out.cols(), "attention " + batch);
    } finally {
      b.tearDown();
    }
  }

  @Test
  void layerNormMatchesTheReferenceBackend() {
    LayerNormBench b = new LayerNormBench();
    b.tokens = 5;
    b.weights = "bf16";
    b.threads = 2;
    b.setUp();
    try (ReferenceBackend ref = new ReferenceBackend()) {
      b.layerNorm(new Work());
      Buffer expected = ref.allocate(5, 768);
      ref.layerNorm(b.x, 5, b.gamma, b.beta, 1e-5f, expected);
      assertClose(data(expected), data(b.out), 5 * 768, "layerNorm");
    } finally {
      b.tearDown();
    }
  }

  @Test
  void geluStartsFromFreshInputsOnEveryCall() {
    GeluBench b = new GeluBench();
    b.tokens = 3;
    b.threads = 2;
    b.setUp();
    try {
      b.geluTanh(new Work());
      b.geluTanh(new Work()); // applied to fresh inputs, not to the last output
      float[] expected = new float[b.fresh.length];
      for (int i = 0; i < expected.length; i++) {
        expected[i] = Gelu.tanh(b.fresh[i]);
      }
      assertClose(expected, data(b.x), expected.length, "gelu");
    } finally {
      b.tearDown();
    }
  }

  @Test
  void greedySamplingPicksTheArgmaxOfEachRowInTurn() {
    SamplerBench b = new SamplerBench();
    b.mode = "greedy";
    b.logitStd = 2f;
    b.setUp();
    for (int i = 0; i < 20; i++) {
      float[] row = b.logits[b.row];
      assertEquals(LogProbs.argmax(row, 0, row.length), b.sample());
    }
  }

  private static float[] data(Buffer b) {
    return HostBuffer.of(b).data();
  }

  private static void assertClose(float[] ref, float[] got, int n, String what) {
    boolean nonZero = false;
    for (int i = 0; i < n; i++) {
      nonZero |= ref[i] != 0;
      if (!(Math.abs(got[i] - ref[i]) <= ATOL + RTOL * Math.abs(ref[i]))) {
        fail(what + ": element " + i + " is " + got[i] + ", reference " + ref[i]);
      }
    }
    assertTrue(nonZero, what + ": the reference is all zeros");
  }
}
