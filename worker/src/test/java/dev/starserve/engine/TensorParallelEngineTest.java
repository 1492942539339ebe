package dev.starserve.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.backend.KvDType;
import dev.starserve.backend.Quantization;
import dev.starserve.backend.cpu.CpuBackend;
import dev.starserve.engine.sched.SchedulerConfig;
import dev.starserve.model.LanguageModel;
import dev.starserve.model.parallel.TensorParallelModel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The engine driving a tensor-parallel model (two ranks on the CPU backend) gives the same greedy
 * tokens, and logprobs within 1e-4, as the engine driving the unsharded model: batched requests,
 * prefills chunked under a small token budget, shared prefixes served from the prefix cache.
 */
class TensorParallelEngineTest {
  @TempDir static Path tmp;
  static TinyModel tiny;
  static TensorParallelModel tp2;

  @BeforeAll
  static void open() throws Exception {
    tiny = TinyModel.write(tmp);
    tp2 =
        new TensorParallelModel(
            tiny.dir.config(), tiny.dir.weights(), 2, r -> new CpuBackend(1), Quantization.NONE);
  }

  @AfterAll
  static void close() {
    tp2.close();
    tiny.close();
  }

  static final int GEN = 8;

  /** 12 prompts of 1 to 300 tokens; the last four share a 40-token prefix. */
  static List<int[]> prompts() {
    List<int[]> out = new ArrayList<>();
    SplittableRandom r = new SplittableRandom(9);
    for (int i = 0; i < 8; i++) {
      out.add(TinyModel.randomPrompt(200 + i, i == 0 ? 1 : 1 + r.nextInt(300)));
    }
    int[] prefix = TinyModel.randomPrompt(300, 40);
    for (int i = 0; i < 4; i++) {
      int[] tail = TinyModel.randomPrompt(400 + i, 5 + i);
      int[] p = new int[prefix.length + tail.length];
      System.arraycopy(prefix, 0, p, 0, prefix.length);
      System.arraycopy(tail, 0, p, prefix.length, tail.length);
      out.add(p);
    }
    return out;
  }

  static List<CollectingSink> run(LanguageModel model, List<int[]> prompts) {
    EngineConfig config =
        new EngineConfig(16, 512, KvDType.FP32, new SchedulerConfig(16, 64), true);
    try (Engine e = new Engine(model, tiny.tokenizer, TinyModel.EOS, config)) {
      List<CollectingSink> sinks = new ArrayList<>();
      for (int i = 0; i < prompts.size(); i++) {
        CollectingSink s = new CollectingSink(1);
        e.submit(EngineRequest.greedy("r" + i, prompts.get(i), GEN), s);
        sinks.add(s);
      }
      sinks.forEach(CollectingSink::await);
      return sinks;
    }
  }

  @Test
  void batchedRequestsOnTwoRanksGiveTheTokensOfOneRank() {
    List<int[]> prompts = prompts();
    List<CollectingSink> one = run(tiny.model, prompts);
    List<CollectingSink> two = run(tp2, prompts);
    int tokens = 0;
    for (int i = 0; i < prompts.size(); i++) {
      assertArrayEquals(one.get(i).ids(0), two.get(i).ids(0), "request " + i);
      assertArrayEquals(one.get(i).logprobs(0), two.get(i).logprobs(0), 1e-4, "request " + i);
      assertEquals(one.get(i).text(0), two.get(i).text(0), "request " + i);
      tokens += one.get(i).ids(0).length;
    }
    assertTrue(tokens > prompts.size(), "the requests generated tokens: " + tokens);
  }
}
