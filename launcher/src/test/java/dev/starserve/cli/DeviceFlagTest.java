package dev.starserve.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

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
  void autoWithoutAGpuGivesExactlyWhatTheCpuGives() {
    CommandLineTest.Run cpu = generate("cpu");
    CommandLineTest.Run auto = generate("auto");
    assertEquals(0, cpu.code(), cpu.err());
    assertEquals(0, auto.code(), auto.err());
    assertEquals(cpu.out(), auto.out());
  }

  @Test
  void anUnknownDeviceIsAnErrorNamingTheChoices() {
    CommandLineTest.Run r = generate("tpu");
    assertEquals(2, r.code(), r.err());
    assertTrue(
        r.err().contains("--device must be cpu, cuda, auto or reference, got 'tpu'"), r.err());
  }
}
