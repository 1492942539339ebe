package dev.starserve.cli;

import dev.starserve.backend.Backend;
import dev.starserve.backend.Quantization;
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
      Backend backend = Devices.backend(device, threads, quantize);
      return new LoadedModel(
          md, tok, new GptBigCodeModel(md.config(), md.weights(), backend, quantize));
    } catch (RuntimeException e) {
      md.close();
      throw e;
    }
  }

  /** A new backend for {@code --device} holding unquantized weights ({@link Devices}). */
  static Backend backend(String device, int threads) {
    return Devices.backend(device, threads, Quantization.NONE);
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
