package dev.starserve.gateway.api.tgi;

import dev.starserve.gateway.GatewayLimits;
import dev.starserve.gateway.api.InvalidRequest;
import dev.starserve.gateway.api.Params;
import dev.starserve.proto.worker.v1.GenerateRequest;
import dev.starserve.proto.worker.v1.Prompt;
import dev.starserve.proto.worker.v1.Sampling;
import dev.starserve.proto.worker.v1.Stopping;
import dev.starserve.proto.worker.v1.WorkerInfo;
import io.vertx.core.json.JsonObject;

/** Validates TGI {@code {inputs, parameters}} bodies with TGI's ranges and messages. */
final class TgiRequests {
  /** TGI's default when max_new_tokens is absent. */
  static final int DEFAULT_MAX_NEW_TOKENS = 100;

  /** TGI's limit on top_n_tokens. */
  static final int MAX_TOP_N_TOKENS = 5;

  record Plan(
      String inputs,
      GenerateRequest request,
      boolean details,
      boolean decoderInputDetails,
      boolean returnFullText,
      int topNTokens,
      boolean sampled) {}

  private TgiRequests() {}

  static Plan parse(JsonObject body, WorkerInfo model, GatewayLimits limits, String id) {
    Params top = new Params(body, "");
    String inputs = top.requiredString("inputs");
    if (inputs.isEmpty()) {
      throw new InvalidRequest("inputs", "inputs cannot be empty");
    }
    if (inputs.length() > limits.maxPromptChars()) {
      throw new InvalidRequest(
          "inputs",
          "inputs must hold at most "
              + limits.maxPromptChars()
              + " characters, got "
              + inputs.length());
    }
    Params p = new Params(top.object("parameters"), "parameters.");
    Long bestOf = p.integer("best_of", 1L, 1, Long.MAX_VALUE);
    if (bestOf > 1) {
      throw new InvalidRequest(
          p.name("best_of"),
          "parameters.best_of must be 1 (best_of is not supported), got " + bestOf);
    }
    if (p.bool("watermark", false)) {
      throw new InvalidRequest(p.name("watermark"), "parameters.watermark is not supported");
    }
    for (String field : new String[] {"grammar", "adapter_id"}) {
      if (p.has(field)) {
        throw new InvalidRequest(p.name(field), p.name(field) + " is not supported");
      }
    }
    int maxNew =
        p.integer(
                "max_new_tokens",
                (long) Math.min(DEFAULT_MAX_NEW_TOKENS, limits.maxNewTokens()),
                1,
                limits.maxNewTokens())
            .intValue();
    Double temperature = p.number("temperature", null, 0, true, 100, false);
    Long topK = p.integer("top_k", null, 1, Integer.MAX_VALUE);
    Double topP = p.number("top_p", null, 0, true, 1, true);
    Double typicalP = p.number("typical_p", null, 0, true, 1, true);
    Double repetition = p.number("repetition_penalty", null, 0, true, 100, false);
    Double frequency = p.number("frequency_penalty", null, -2, false, 2, false);
    Long seed = p.integer("seed", null, 0, Long.MAX_VALUE);
    Long truncate = p.integer("truncate", null, 1, limits.maxPromptTokens());
    int topN =
        p.integer("top_n_tokens", 0L, 0, Math.min(MAX_TOP_N_TOKENS, limits.maxTopLogprobs()))
            .intValue();
    // NOTE: as in TGI, any warper (temperature != 1, top_k, top_p, typical_p) turns sampling on.
    boolean sampled =
        p.bool("do_sample", false)
            || (temperature != null && temperature != 1.0)
            || topK != null
            || topP != null
            || typicalP != null;
    Sampling.Builder sampling = Sampling.newBuilder();
    if (sampled) {
      sampling.setTemperature(temperature == null ? 1f : temperature.floatValue());
      if (topK != null) {
        sampling.setTopK(topK.intValue());
      }
      if (topP != null) {
        sampling.setTopP(topP.floatValue());
      }
      if (typicalP != null) {
        sampling.setTypicalP(typicalP.floatValue());
      }
      if (seed != null) {
        sampling.setSeed(seed);
      }
    }
    if (repetition != null) {
      sampling.setRepetitionPenalty(repetition.floatValue());
    }
    if (frequency != null) {
      sampling.setFrequencyPenalty(frequency.floatValue());
    }
    boolean decoderInputDetails = p.bool("decoder_input_details", false);
    // NOTE: TGI keeps a matched stop sequence in generated_text.
    Stopping stopping =
        Stopping.newBuilder()
            .setMaxNewTokens(maxNew)
            .addAllStopSequences(
                p.stringOrList("stop", limits.maxStopSequences(), limits.maxStopSequenceChars()))
            .setIncludeStopSequence(true)
            .build();
    GenerateRequest request =
        GenerateRequest.newBuilder()
            .setRequestId(id)
            .setModelId(model.getModelId())
            .setPrompt(Prompt.newBuilder().setText(inputs))
            .setSampling(sampling)
            .setStopping(stopping)
            .setTopLogprobs(topN)
            .setReturnPromptTokens(decoderInputDetails)
            .setPromptLogprobs(decoderInputDetails)
            .setTruncateInputTokens(truncate == null ? 0 : truncate.intValue())
            .build();
    return new Plan(
        inputs,
        request,
        p.bool("details", false),
        decoderInputDetails,
        p.bool("return_full_text", false),
        topN,
        sampled);
  }
}
