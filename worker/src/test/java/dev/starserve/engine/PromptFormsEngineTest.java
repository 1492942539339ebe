package dev.starserve.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.starserve.backend.KvDType;
import dev.starserve.backend.cpu.CpuBackend;
import dev.starserve.engine.sched.SchedulerConfig;
import dev.starserve.generate.GreedyGenerator;
import dev.starserve.model.ForcedTokenModelWriter;
import dev.starserve.model.GptBigCodeConfig;
import dev.starserve.model.GptBigCodeModel;
import dev.starserve.model.ModelDirectory;
import dev.starserve.model.ModelShape;
import dev.starserve.prompt.ChatMessage;
import dev.starserve.prompt.PromptResolver;
import dev.starserve.prompt.PromptSpec;
import dev.starserve.prompt.PromptTokenizers;
import dev.starserve.prompt.ResolvedPrompt;
import dev.starserve.sample.SamplingParams;
import dev.starserve.text.Tokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Fill-in-the-middle and chat requests through the whole path a server takes: {@link
 * PromptResolver} with the real StarCoder tokenizer (the files of
 * /work/shared/models/starcoder-tokenizer, shipped as the worker's resources), the format's stops
 * added with {@link StoppingParams#withFormatStops}, then the engine.
 */
class PromptFormsEngineTest {
  @TempDir static Path tmp;
  static TinyModel tiny;

  /** The StarChat tokenizer: StarCoder's plus <|system|> 49152 … <|end|> 49155. */
  static Tokenizer starChat;

  /** Models whose greedy choice is always <|end|>, or always EOS (0); 49156 tokens. */
  static ModelDirectory endDir;

  static ModelDirectory eosDir;
  static GptBigCodeModel alwaysEnd;
  static GptBigCodeModel alwaysEos;

  static final int END = 49155;

  @BeforeAll
  static void open() throws Exception {
    tiny = TinyModel.write(tmp);
    Path tok = Files.createDirectory(tmp.resolve("starchat-tokenizer"));
    starChat = PromptTokenizers.load(tok, PromptTokenizers.starChatJson(), null);
    GptBigCodeConfig t = ModelShape.TINY.config();
    GptBigCodeConfig cfg =
        new GptBigCodeConfig(
            t.nEmbd(),
            t.nHead(),
            t.nLayer(),
            t.nInner(),
            t.nPositions(),
            49156,
            true,
            t.layerNormEpsilon(),
            t.activation(),
            t.scaleAttnWeights(),
            0,
            0);
    ForcedTokenModelWriter.write(tmp.resolve("always-end"), cfg, END);
    ForcedTokenModelWriter.write(tmp.resolve("always-eos"), cfg, 0);
    endDir = ModelDirectory.open(tmp.resolve("always-end"));
    eosDir = ModelDirectory.open(tmp.resolve("always-eos"));
    alwaysEnd = new GptBigCodeModel(endDir.config(), endDir.weights(), new CpuBackend(2));
    alwaysEos = new GptBigCodeModel(eosDir.config(), eosDir.weights(), new CpuBackend(2));
  }

  @AfterAll
  static void close() {
    tiny.close();
    alwaysEnd.close();
    alwaysEos.close();
    endDir.close();
    eosDir.close();
  }

  static Engine engine(GptBigCodeModel model, Tokenizer tokenizer) {
    return new Engine(
        model,
        tokenizer,
        TinyModel.EOS,
        new EngineConfig(16, 64, KvDType.FP32, new SchedulerConfig(8, 256), true));
  }

  static EngineRequest request(ResolvedPrompt p, StoppingParams stopping, boolean promptLogprobs) {
    return new EngineRequest(
        "r",
        p.ids(),
        SamplingParams.greedy(),
        stopping.withFormatStops(p.stopTokenIds(), p.stopSequences()),
        1,
        0,
        promptLogprobs,
        0,
        0);
  }

  @Test
  void aFillInTheMiddleRequestRunsTheExactPsmPromptIds() {
    // <fim_prefix> "def print_hello" <fim_suffix> "def geometric_mean(L: List[float]):"
    // <fim_middle>
    // with the ids HF's tokenizer gives those texts (recorded by TGI's StarCoder tests)
    int[] expected = {
      1, 589, 1459, 81, 7656, 3, 589, 3226, 21017, 81, 6009, 26, 62, 44, 1682, 77, 1808, 10794, 2
    };
    int[] reference =
        new GreedyGenerator(tiny.model, tiny.tokenizer, TinyModel.EOS)
            .generate(expected, 4, 0, t -> {}).tokens().stream().mapToInt(t -> t.id()).toArray();
    ResolvedPrompt p =
        new PromptResolver(tiny.tokenizer)
            .resolve(
                new PromptSpec.FillInTheMiddle(
                    "def print_hello", "def geometric_mean(L: List[float]):"));
    try (Engine e = tiny.engine(512, 8, 256, true)) {
      CollectingSink s = new CollectingSink(1);
      e.submit(request(p, new StoppingParams(4, 0, true, null, null, false, 0), true), s);
      FinishEvent f = s.await().finish(0);

      assertEquals(expected.length, f.promptTokens());
      // prompt logprobs name every prompt token after the first: the ids the engine ran
      int[] ran =
          f.promptLogprobs().stream().mapToInt(FinishEvent.PromptLogprob::tokenId).toArray();
      assertArrayEquals(java.util.Arrays.copyOfRange(expected, 1, expected.length), ran);
      assertArrayEquals(reference, s.ids(0));
    }
  }

  static CollectingSink run(GptBigCodeModel model, EngineRequest r) {
    try (Engine e = engine(model, starChat)) {
      CollectingSink s = new CollectingSink(1);
      e.submit(r, s);
      return s.await();
    }
  }

  static final List<ChatMessage> CHAT = List.of(ChatMessage.user("def print_hello"));

  @Test
  void aChatRequestStopsAtTheEndOfTurnToken() {
    ResolvedPrompt chat = new PromptResolver(starChat).resolve(new PromptSpec.Chat(CHAT));

    CollectingSink s = run(alwaysEnd, request(chat, StoppingParams.maxTokens(8), false));

    assertEquals(FinishReason.EOS_TOKEN, s.finish(0).reason());
    assertArrayEquals(new int[] {END}, s.ids(0));
    assertEquals("", s.text(0));
    assertEquals(13, s.finish(0).promptTokens()); // the StarChat prompt of PromptResolverTest
    // Control: the same prompt ids without the chat format's stops run on through <|end|>.
    CollectingSink plain =
        run(
            alwaysEnd,
            request(
                new ResolvedPrompt(chat.ids(), new int[0], List.of()),
                StoppingParams.maxTokens(8),
                false));
    assertEquals(FinishReason.LENGTH, plain.finish(0).reason());
    assertArrayEquals(new int[] {END, END, END, END, END, END, END, END}, plain.ids(0));
  }

  @Test
  void aChatRequestStopsAtEosTooUnlessItIgnoresEos() {
    ResolvedPrompt chat = new PromptResolver(starChat).resolve(new PromptSpec.Chat(CHAT));

    CollectingSink s = run(alwaysEos, request(chat, StoppingParams.maxTokens(8), false));

    assertEquals(FinishReason.EOS_TOKEN, s.finish(0).reason());
    assertArrayEquals(new int[] {0}, s.ids(0));
    CollectingSink ignoring =
        run(alwaysEos, request(chat, new StoppingParams(3, 0, true, null, null, false, 0), false));
    assertEquals(FinishReason.LENGTH, ignoring.finish(0).reason());
    assertArrayEquals(new int[] {0, 0, 0}, ignoring.ids(0));
  }
}
