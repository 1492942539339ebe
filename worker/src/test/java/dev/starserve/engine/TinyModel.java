package dev.starserve.engine;

import dev.starserve.backend.KvDType;
import dev.starserve.backend.cpu.CpuBackend;
import dev.starserve.checkpoint.DType;
import dev.starserve.engine.sched.SchedulerConfig;
import dev.starserve.model.GptBigCodeConfig;
import dev.starserve.model.GptBigCodeModel;
import dev.starserve.model.ModelDirectory;
import dev.starserve.model.ModelShape;
import dev.starserve.model.RandomModelWriter;
import dev.starserve.text.Tokenizer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.function.LongSupplier;

/**
 * The model the engine tests run: the tiny shape with random weights (std 0.1), the real StarCoder
 * tokenizer, and 2048 positions so that prompts of 1000 tokens fit. EOS is id 0.
 */
final class TinyModel implements AutoCloseable {
  static final int[] EOS = {0};

  final ModelDirectory dir;
  final GptBigCodeModel model;
  final Tokenizer tokenizer;

  private TinyModel(ModelDirectory dir) {
    this.dir = dir;
    this.model = new GptBigCodeModel(dir.config(), dir.weights(), new CpuBackend(2));
    this.tokenizer = Tokenizer.load(dir.tokenizerJson(), dir.tokenizerConfigJson());
  }

  static TinyModel write(Path tmp) throws IOException {
    GptBigCodeConfig t = ModelShape.TINY.config();
    GptBigCodeConfig cfg =
        new GptBigCodeConfig(
            t.nEmbd(),
            t.nHead(),
            t.nLayer(),
            t.nInner(),
            2048,
            t.vocabSize(),
            true,
            t.layerNormEpsilon(),
            t.activation(),
            t.scaleAttnWeights(),
            0,
            0);
    Path p = tmp.resolve("tiny2048");
    RandomModelWriter.write(p, cfg, DType.F32, 17, 0.1, 1);
    return new TinyModel(ModelDirectory.open(p));
  }

  Engine engine(int numBlocks, int maxSeqs, int maxTokens, boolean prefixCaching) {
    return engine(numBlocks, maxSeqs, maxTokens, prefixCaching, System::nanoTime);
  }

  Engine engine(
      int numBlocks, int maxSeqs, int maxTokens, boolean prefixCaching, LongSupplier clock) {
    return new Engine(
        model,
        tokenizer,
        EOS,
        new EngineConfig(
            16, numBlocks, KvDType.FP32, new SchedulerConfig(maxSeqs, maxTokens), prefixCaching),
        clock);
  }

  static int[] randomPrompt(long seed, int n) {
    SplittableRandom r = new SplittableRandom(seed);
    int[] ids = new int[n];
    for (int i = 0; i < n; i++) {
      ids[i] = 1 + r.nextInt(49151);
    }
    return ids;
  }

  @Override
  public void close() {
    model.close();
    dir.close();
  }
}
