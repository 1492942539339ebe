package dev.starserve.gateway.api.fmaas;

import dev.starserve.gateway.GatewayLimits;
import dev.starserve.gateway.api.InvalidRequest;
import dev.starserve.proto.fmaas.DecodingMethod;
import dev.starserve.proto.fmaas.DecodingParameters;
import dev.starserve.proto.fmaas.Parameters;
import dev.starserve.proto.fmaas.ResponseOptions;
import dev.starserve.proto.fmaas.SamplingParameters;
import dev.starserve.proto.fmaas.StoppingCriteria;
import dev.starserve.proto.worker.v1.GenerateRequest;
import dev.starserve.proto.worker.v1.Prompt;
import dev.starserve.proto.worker.v1.Sampling;
import dev.starserve.proto.worker.v1.Stopping;
import java.util.ArrayList;
import java.util.List;

/** TGIS parameter semantics and validation, turning fmaas requests into worker requests. */
final class FmaasRequests {
  /** TGIS's default when stopping.max_new_tokens is 0. */
  static final int DEFAULT_MAX_NEW_TOKENS = 20;

  /** TGIS's limit on response.top_n_tokens. */
  static final int MAX_TOP_N_TOKENS = 5;

  /** Alternatives asked of the engine when only ranks are wanted (a rank is found among them). */
  static final int RANK_WINDOW = 5;

  private FmaasRequests() {}

  static void rejectAdapters(boolean hasPrefix, String prefix, boolean hasAdapter, String adapter) {
    if (hasPrefix && !prefix.isEmpty()) {
      throw new InvalidRequest("prefix_id", "prefix_id is not supported (no prompt tuning)");
    }
    if (hasAdapter && !adapter.isEmpty()) {
      throw new InvalidRequest("adapter_id", "adapter_id is not supported (no adapters)");
    }
  }

  /** Whether the parameters sample (SAMPLE with a temperature that is unset or above 0). */
  static boolean sampled(Parameters params) {
    if (params.getMethod() != DecodingMethod.SAMPLE) {
      return false;
    }
    SamplingParameters s = params.getSampling();
    return !s.hasTemperature() || s.getTemperature() > 0;
  }

  static List<GenerateRequest> requests(
      String model, List<String> texts, Parameters params, GatewayLimits limits, String id) {
    if (texts.isEmpty()) {
      throw new InvalidRequest("requests", "requests must hold at least one request");
    }
    if (texts.size() > limits.maxN()) {
      throw new InvalidRequest(
          "requests", "requests may hold at most " + limits.maxN() + ", got " + texts.size());
    }
    long chars = 0;
    for (String text : texts) {
      chars += text.length();
    }
    if (chars > limits.maxPromptChars()) {
      throw new InvalidRequest(
          "requests.text",
          "requests.text must hold at most "
              + limits.maxPromptChars()
              + " characters in all, got "
              + chars);
    }
    GenerateRequest.Builder template =
        GenerateRequest.newBuilder()
            .setModelId(model)
            .setSampling(sampling(params))
            .setStopping(stopping(params.getStopping(), limits));
    ResponseOptions response = params.getResponse();
    if (response.getTopNTokens() > Math.min(MAX_TOP_N_TOKENS, limits.maxTopLogprobs())) {
      throw new InvalidRequest(
          "params.response.top_n_tokens",
          "params.response.top_n_tokens must be in [0, "
              + Math.min(MAX_TOP_N_TOKENS, limits.maxTopLogprobs())
              + "], got "
              + response.getTopNTokens());
    }
    int top = response.getTopNTokens();
    if (response.getTokenRanks() && response.getGeneratedTokens()) {
      top = Math.max(top, Math.min(RANK_WINDOW, limits.maxTopLogprobs()));
    }
    template
        .setTopLogprobs(top)
        .setReturnPromptTokens(response.getInputTokens())
        .setPromptLogprobs(response.getInputTokens() && response.getTokenLogprobs());
    decoding(params.getDecoding(), template);
    if (params.getTruncateInputTokens() > limits.maxPromptTokens()) {
      throw new InvalidRequest(
          "params.truncate_input_tokens",
          "params.truncate_input_tokens must be in [0, "
              + limits.maxPromptTokens()
              + "], got "
              + params.getTruncateInputTokens());
    }
    template.setTruncateInputTokens(params.getTruncateInputTokens());
    List<GenerateRequest> out = new ArrayList<>(texts.size());
    for (int i = 0; i < texts.size(); i++) {
      out.add(
          template
              .clone()
              .setRequestId(id + "-" + i)
              .setPrompt(Prompt.newBuilder().setText(texts.get(i)))
              .build());
    }
    return out;
  }

