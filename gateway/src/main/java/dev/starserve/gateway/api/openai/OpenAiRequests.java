package dev.starserve.gateway.api.openai;

import dev.starserve.gateway.GatewayLimits;
import dev.starserve.gateway.api.InvalidRequest;
import dev.starserve.gateway.api.Params;
import dev.starserve.proto.worker.v1.Chat;
import dev.starserve.proto.worker.v1.ChatMessage;
import dev.starserve.proto.worker.v1.FillInTheMiddle;
import dev.starserve.proto.worker.v1.GenerateRequest;
import dev.starserve.proto.worker.v1.Prompt;
import dev.starserve.proto.worker.v1.Sampling;
import dev.starserve.proto.worker.v1.Stopping;
import dev.starserve.proto.worker.v1.TokenIds;
import dev.starserve.proto.worker.v1.WorkerInfo;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.ArrayList;
import java.util.List;

/**
 * Validates OpenAI completion and chat bodies and turns them into worker {@link GenerateRequest}s:
 * one per prompt and choice, choice {@code index = prompt × n + sample}.
 */
final class OpenAiRequests {
  /** OpenAI's own limit on stop sequences. */
  static final int OPENAI_MAX_STOP = 4;

  /**
   * A validated request: the sequences to run, in choice order.
   *
   * @param echoTexts per prompt, the text to echo (null: take it from the prompt tokens)
   * @param logprobs completions: alternatives per token, or -1 for none; chat: top_logprobs or -1
   */
  record Plan(
      String model,
      List<GenerateRequest> requests,
      int n,
      boolean stream,
      boolean includeUsage,
      int logprobs,
      boolean echo,
      List<String> echoTexts) {}

  private OpenAiRequests() {}

  /** The body's {@code model}, checked only for presence and type. */
  static String model(JsonObject body) {
    return new Params(body, "").requiredString("model");
  }

  static Plan completion(JsonObject body, WorkerInfo model, GatewayLimits limits, String id) {
    Params p = new Params(body, "");
    rejectUnsupported(p);
    Object prompt = p.raw("prompt");
    if (prompt == null) {
      throw new InvalidRequest("prompt", "prompt is required");
    }
    String suffix = p.string("suffix", null);
    if (suffix != null && !model.getSupportsFim()) {
      throw new InvalidRequest(
          "suffix", "suffix (fill-in-the-middle) is not supported by model " + model.getModelId());
    }
    boolean echo = p.bool("echo", false);
    if (echo && suffix != null) {
      throw new InvalidRequest("echo", "echo cannot be used together with suffix");
    }
    long logprobs = p.integer("logprobs", -1L, 0, Math.min(5, limits.maxTopLogprobs()));
    List<Prompt> prompts = new ArrayList<>();
    List<String> echoTexts = new ArrayList<>();
    parsePrompts(prompt, suffix, model, limits, prompts, echoTexts);
    int maxTokens = p.integer("max_tokens", 16L, 1, limits.maxNewTokens()).intValue();
    Sampling.Builder sampling = sampling(p);
    int n = n(p, limits);
    if (prompts.size() * n > limits.maxN()) {
      throw new InvalidRequest(
          "n",
          "prompts × n must be at most " + limits.maxN() + ", got " + prompts.size() + " × " + n);
    }
    GenerateRequest.Builder template =
        GenerateRequest.newBuilder()
            .setModelId(model.getModelId())
            .setStopping(stopping(p, limits, maxTokens))
            .setTopLogprobs((int) Math.max(0, logprobs))
            .setReturnPromptTokens(echo)
            .setPromptLogprobs(echo && logprobs >= 0);
    List<GenerateRequest> requests = new ArrayList<>();
    for (Prompt pr : prompts) {
      requests.addAll(expand(template.clone().setPrompt(pr), sampling, n, id, requests.size()));
    }
    return new Plan(
        model.getModelId(),
        requests,
        n,
        p.bool("stream", false),
        includeUsage(p),
        (int) logprobs,
        echo,
        echoTexts);
  }

