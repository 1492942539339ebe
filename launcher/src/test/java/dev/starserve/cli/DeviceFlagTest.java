package dev.starserve.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import com.fasterxml.jackson.databind.JsonNode;
import dev.starserve.backend.cuda.CudaProbe;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** --device as a user meets it on a machine without a usable GPU (skipped on one with). */
class DeviceFlagTest {
  @TempDir static Path tmp;
  static Path model;

  @BeforeAll
  static void makeModel() {
    assumeFalse(CudaProbe.get().usable(), "this machine has a usable GPU");
    model = tmp.resolve("tiny");
    CommandLineTest.Run r =
        CommandLineTest.run(
            "make-model",
            "--shape",
            "tiny",
            "--seed",
            "3",
            "--std",
            "0.1",
            "--out",
            model.toString());
    assertEquals(0, r.code(), r.err());
  }

  private static CommandLineTest.Run generate(String device) {
    return CommandLineTest.run(
        "generate",
        "--model",
        model.toString(),
        "--prompt-ids",
        "1,2,3",
        "--max-new-tokens",
        "3",
        "--logprobs",
        "2",
        "--json",
        "--threads",
        "1",
        "--device",
        device);
  }

  @Test
  void cudaWithoutAGpuFailsFastNamingTheFlagAndWhy() {
    CommandLineTest.Run r = generate("cuda");
    assertEquals(2, r.code(), r.err());
    assertTrue(
        r.err().startsWith("error: --device cuda: no usable GPU: " + CudaProbe.get().describe()),
        r.err());
    assertTrue(r.err().contains("use --device cpu, or --device auto"), r.err());
    assertEquals("", r.out());
  }

  @Test
  void autoWithoutAGpuGivesWhatTheCpuGives() throws Exception {
    CommandLineTest.Run cpu = generate("cpu");
    CommandLineTest.Run auto = generate("auto");
    assertEquals(0, cpu.code(), cpu.err());
    assertEquals(0, auto.code(), auto.err());
    // Same tokens and text; logprobs within 1e-4, not bit for bit: the two runs share one JVM, and
    // a Vector API kernel sums its lanes in another order before C2 compiles it than after.
    assertSame(Json.MAPPER.readTree(cpu.out()), Json.MAPPER.readTree(auto.out()), "$");
  }

  private static void assertSame(JsonNode expected, JsonNode actual, String path) {
    if (expected.isNumber() && expected.isFloatingPointNumber()) {
      assertTrue(actual.isNumber(), path + ": " + actual);
      assertEquals(expected.asDouble(), actual.asDouble(), 1e-4, path);
      return;
    }
    assertEquals(expected.getNodeType(), actual.getNodeType(), path);
    if (expected.isContainerNode()) {
      assertEquals(expected.size(), actual.size(), path + " size");
      if (expected.isArray()) {
        for (int i = 0; i < expected.size(); i++) {
          assertSame(expected.get(i), actual.get(i), path + "[" + i + "]");
        }
      } else {
        for (var names = expected.fieldNames(); names.hasNext(); ) {
          String name = names.next();
          assertTrue(actual.has(name), path + "." + name + " missing");
          assertSame(expected.get(name), actual.get(name), path + "." + name);
        }
      }
    } else {
      assertEquals(expected, actual, path);
    }
  }

  @Test
  void anUnknownDeviceIsAnErrorNamingTheChoices() {
    CommandLineTest.Run r = generate("tpu");
    assertEquals(2, r.code(), r.err());
    assertTrue(
        r.err().contains("--device must be cpu, cuda, auto or reference, got 'tpu'"), r.err());
  }
}
