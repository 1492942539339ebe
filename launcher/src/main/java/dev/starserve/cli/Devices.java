package dev.starserve.cli;

import dev.starserve.backend.Backend;
import dev.starserve.backend.Quantization;
import dev.starserve.backend.cpu.CpuBackend;
import dev.starserve.backend.cuda.CudaBackend;
import dev.starserve.backend.cuda.CudaProbe;
import dev.starserve.backend.ref.ReferenceBackend;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code --device}: which backend runs the model.
 *
 * <ul>
 *   <li>{@code cpu} (the default): the Vector API backend;
 *   <li>{@code cuda}: device 0 through JCuda, failing at once, with the reason, when there is no
 *       usable GPU;
 *   <li>{@code auto}: CUDA when {@link CudaProbe} finds a usable GPU (and the weights can be held
 *       there), else the CPU, saying which in one log line;
 *   <li>{@code reference}: the scalar oracle (slow, exact).
 * </ul>
 *
 * NOTE: the default stays {@code cpu} while the CUDA backend has not been verified on a GPU: with
 * {@code auto} as the default, every GPU machine would run unverified kernels unasked.
 */
final class Devices {
  private Devices() {}

  private static final Logger LOG = LoggerFactory.getLogger(Devices.class);

  /** The option's help text (the same on every command). */
  static final String DESCRIPTION =
      "cpu, cuda (NVIDIA GPU 0; not yet verified on a GPU), auto (cuda when a usable GPU is"
          + " found, else cpu) or reference (the scalar oracle) (default: ${DEFAULT-VALUE})";

  /** The backends a device name resolves to. */
  enum Kind {
    CPU,
    CUDA,
    REFERENCE
  }

  /** A resolved {@code --device}: the backend and the line to log (empty: nothing to say). */
  record Choice(Kind kind, String logLine) {}

  /**
   * Resolves {@code device}; the probe is asked only for {@code cuda} and {@code auto}.
   *
   * @throws IllegalArgumentException for an unknown name, or {@code cuda} without a usable GPU or
   *     with weights it cannot hold
   */
  static Choice choose(String device, Quantization quantize, Supplier<CudaProbe.Result> probe) {
    return switch (device) {
      case "cpu" -> new Choice(Kind.CPU, "");
      case "reference" -> new Choice(Kind.REFERENCE, "");
      case "cuda" -> {
        CudaProbe.Result p = probe.get();
        if (!p.usable()) {
          throw new IllegalArgumentException(
              "--device cuda: no usable GPU: "
                  + p.describe()
                  + "; use --device cpu, or --device auto to fall back to the CPU");
        }
        if (quantize != Quantization.NONE) {
          throw new IllegalArgumentException(
              "--device cuda cannot hold --quantize "
                  + quantize.cliName()
                  + " weights yet; use --quantize none, or --device cpu");
        }
        yield new Choice(Kind.CUDA, "--device cuda: running on " + p.describe());
      }
      case "auto" -> {
        CudaProbe.Result p = probe.get();
        if (!p.usable()) {
          yield new Choice(Kind.CPU, "--device auto: running on the CPU (" + p.describe() + ")");
        }
        if (quantize != Quantization.NONE) {
          yield new Choice(
              Kind.CPU,
              "--device auto: running on the CPU (the CUDA backend cannot hold --quantize "
                  + quantize.cliName()
                  + " weights; GPU "
                  + p.describe()
                  + " left unused)");
        }
        yield new Choice(Kind.CUDA, "--device auto: running on the GPU, " + p.describe());
      }
      default ->
          throw new IllegalArgumentException(
              "--device must be cpu, cuda, auto or reference, got '" + device + "'");
    };
  }

  /** A new backend for {@code --device}, logging the choice for {@code cuda} and {@code auto}. */
  static Backend backend(String device, int threads, Quantization quantize) {
    Choice c = choose(device, quantize, CudaProbe::get);
    if (!c.logLine().isEmpty()) {
      LOG.info(c.logLine());
    }
    return switch (c.kind()) {
      case CPU -> new CpuBackend(threads);
      case REFERENCE -> new ReferenceBackend();
      case CUDA -> new CudaBackend();
    };
  }
}