  static Plan chat(JsonObject body, WorkerInfo model, GatewayLimits limits, String id) {
    Params p = new Params(body, "");
    rejectUnsupported(p);
    for (String field : List.of("tools", "tool_choice", "functions", "function_call")) {
      if (p.has(field)) {
        throw new InvalidRequest(field, field + " is not supported");
      }
    }
    JsonObject format = p.object("response_format");
    if (format != null && !"text".equals(format.getValue("type"))) {
      throw new InvalidRequest(
          "response_format",
          "response_format.type must be \"text\" (structured output is not" + " supported)");
    }
    Object raw = p.raw("messages");
    if (!(raw instanceof JsonArray messages) || messages.isEmpty()) {
      throw new InvalidRequest("messages", "messages must be a non-empty array");
    }
    Chat.Builder chat = Chat.newBuilder();
    long chars = 0;
    for (int i = 0; i < messages.size(); i++) {
      ChatMessage m = message(messages.getValue(i), i);
      chars += m.getContent().length();
      chat.addMessages(m);
    }
    if (chars > limits.maxPromptChars()) {
      throw new InvalidRequest(
          "messages",
          "messages must hold at most " + limits.maxPromptChars() + " characters, got " + chars);
    }
    boolean logprobs = p.bool("logprobs", false);
    long top = p.integer("top_logprobs", -1L, 0, limits.maxTopLogprobs());
    if (top >= 0 && !logprobs) {
      throw new InvalidRequest("top_logprobs", "top_logprobs requires logprobs to be true");
    }
    String maxField = p.has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    int maxTokens =
        p.integer(maxField, (long) limits.maxNewTokens(), 1, limits.maxNewTokens()).intValue();
    Sampling.Builder sampling = sampling(p);
    int n = n(p, limits);
    GenerateRequest.Builder template =
        GenerateRequest.newBuilder()
            .setModelId(model.getModelId())
            .setPrompt(Prompt.newBuilder().setChat(chat))
            .setStopping(stopping(p, limits, maxTokens))
            .setTopLogprobs((int) Math.max(0, top));
    return new Plan(
        model.getModelId(),
        expand(template, sampling, n, id, 0),
        n,
        p.bool("stream", false),
        includeUsage(p),
        logprobs ? (int) Math.max(0, top) : -1,
        false,
        List.of());
  }

  private static ChatMessage message(Object value, int i) {
    String field = "messages[" + i + "]";
    if (!(value instanceof JsonObject m)) {
      throw new InvalidRequest(field, field + " must be an object");
    }
    Params p = new Params(m, field + ".");
    String role = p.requiredString("role");
    role =
        switch (role) {
          case "system", "developer" -> "system";
          case "user", "assistant" -> role;
          default ->
              throw new InvalidRequest(
                  field + ".role",
                  field + ".role must be system, developer, user or assistant, got " + role);
        };
    Object content = m.getValue("content");
    String text;
    if (content == null) {
      text = "";
    } else if (content instanceof String s) {
      text = s;
    } else if (content instanceof JsonArray parts) {
      StringBuilder sb = new StringBuilder();
      for (Object part : parts) {
        if (!(part instanceof JsonObject po) || !"text".equals(po.getValue("type"))) {
          throw new InvalidRequest(
              field + ".content", field + ".content parts must be of type \"text\"");
        }
        sb.append(new Params(po, field + ".content.").requiredString("text"));
      }
      text = sb.toString();
    } else {
      throw new InvalidRequest(
          field + ".content", field + ".content must be a string or an array of text parts");
    }
    return ChatMessage.newBuilder().setRole(role).setContent(text).build();
  }

  private static void parsePrompts(
      Object prompt,
      String suffix,
      WorkerInfo model,
      GatewayLimits limits,
      List<Prompt> prompts,
      List<String> echoTexts) {
    long chars = 0;
    if (prompt instanceof String s) {
      prompts.add(textPrompt(s, suffix));
      echoTexts.add(s);
      chars = s.length();
    } else if (prompt instanceof JsonArray a && !a.isEmpty()) {
      Object first = a.getValue(0);
      if (first instanceof Number) {
        prompts.add(tokenPrompt(a, "prompt", model, limits, suffix));
        echoTexts.add(null);
      } else {
        if (a.size() > limits.maxN()) {
          throw new InvalidRequest(
              "prompt", "prompt may hold at most " + limits.maxN() + " prompts, got " + a.size());
        }
        for (int i = 0; i < a.size(); i++) {
          Object v = a.getValue(i);
          if (v instanceof String s) {
            prompts.add(textPrompt(s, suffix));
            echoTexts.add(s);
            chars += s.length();
          } else if (v instanceof JsonArray ids && !ids.isEmpty()) {
            prompts.add(tokenPrompt(ids, "prompt[" + i + "]", model, limits, suffix));
            echoTexts.add(null);
          } else {
            throw new InvalidRequest(
                "prompt",
                "prompt must be a string, an array of strings, an array of token ids or an array"
                    + " of token-id arrays (all non-empty)");
          }
        }
      }
    } else {
      throw new InvalidRequest(
          "prompt",
          "prompt must be a string, an array of strings, an array of token ids or an array of"
              + " token-id arrays (all non-empty)");
    }
    if (chars > limits.maxPromptChars()) {
      throw new InvalidRequest(
          "prompt",
          "prompt must hold at most " + limits.maxPromptChars() + " characters, got " + chars);
    }
  }

