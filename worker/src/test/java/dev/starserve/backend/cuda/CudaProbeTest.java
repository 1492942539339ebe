package dev.starserve.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import org.junit.jupiter.api.Test;

/** The probe's answer on this machine, and how it judges what a driver reports. */
class CudaProbeTest {

  @Test
  void probeNeverThrowsAndRemembersItsAnswer() {
    CudaProbe.Result first = CudaProbe.get();
    assertSame(first, CudaProbe.get());
    assertEquals(first.usable(), first.reason().isEmpty(), first.toString());
  }

  @Test
  void withoutAUsableGpuTheReasonIsSaidAndTheBackendRefusesToOpen() {
    CudaProbe.Result r = CudaProbe.get();
    assumeFalse(r.usable(), "this machine has a usable GPU");
    assertFalse(r.describe().isBlank());
    IllegalStateException e = assertThrows(IllegalStateException.class, CudaBackend::new);
    assertTrue(e.getMessage().startsWith("no usable CUDA GPU: "), e.getMessage());
    assertTrue(e.getMessage().contains(r.describe()), e.getMessage());
  }

  @Test
  void aMissingDriverLibraryIsNamed() {
    CudaProbe.Result r =
        CudaProbe.fromLinkageError(
            new UnsatisfiedLinkError(
                "Error while loading native library \"JCudaDriver-12.0.0-linux-x86_64\"\n"
                    + "Stack trace from the attempt to load the library as a resource:\n"
                    + "java.lang.UnsatisfiedLinkError: /tmp/libJCudaDriver-12.0.0-linux-x86_64.so:"
                    + " libcuda.so.1: cannot open shared object file: No such file or directory\n"
                    + "\tat java.base/jdk.internal.loader.NativeLibraries.load(Native Method)"));
    assertFalse(r.usable());
    assertEquals(
        "no NVIDIA driver: libcuda.so.1 could not be loaded (libcuda.so.1: cannot open shared"
            + " object file: No such file or directory)",
        r.reason());
    CudaProbe.Result other = CudaProbe.fromLinkageError(new NoClassDefFoundError("jcuda/Pointer"));
    assertTrue(other.reason().contains("NoClassDefFoundError: jcuda/Pointer"), other.reason());
  }

  @Test
  void failedDriverCallsAreNamedWithTheDriversErrorName() {
    assertEquals(
        "cuInit failed with CUDA_ERROR_NO_DEVICE (100)", CudaProbe.callFailed("cuInit", 100));
  }

  @Test
  void anAmpereOrNewerGpuOnACuda13DriverIsUsable() {
    CudaProbe.Result h200 = CudaProbe.evaluate(1, "NVIDIA H200", 9, 0, 150L << 30, 13000);
    assertTrue(h200.usable());
    assertEquals(
        "NVIDIA H200 (compute capability 9.0, 150.0 GiB, driver CUDA 13.0, 1 device)",
        h200.describe());
  }

  @Test
  void anOlderGpuOrDriverIsNotUsableAndSaysWhy() {
    CudaProbe.Result t4 = CudaProbe.evaluate(2, "Tesla T4", 7, 5, 15L << 30, 13000);
    assertFalse(t4.usable());
    assertTrue(
        t4.describe()
            .endsWith(": compute capability 7.5 is below the 8.0 the CUDA kernels are built for"),
        t4.describe());
    CudaProbe.Result oldDriver = CudaProbe.evaluate(1, "NVIDIA A100", 8, 0, 80L << 30, 12040);
    assertFalse(oldDriver.usable());
    assertTrue(oldDriver.reason().contains("the driver supports CUDA 12.4"), oldDriver.reason());
  }
}
