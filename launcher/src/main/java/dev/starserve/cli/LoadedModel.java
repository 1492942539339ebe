package dev.starserve.cli;

import dev.starserve.backend.Backend;
import dev.starserve.backend.Quantization;
import dev.starserve.backend.cpu.CpuBackend;
import dev.starserve.backend.ref.ReferenceBackend;
import dev.starserve.model.GptBigCodeModel;
import dev.starserve.model.ModelDirectory;
import dev.starserve.text.Tokenizer;
import java.nio.file.Path;

/** A model directory opened for running: checkpoint, tokenizer, backend and forward pass. */
record LoadedModel(ModelDirectory dir, Tokenizer tokenizer, GptBigCodeModel model)
    implements AutoCloseable {

  static LoadedModel open(Path modelDir, String device, int threads) {
    return open(modelDir, device, threads, Quantization.NONE);
  }

  /**
   * Opens {@code modelDir} on {@code device}, the linear layers' weights held as {@code quantize}.
   */
  static LoadedModel open(Path modelDir, String device, int threads, Quantization quantize) {
    ModelDirectory md = ModelDirectory.open(modelDir);
    try {
      Tokenizer tok = Tokenizer.load(md.tokenizerJson(), md.tokenizerConfigJson());
      Backend backend = backend(device, threads);
      return new LoadedModel(
          md, tok, new GptBigCodeModel(md.config(), md.weights(), backend, quantize));
    } catch (RuntimeException e) {
      md.close();
      throw e;
    }
  }

  /** A new backend for {@code --device}. */
  static Backend backend(String device, int threads) {
    return switch (device) {
      case "cpu" -> new CpuBackend(threads);
      case "reference" -> new ReferenceBackend();
      default ->
          throw new IllegalArgumentException(
              "--device must be cpu or reference, got '" + device + "'");
    };
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
