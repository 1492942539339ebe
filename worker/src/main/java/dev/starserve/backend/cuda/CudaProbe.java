package dev.starserve.backend.cuda;

import java.util.Locale;
import jcuda.CudaException;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUresult;
import jcuda.driver.JCudaDriver;

/**
 * Whether this process can run the CUDA backend: asks the driver once (cuInit, driver version,
 * device count, and device 0's name, compute capability and memory) and remembers the answer.
 *
 * <p>NOTE: without the NVIDIA driver the first touch of {@link JCudaDriver} throws {@link
 * UnsatisfiedLinkError} (libcuda.so.1 missing) and every later touch {@link NoClassDefFoundError};
 * that is why the answer is computed once, with {@link LinkageError} caught, and cached. Nothing
 * else may touch JCuda before {@link #get()} says the GPU is usable.
 *
 * <p>Usable means: at least one device, device 0 of compute capability {@value #MIN_MAJOR}.0 or
 * newer (the PTX targets compute_80), and a driver of CUDA {@value #MIN_DRIVER_MAJOR} or newer
 * (nvcc 13 writes PTX ISA 9.0, which older drivers cannot JIT).
 */
public final class CudaProbe {
  private CudaProbe() {}

  /** Oldest compute capability (major) the committed PTX runs on: compute_80 (A100). */
  public static final int MIN_MAJOR = 8;

  /** Oldest driver (CUDA major version) that JIT-compiles PTX ISA 9.0. */
  public static final int MIN_DRIVER_MAJOR = 13;

  /**
   * The answer.
   *
   * @param usable whether the CUDA backend can run on device 0
   * @param reason why not, in words, for logs and errors (empty when usable)
   * @param deviceCount devices the driver reports (0 when it could not be asked)
   * @param deviceName device 0's name, or empty
   * @param major device 0's compute capability, major (0 if unknown)
   * @param minor device 0's compute capability, minor
   * @param totalMemory device 0's memory in bytes (0 if unknown)
   * @param driverVersion the driver's CUDA version as 1000·major + 10·minor (0 if unknown)
   */
  public record Result(
      boolean usable,
      String reason,
      int deviceCount,
      String deviceName,
      int major,
      int minor,
      long totalMemory,
      int driverVersion) {

    static Result unusable(String reason) {
      return new Result(false, reason, 0, "", 0, 0, 0, 0);
    }

    /** One line for logs: the device, or why there is none. */
    public String describe() {
      if (deviceName.isEmpty()) {
        return reason;
      }
      String dev =
          String.format(
              Locale.ROOT,
              "%s (compute capability %d.%d, %.1f GiB, driver CUDA %d.%d, %d device%s)",
              deviceName,
              major,
              minor,
              totalMemory / (double) (1L << 30),
              driverVersion / 1000,
              driverVersion % 1000 / 10,
              deviceCount,
              deviceCount == 1 ? "" : "s");
      return usable ? dev : dev + ": " + reason;
    }
  }

  private static Result cached;

  /** The remembered answer, asking the driver on the first call. Never throws. */
  public static synchronized Result get() {
    if (cached == null) {
      cached = ask();
    }
    return cached;
  }

  private static Result ask() {
    try {
      return query();
    } catch (LinkageError e) {
      return fromLinkageError(e);
    } catch (CudaException e) {
      return Result.unusable("the CUDA driver failed: " + e.getMessage());
    }
  }

  /** Maps a failure to load the native libraries to the reason a user needs. */
  static Result fromLinkageError(LinkageError e) {
    String msg = String.valueOf(e.getMessage());
    int at = msg.indexOf("libcuda");
    if (at >= 0) {
      // JCuda's message is a report of several attempts; the dynamic linker's words are the news.
      return Result.unusable(
          "no NVIDIA driver: libcuda.so.1 could not be loaded ("
              + firstLine(msg.substring(at)).trim()
              + ")");
    }
    return Result.unusable(
        "the JCuda driver binding could not be loaded ("
            + e.getClass().getSimpleName()
            + ": "
            + firstLine(msg)
            + ")");
  }

  private static String firstLine(String s) {
    int nl = s.indexOf('\n');
    return nl < 0 ? s : s.substring(0, nl);
  }

  /** A failed driver call, named as the driver names its error. */
  static String callFailed(String call, int code) {
    return call + " failed with " + CUresult.stringFor(code) + " (" + code + ")";
  }

  private static Result query() {
    JCudaDriver.setExceptionsEnabled(false);
    int rc = JCudaDriver.cuInit(0);
    if (rc == CUresult.CUDA_ERROR_NO_DEVICE) {
      return Result.unusable("the NVIDIA driver is installed but reports no CUDA device");
    }
    if (rc != CUresult.CUDA_SUCCESS) {
      return Result.unusable(callFailed("cuInit", rc));
    }
    int[] v = new int[1];
    rc = JCudaDriver.cuDriverGetVersion(v);
    if (rc != CUresult.CUDA_SUCCESS) {
      return Result.unusable(callFailed("cuDriverGetVersion", rc));
    }
    int driver = v[0];
    rc = JCudaDriver.cuDeviceGetCount(v);
    if (rc != CUresult.CUDA_SUCCESS) {
      return Result.unusable(callFailed("cuDeviceGetCount", rc));
    }
    int count = v[0];
    if (count == 0) {
      return Result.unusable("the NVIDIA driver reports no CUDA device");
    }
    CUdevice dev = new CUdevice();
    rc = JCudaDriver.cuDeviceGet(dev, 0);
    if (rc != CUresult.CUDA_SUCCESS) {
      return Result.unusable(callFailed("cuDeviceGet(0)", rc));
    }
    byte[] name = new byte[256];
    int[] major = new int[1];
    int[] minor = new int[1];
    long[] mem = new long[1];
    rc = JCudaDriver.cuDeviceGetName(name, name.length, dev);
    if (rc == CUresult.CUDA_SUCCESS) {
      rc =
          JCudaDriver.cuDeviceGetAttribute(
              major, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
    }
    if (rc == CUresult.CUDA_SUCCESS) {
      rc =
          JCudaDriver.cuDeviceGetAttribute(
              minor, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
    }
    if (rc == CUresult.CUDA_SUCCESS) {
      rc = JCudaDriver.cuDeviceTotalMem(mem, dev);
    }
    if (rc != CUresult.CUDA_SUCCESS) {
      return Result.unusable(callFailed("querying device 0", rc));
    }
    return evaluate(count, cString(name), major[0], minor[0], mem[0], driver);
  }

  /** Decides usability from what the driver said (separate so that tests can feed it). */
  static Result evaluate(
      int count, String name, int major, int minor, long totalMemory, int driverVersion) {
    String reason = "";
    if (major < MIN_MAJOR) {
      reason =
          "compute capability "
              + major
              + "."
              + minor
              + " is below the "
              + MIN_MAJOR
              + ".0 the CUDA kernels are built for";
    } else if (driverVersion < MIN_DRIVER_MAJOR * 1000) {
      reason =
          "the driver supports CUDA "
              + driverVersion / 1000
              + "."
              + driverVersion % 1000 / 10
              + "; the CUDA kernels need a CUDA "
              + MIN_DRIVER_MAJOR
              + " driver (r580 or newer)";
    }
    return new Result(
        reason.isEmpty(), reason, count, name, major, minor, totalMemory, driverVersion);
  }

  private static String cString(byte[] b) {
    int n = 0;
    while (n < b.length && b[n] != 0) {
      n++;
    }
    return new String(b, 0, n, java.nio.charset.StandardCharsets.UTF_8);
  }
}
