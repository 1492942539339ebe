package dev.starserve.cli;

import dev.starserve.backend.Backend;
import dev.starserve.backend.Quantization;
import dev.starserve.backend.cuda.CudaProbe;
import dev.starserve.model.GptBigCodeModel;
import dev.starserve.model.LanguageModel;
import dev.starserve.model.ModelDirectory;
import dev.starserve.model.parallel.TensorParallelModel;
import dev.starserve.text.Tokenizer;
import java.nio.file.Path;

/** A model directory opened for running: checkpoint, tokenizer, backend and forward pass. */
record LoadedModel(ModelDirectory dir, Tokenizer tokenizer, LanguageModel model)
    implements AutoCloseable {

  static LoadedModel open(Path modelDir, String device, int threads) {
    return open(modelDir, device, threads, Quantization.NONE);
  }

  /**
   * Opens {@code modelDir} on {@code device}, the linear layers' weights held as {@code quantize}.
   */
  static LoadedModel open(Path modelDir, String device, int threads, Quantization quantize) {
    return open(modelDir, device, threads, quantize, 1);
  }

  /**
   * Opens {@code modelDir} on {@code device}, split over {@code tensorParallelSize} ranks when that
   * is above 1.
   */
  static LoadedModel open(
      Path modelDir, String device, int threads, Quantization quantize, int tensorParallelSize) {
    ModelDirectory md = ModelDirectory.open(modelDir);
    try {
      Tokenizer tok = Tokenizer.load(md.tokenizerJson(), md.tokenizerConfigJson());
      if (tensorParallelSize != 1) {
        return new LoadedModel(
            md, tok, tensorParallel(md, device, threads, quantize, tensorParallelSize));
      }
      Backend backend = Devices.backend(device, threads, quantize);
      return new LoadedModel(
          md, tok, new GptBigCodeModel(md.config(), md.weights(), backend, quantize));
    } catch (RuntimeException e) {
      md.close();
      throw e;
    }
  }

  /**
   * {@code --tensor-parallel-size n}: n ranks, each on its own {@code --device} backend with {@code
   * threads / n} compute threads (at least one). Host backends only: the CUDA backend has no
   * all-reduce yet.
   */
  private static LanguageModel tensorParallel(
      ModelDirectory md, String device, int threads, Quantization quantize, int n) {
    TensorParallelModel.checkSize(md.config(), n); // before any backend starts threads
    Devices.Choice choice = Devices.choose(device, quantize, CudaProbe::get);
    if (choice.kind() == Devices.Kind.CUDA) {
      throw new IllegalArgumentException(
          "--tensor-parallel-size "
              + n
              + " with --device "
              + device
              + ": tensor parallelism runs on the CPU only for now (the CUDA backend has no"
              + " all-reduce yet); use --tensor-parallel-size 1, or --device cpu");
    }
    if (!choice.logLine().isEmpty()) {
      org.slf4j.LoggerFactory.getLogger(LoadedModel.class).info(choice.logLine());
    }
    int perRank = Math.max(1, threads / n);
    String host = choice.kind() == Devices.Kind.REFERENCE ? "reference" : "cpu";
    return new TensorParallelModel(
        md.config(), md.weights(), n, r -> Devices.backend(host, perRank, quantize), quantize);
  }

  static int defaultThreads() {
    return Runtime.getRuntime().availableProcessors();
  }

  @Override
  public void close() {
    model.close();
    dir.close();
  }
}
