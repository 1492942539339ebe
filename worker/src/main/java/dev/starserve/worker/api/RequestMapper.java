package dev.starserve.worker.api;

import dev.starserve.engine.EngineRequest;
import dev.starserve.engine.StoppingParams;
import dev.starserve.prompt.ChatMessage;
import dev.starserve.prompt.PromptResolver;
import dev.starserve.prompt.PromptSpec;
import dev.starserve.prompt.ResolvedPrompt;
import dev.starserve.proto.worker.v1.GenerateRequest;
import dev.starserve.proto.worker.v1.Sampling;
import dev.starserve.proto.worker.v1.Stopping;
import dev.starserve.sample.SamplingParams;
import java.util.ArrayList;
import java.util.List;
import java.util.random.RandomGenerator;

/**
 * Turns a wire {@link GenerateRequest} into an {@link EngineRequest}: resolves the prompt with the
 * model's tokenizer and formats, maps the proto's "0 means off" defaults onto the engine's
 * parameters, and validates. Every problem is an {@link IllegalArgumentException} whose message
 * names the field and the allowed range (the service answers it as INVALID_ARGUMENT).
 */
final class RequestMapper {
  static final int MAX_REQUEST_ID_LENGTH = 256;

  private final PromptResolver resolver;
  private final String modelId;
  private final int maxContext;
  private final RandomGenerator seeds;

  RequestMapper(PromptResolver resolver, String modelId, int maxContext, RandomGenerator seeds) {
    this.resolver = resolver;
    this.modelId = modelId;
    this.maxContext = maxContext;
    this.seeds = seeds;
  }

  /** The engine request, with the seed it samples with (picked here when the request has none). */
  EngineRequest map(GenerateRequest g) {
    String id = g.getRequestId();
    if (id.isEmpty() || id.length() > MAX_REQUEST_ID_LENGTH) {
      throw new IllegalArgumentException(
          "request_id must be 1 to " + MAX_REQUEST_ID_LENGTH + " characters, got " + id.length());
    }
    if (!g.getModelId().isEmpty() && !g.getModelId().equals(modelId)) {
      throw new IllegalArgumentException(
          "model_id must be empty or '" + modelId + "', got '" + g.getModelId() + "'");
    }
    ResolvedPrompt prompt = resolver.resolve(prompt(g));
    if (prompt.ids().length == 0) {
      throw new IllegalArgumentException("prompt has no tokens: give at least one");
    }
    Sampling s = g.getSampling();
    long seed = s.hasSeed() ? s.getSeed() : seeds.nextLong();
    SamplingParams sampling =
        new SamplingParams(
            s.getTemperature(),
            nonNegative("sampling.top_k", s.getTopK()),
            s.getTopP() == 0 ? 1 : s.getTopP(),
            s.getTypicalP() == 0 ? 1 : s.getTypicalP(),
            s.getMinP(),
            s.getRepetitionPenalty() == 0 ? 1 : s.getRepetitionPenalty(),
            s.getPresencePenalty(),
            s.getFrequencyPenalty(),
            seed);
    Stopping st = g.getStopping();
    int maxNew = nonNegative("stopping.max_new_tokens", st.getMaxNewTokens());
    if (maxNew > maxContext) {
      throw new IllegalArgumentException(
          "stopping.max_new_tokens must be in [0, "
              + maxContext
              + "] (the model's context; 0 = up to the context), got "
              + maxNew);
    }
    int[] stopIds = new int[st.getStopTokenIdsCount()];
    for (int i = 0; i < stopIds.length; i++) {
      stopIds[i] = nonNegative("stopping.stop_token_ids", st.getStopTokenIds(i));
    }
    StoppingParams stopping =
        new StoppingParams(
                maxNew == 0 ? maxContext : maxNew,
                nonNegative("stopping.min_new_tokens", st.getMinNewTokens()),
                st.getIgnoreEos(),
                stopIds,
                st.getStopSequencesList(),
                st.getIncludeStopSequence(),
                Integer.toUnsignedLong(st.getTimeLimitMillis()))
            .withFormatStops(prompt.stopTokenIds(), prompt.stopSequences());
    int[] resume = new int[g.getResumeTokenIdsCount()];
    for (int i = 0; i < resume.length; i++) {
      resume[i] = nonNegative("resume_token_ids", g.getResumeTokenIds(i));
    }
    int topLogprobs = nonNegative("top_logprobs", g.getTopLogprobs());
    if (topLogprobs > EngineRequest.MAX_LOGPROBS) {
      throw new IllegalArgumentException(
          "top_logprobs must be in [0, " + EngineRequest.MAX_LOGPROBS + "], got " + topLogprobs);
    }
    return new EngineRequest(
        id,
        prompt.ids(),
        sampling,
        stopping,
        1,
        topLogprobs,
        g.getPromptLogprobs(),
        g.getPriority(),
        nonNegative("truncate_input_tokens", g.getTruncateInputTokens()),
        resume);
  }

  private static PromptSpec prompt(GenerateRequest g) {
    var p = g.getPrompt();
    return switch (p.getKindCase()) {
      case TEXT -> new PromptSpec.Text(p.getText());
      case TOKEN_IDS -> {
        int[] ids = new int[p.getTokenIds().getIdsCount()];
        for (int i = 0; i < ids.length; i++) {
          ids[i] = nonNegative("prompt.token_ids", p.getTokenIds().getIds(i));
        }
        yield new PromptSpec.Ids(ids);
      }
      case FIM -> new PromptSpec.FillInTheMiddle(p.getFim().getPrefix(), p.getFim().getSuffix());
      case CHAT -> {
        List<ChatMessage> messages = new ArrayList<>();
        for (var m : p.getChat().getMessagesList()) {
          messages.add(new ChatMessage(m.getRole(), m.getContent()));
        }
        yield new PromptSpec.Chat(messages);
      }
      case KIND_NOT_SET ->
          throw new IllegalArgumentException(
              "prompt must be given as one of text, token_ids, fim, chat");
    };
  }

  /** A uint32 field as an int: values beyond 2^31 - 1 arrive negative and are out of range. */
  private static int nonNegative(String field, int value) {
    if (value < 0) {
      throw new IllegalArgumentException(
          field + " must be in [0, 2147483647], got " + Integer.toUnsignedString(value));
    }
    return value;
  }
}
