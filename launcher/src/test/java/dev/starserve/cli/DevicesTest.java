package dev.starserve.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.starserve.backend.Quantization;
import dev.starserve.backend.cuda.CudaProbe;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;

/** How --device resolves against what the CUDA probe found (fed here, not asked of a driver). */
class DevicesTest {
  private static final CudaProbe.Result NO_DRIVER =
      new CudaProbe.Result(
          false,
          "no NVIDIA driver: libcuda.so.1 could not be loaded (libcuda.so.1: cannot open shared"
              + " object file)",
          0,
          "",
          0,
          0,
          0,
          0);
  private static final CudaProbe.Result H200 =
      new CudaProbe.Result(true, "", 1, "NVIDIA H200", 9, 0, 150L << 30, 13000);

  private static final Supplier<CudaProbe.Result> NEVER =
      () -> {
        throw new AssertionError("cpu and reference must not probe the driver");
      };

  @Test
  void cpuAndReferenceNeverProbe() {
    assertEquals(Devices.Kind.CPU, Devices.choose("cpu", Quantization.INT8, NEVER).kind());
    assertEquals(
        Devices.Kind.REFERENCE, Devices.choose("reference", Quantization.NONE, NEVER).kind());
  }

  @Test
  void cudaWithoutAUsableGpuFailsNamingTheFlagAndTheReason() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> Devices.choose("cuda", Quantization.NONE, () -> NO_DRIVER));
    assertEquals(
        "--device cuda: no usable GPU: no NVIDIA driver: libcuda.so.1 could not be loaded"
            + " (libcuda.so.1: cannot open shared object file); use --device cpu, or --device auto"
            + " to fall back to the CPU",
        e.getMessage());
  }

  @Test
  void cudaWithAGpuRunsThereAndSaysOnWhat() {
    Devices.Choice c = Devices.choose("cuda", Quantization.NONE, () -> H200);
    assertEquals(Devices.Kind.CUDA, c.kind());
    assertEquals(
        "--device cuda: running on NVIDIA H200 (compute capability 9.0, 150.0 GiB, driver CUDA"
            + " 13.0, 1 device)",
        c.logLine());
  }

  @Test
  void cudaCannotHoldInt8Weights() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> Devices.choose("cuda", Quantization.INT8, () -> H200));
    assertEquals(
        "--device cuda cannot hold --quantize int8 weights yet; use --quantize none, or --device"
            + " cpu",
        e.getMessage());
  }

  @Test
  void autoPicksTheGpuWhenUsableAndOtherwiseTheCpuSayingWhy() {
    Devices.Choice gpu = Devices.choose("auto", Quantization.NONE, () -> H200);
    assertEquals(Devices.Kind.CUDA, gpu.kind());
    assertEquals(
        "--device auto: running on the GPU, NVIDIA H200 (compute capability 9.0, 150.0 GiB,"
            + " driver CUDA 13.0, 1 device)",
        gpu.logLine());
    Devices.Choice cpu = Devices.choose("auto", Quantization.NONE, () -> NO_DRIVER);
    assertEquals(Devices.Kind.CPU, cpu.kind());
    assertEquals(
        "--device auto: running on the CPU (no NVIDIA driver: libcuda.so.1 could not be loaded"
            + " (libcuda.so.1: cannot open shared object file))",
        cpu.logLine());
    Devices.Choice int8 = Devices.choose("auto", Quantization.INT8, () -> H200);
    assertEquals(Devices.Kind.CPU, int8.kind());
  }

  @Test
  void anUnknownDeviceNamesTheAllowedOnes() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class, () -> Devices.choose("gpu", Quantization.NONE, NEVER));
    assertEquals("--device must be cpu, cuda, auto or reference, got 'gpu'", e.getMessage());
  }
}