  private static Sampling sampling(Parameters params) {
    Sampling.Builder b = Sampling.newBuilder();
    if (params.getMethod() != DecodingMethod.SAMPLE) {
      return b.build(); // NOTE: TGIS ignores the sampling parameters for GREEDY.
    }
    SamplingParameters s = params.getSampling();
    float temperature = s.hasTemperature() ? s.getTemperature() : 1f;
    check(
        "params.sampling.temperature",
        temperature >= 0 && temperature <= 100,
        "[0, 100]",
        temperature);
    check("params.sampling.top_p", s.getTopP() >= 0 && s.getTopP() <= 1, "[0, 1]", s.getTopP());
    check(
        "params.sampling.typical_p",
        s.getTypicalP() >= 0 && s.getTypicalP() <= 1,
        "[0, 1]",
        s.getTypicalP());
    b.setTemperature(temperature).setTopK(s.getTopK()).setTopP(s.getTopP());
    b.setTypicalP(s.getTypicalP());
    if (s.hasSeed()) {
      b.setSeed(s.getSeed());
    }
    return b.build();
  }

  private static Stopping stopping(StoppingCriteria s, GatewayLimits limits) {
    int max = s.getMaxNewTokens() == 0 ? DEFAULT_MAX_NEW_TOKENS : s.getMaxNewTokens();
    if (max > limits.maxNewTokens()) {
      throw new InvalidRequest(
          "params.stopping.max_new_tokens",
          "params.stopping.max_new_tokens must be in [0, "
              + limits.maxNewTokens()
              + "], got "
              + Integer.toUnsignedString(max));
    }
    if (Integer.compareUnsigned(s.getMinNewTokens(), max) > 0) {
      throw new InvalidRequest(
          "params.stopping.min_new_tokens",
          "params.stopping.min_new_tokens must be in [0, max_new_tokens = "
              + max
              + "], got "
              + Integer.toUnsignedString(s.getMinNewTokens()));
    }
    if (s.getStopSequencesCount() > limits.maxStopSequences()) {
      throw new InvalidRequest(
          "params.stopping.stop_sequences",
          "params.stopping.stop_sequences may hold at most "
              + limits.maxStopSequences()
              + " sequences, got "
              + s.getStopSequencesCount());
    }
    for (String stop : s.getStopSequencesList()) {
      if (stop.isEmpty() || stop.length() > limits.maxStopSequenceChars()) {
        throw new InvalidRequest(
            "params.stopping.stop_sequences",
            "params.stopping.stop_sequences must be 1 to "
                + limits.maxStopSequenceChars()
                + " characters long, got "
                + stop.length());
      }
    }
    return Stopping.newBuilder()
        .setMaxNewTokens(max)
        .setMinNewTokens(s.getMinNewTokens())
        .setTimeLimitMillis(s.getTimeLimitMillis())
        .addAllStopSequences(s.getStopSequencesList())
        .setIncludeStopSequence(s.hasIncludeStopSequence() && s.getIncludeStopSequence())
        .build();
  }

  private static void decoding(DecodingParameters d, GenerateRequest.Builder template) {
    if (d.hasLengthPenalty()) {
      throw new InvalidRequest(
          "params.decoding.length_penalty", "params.decoding.length_penalty is not supported");
    }
    boolean guided =
        switch (d.getGuidedCase()) {
          case GUIDED_NOT_SET -> false;
          case FORMAT -> d.getFormat() != DecodingParameters.ResponseFormat.TEXT;
          default -> true;
        };
    if (guided) {
      String field =
          "params.decoding." + d.getGuidedCase().name().toLowerCase(java.util.Locale.ROOT);
      throw new InvalidRequest(field, field + " (guided decoding) is not supported");
    }
    check(
        "params.decoding.repetition_penalty",
        d.getRepetitionPenalty() >= 0 && d.getRepetitionPenalty() <= 100,
        "[0, 100]",
        d.getRepetitionPenalty());
    template.getSamplingBuilder().setRepetitionPenalty(d.getRepetitionPenalty());
  }

  private static void check(String field, boolean ok, String range, float got) {
    if (!ok) {
      throw new InvalidRequest(field, field + " must be in " + range + ", got " + got);
    }
  }
}