  private static Prompt textPrompt(String text, String suffix) {
    if (suffix != null) {
      return Prompt.newBuilder()
          .setFim(FillInTheMiddle.newBuilder().setPrefix(text).setSuffix(suffix))
          .build();
    }
    return Prompt.newBuilder().setText(text).build();
  }

  private static Prompt tokenPrompt(
      JsonArray ids, String field, WorkerInfo model, GatewayLimits limits, String suffix) {
    if (suffix != null) {
      throw new InvalidRequest("suffix", "suffix needs a text prompt, not token ids");
    }
    int maxTokens = limits.maxPromptTokens();
    if (model.getMaxContext() > 0) {
      maxTokens = Math.min(maxTokens, model.getMaxContext() - 1);
    }
    if (ids.size() > maxTokens) {
      throw new InvalidRequest(
          field, field + " must hold at most " + maxTokens + " tokens, got " + ids.size());
    }
    long vocab = model.getVocabSize() > 0 ? model.getVocabSize() : (1L << 32);
    TokenIds.Builder b = TokenIds.newBuilder();
    for (int i = 0; i < ids.size(); i++) {
      Object v = ids.getValue(i);
      if (!(v instanceof Integer || v instanceof Long)
          || ((Number) v).longValue() < 0
          || ((Number) v).longValue() >= vocab) {
        throw new InvalidRequest(
            field, field + " token ids must be integers in [0, " + (vocab - 1) + "], got " + v);
      }
      b.addIds((int) ((Number) v).longValue());
    }
    return Prompt.newBuilder().setTokenIds(b).build();
  }

  private static void rejectUnsupported(Params p) {
    Long bestOf = p.integer("best_of", null, 1, 1);
    if (bestOf != null && bestOf != 1) {
      throw new InvalidRequest("best_of", "best_of must be 1 (not supported)");
    }
    JsonObject bias = p.has("logit_bias") ? p.object("logit_bias") : null;
    if (bias != null && !bias.isEmpty()) {
      throw new InvalidRequest("logit_bias", "logit_bias is not supported");
    }
    p.string("user", null);
  }

  private static int n(Params p, GatewayLimits limits) {
    return p.integer("n", 1L, 1, limits.maxN()).intValue();
  }

  private static boolean includeUsage(Params p) {
    JsonObject options = p.object("stream_options");
    if (options == null) {
      return false;
    }
    if (!p.bool("stream", false)) {
      throw new InvalidRequest("stream_options", "stream_options is only allowed with stream");
    }
    return new Params(options, "stream_options.").bool("include_usage", false);
  }

  private static Sampling.Builder sampling(Params p) {
    Sampling.Builder s = Sampling.newBuilder();
    s.setTemperature(p.number("temperature", 1.0, 0, false, 2, false).floatValue());
    s.setTopP(p.number("top_p", 1.0, 0, true, 1, false).floatValue());
    s.setPresencePenalty(p.number("presence_penalty", 0.0, -2, false, 2, false).floatValue());
    s.setFrequencyPenalty(p.number("frequency_penalty", 0.0, -2, false, 2, false).floatValue());
    Long seed = p.integer("seed", null, Long.MIN_VALUE, Long.MAX_VALUE);
    if (seed != null) {
      s.setSeed(seed);
    }
    return s;
  }

  /**
   * {@code min_tokens} and {@code ignore_eos} are not OpenAI's but vLLM's extensions (same names,
   * same meaning), which benchmark clients send to get exactly {@code max_tokens} tokens back.
   */
  private static Stopping stopping(Params p, GatewayLimits limits, int maxTokens) {
    int maxStop = Math.min(OPENAI_MAX_STOP, limits.maxStopSequences());
    return Stopping.newBuilder()
        .setMaxNewTokens(maxTokens)
        .setMinNewTokens(p.integer("min_tokens", 0L, 0, maxTokens).intValue())
        .setIgnoreEos(p.bool("ignore_eos", false))
        .addAllStopSequences(p.stringOrList("stop", maxStop, limits.maxStopSequenceChars()))
        .build();
  }

  /**
   * n sequences of one prompt; sampled ones with a seed get seed, seed+1, ... so that the choices
   * differ yet the request stays reproducible.
   */
  private static List<GenerateRequest> expand(
      GenerateRequest.Builder template, Sampling.Builder sampling, int n, String id, int first) {
    List<GenerateRequest> out = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      Sampling.Builder s = sampling.clone();
      if (sampling.hasSeed() && sampling.getTemperature() > 0) {
        s.setSeed(sampling.getSeed() + i);
      }
      out.add(template.clone().setSampling(s).setRequestId(id + "-" + (first + i)).build());
    }
    return out;
  }
}
