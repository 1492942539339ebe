package dev.starserve.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.starserve.engine.EngineRequest;
import dev.starserve.engine.StoppingParams;
import dev.starserve.prompt.ChatMessage;
import dev.starserve.prompt.PromptResolver;
import dev.starserve.prompt.PromptSpec;
import dev.starserve.prompt.ResolvedPrompt;
import dev.starserve.sample.SamplingParams;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * One line of a {@code generate --requests} file: a JSON object with one prompt form and any
 * sampling and stopping fields. Unknown fields, wrong types and out-of-range values are errors
 * naming the field.
 */
final class RequestLine {
  static final Set<String> FIELDS =
      Set.of(
          "prompt",
          "prompt_ids",
          "prefix",
          "suffix",
          "messages",
          "max_new_tokens",
          "temperature",
          "top_k",
          "top_p",
          "typical_p",
          "min_p",
          "repetition_penalty",
          "presence_penalty",
          "frequency_penalty",
          "seed",
          "n",
          "stop",
          "stop_token_ids",
          "ignore_eos",
          "logprobs",
          "prompt_logprobs",
          "priority",
          "min_new_tokens",
          "time_limit_ms",
          "include_stop_sequence",
          "truncate_prompt_tokens");
  static final int DEFAULT_MAX_NEW_TOKENS = 16;

  private RequestLine() {}

  /** Parses and resolves one line into an engine request with the given id. */
  static EngineRequest parse(String id, JsonNode j, PromptResolver resolver, long defaultSeed) {
    if (j == null || !j.isObject()) {
      throw new IllegalArgumentException("a request must be a JSON object");
    }
    for (Iterator<String> it = j.fieldNames(); it.hasNext(); ) {
      String f = it.next();
      if (!FIELDS.contains(f)) {
        throw new IllegalArgumentException(
            "unknown field '"
                + f
                + "'; allowed: "
                + String.join(", ", new java.util.TreeSet<>(FIELDS)));
      }
    }
    ResolvedPrompt prompt = resolver.resolve(promptSpec(j));
    double temperature = num(j, "temperature", 0.0);
    SamplingParams sampling =
        new SamplingParams(
            temperature,
            integer(j, "top_k", 0),
            num(j, "top_p", 1.0),
            num(j, "typical_p", 1.0),
            num(j, "min_p", 0.0),
            num(j, "repetition_penalty", 1.0),
            num(j, "presence_penalty", 0.0),
            num(j, "frequency_penalty", 0.0),
            j.has("seed") ? longValue(j, "seed") : defaultSeed);
    StoppingParams stopping =
        new StoppingParams(
                integer(j, "max_new_tokens", DEFAULT_MAX_NEW_TOKENS),
                integer(j, "min_new_tokens", 0),
                bool(j, "ignore_eos"),
                ints(j, "stop_token_ids"),
                strings(j, "stop"),
                bool(j, "include_stop_sequence"),
                longValue(j, "time_limit_ms", 0))
            .withFormatStops(prompt.stopTokenIds(), prompt.stopSequences());
    return new EngineRequest(
        id,
        prompt.ids(),
        sampling,
        stopping,
        integer(j, "n", 1),
        integer(j, "logprobs", 0),
        bool(j, "prompt_logprobs"),
        integer(j, "priority", 0),
        integer(j, "truncate_prompt_tokens", 0));
  }

  static PromptSpec promptSpec(JsonNode j) {
    List<String> given = new ArrayList<>();
    for (String f : List.of("prompt", "prompt_ids", "prefix", "messages")) {
      if (j.has(f)) {
        given.add(f);
      }
    }
    if (j.has("suffix") && !j.has("prefix")) {
      throw new IllegalArgumentException("suffix needs prefix (fill-in-the-middle)");
    }
    if (given.size() != 1) {
      throw new IllegalArgumentException(
          "give exactly one of prompt, prompt_ids, prefix+suffix, messages; got "
              + (given.isEmpty() ? "none" : String.join(", ", given)));
    }
    return switch (given.get(0)) {
      case "prompt" -> new PromptSpec.Text(text(j, "prompt"));
      case "prompt_ids" -> new PromptSpec.Ids(ints(j, "prompt_ids"));
      case "prefix" -> {
        if (!j.has("suffix")) {
          throw new IllegalArgumentException("prefix needs suffix (fill-in-the-middle)");
        }
        yield new PromptSpec.FillInTheMiddle(text(j, "prefix"), text(j, "suffix"));
      }
      default -> new PromptSpec.Chat(messages(j.get("messages")));
    };
  }

  private static List<ChatMessage> messages(JsonNode m) {
    if (!m.isArray()) {
      throw new IllegalArgumentException("messages must be an array of {role, content} objects");
    }
    List<ChatMessage> out = new ArrayList<>();
    for (JsonNode e : m) {
      if (!e.isObject() || !e.path("role").isTextual() || !e.path("content").isTextual()) {
        throw new IllegalArgumentException(
            "each message must be an object with string fields role and content");
      }
      out.add(new ChatMessage(e.get("role").asText(), e.get("content").asText()));
    }
    return out;
  }

  private static String text(JsonNode j, String f) {
    JsonNode v = j.get(f);
    if (!v.isTextual()) {
      throw new IllegalArgumentException(f + " must be a string");
    }
    return v.asText();
  }

  private static double num(JsonNode j, String f, double dflt) {
    JsonNode v = j.get(f);
    if (v == null || v.isNull()) {
      return dflt;
    }
    if (!v.isNumber()) {
      throw new IllegalArgumentException(f + " must be a number, got " + v);
    }
    return v.asDouble();
  }

  private static int integer(JsonNode j, String f, int dflt) {
    JsonNode v = j.get(f);
    if (v == null || v.isNull()) {
      return dflt;
    }
    if (!v.canConvertToInt() || !v.isIntegralNumber()) {
      throw new IllegalArgumentException(f + " must be an integer, got " + v);
    }
    return v.asInt();
  }

  private static long longValue(JsonNode j, String f) {
    JsonNode v = j.get(f);
    if (!v.isIntegralNumber() || !v.canConvertToLong()) {
      throw new IllegalArgumentException(f + " must be an integer, got " + v);
    }
    return v.asLong();
  }

  private static long longValue(JsonNode j, String f, long dflt) {
    return j.has(f) && !j.get(f).isNull() ? longValue(j, f) : dflt;
  }

  private static boolean bool(JsonNode j, String f) {
    JsonNode v = j.get(f);
    if (v == null || v.isNull()) {
      return false;
    }
    if (!v.isBoolean()) {
      throw new IllegalArgumentException(f + " must be true or false, got " + v);
    }
    return v.asBoolean();
  }

  private static int[] ints(JsonNode j, String f) {
    JsonNode v = j.get(f);
    if (v == null || v.isNull()) {
      return new int[0];
    }
    if (!v.isArray()) {
      throw new IllegalArgumentException(f + " must be an array of integers");
    }
    int[] out = new int[v.size()];
    for (int i = 0; i < out.length; i++) {
      if (!v.get(i).isIntegralNumber() || !v.get(i).canConvertToInt()) {
        throw new IllegalArgumentException(f + " must be an array of integers, got " + v.get(i));
      }
      out[i] = v.get(i).asInt();
    }
    return out;
  }

  private static List<String> strings(JsonNode j, String f) {
    JsonNode v = j.get(f);
    if (v == null || v.isNull()) {
      return List.of();
    }
    if (v.isTextual()) {
      return List.of(v.asText());
    }
    if (!v.isArray()) {
      throw new IllegalArgumentException(f + " must be a string or an array of strings");
    }
    List<String> out = new ArrayList<>();
    for (JsonNode e : v) {
      if (!e.isTextual()) {
        throw new IllegalArgumentException(f + " must be a string or an array of strings");
      }
      out.add(e.asText());
    }
    return out;
  }

  /** The JSON result of one finished request, in the engine-core format plus finish_reason. */
  static Map<String, Object> result(
      dev.starserve.engine.FinishEvent[] finishes,
      List<List<dev.starserve.engine.TokenEvent>> tokens) {
    Map<String, Object> first = sample(finishes[0], tokens.get(0));
    Map<String, Object> out = new java.util.LinkedHashMap<>();
    out.put("prompt_tokens", finishes[0].promptTokens());
    out.putAll(first);
    if (finishes[0].promptLogprobs() != null) {
      List<Map<String, Object>> pl = new ArrayList<>();
      for (var p : finishes[0].promptLogprobs()) {
        pl.add(idLogprob(p.tokenId(), p.logprob()));
      }
      out.put("prompt_logprobs", pl);
    }
    if (finishes.length > 1) {
      List<Map<String, Object>> samples = new ArrayList<>();
      for (int i = 0; i < finishes.length; i++) {
        samples.add(sample(finishes[i], tokens.get(i)));
      }
      out.put("samples", samples);
    }
    return out;
  }

  private static Map<String, Object> sample(
      dev.starserve.engine.FinishEvent f, List<dev.starserve.engine.TokenEvent> events) {
    List<Map<String, Object>> toks = new ArrayList<>();
    StringBuilder text = new StringBuilder();
    for (var e : events) {
      Map<String, Object> m = new java.util.LinkedHashMap<>();
      m.put("id", e.tokenId());
      m.put("text", e.text());
      m.put("logprob", e.logprob());
      List<Map<String, Object>> top = new ArrayList<>();
      for (var t : e.topLogprobs()) {
        top.add(idLogprob(t.id(), t.logprob()));
      }
      m.put("top_logprobs", top);
      toks.add(m);
      text.append(e.text());
    }
    text.append(f.trailingText());
    Map<String, Object> out = new java.util.LinkedHashMap<>();
    out.put("tokens", toks);
    out.put("text", text.toString());
    out.put("finish_reason", f.reason().wireName());
    if (f.stopSequence() != null) {
      out.put("stop_sequence", f.stopSequence());
    }
    if (f.cachedPromptTokens() > 0) {
      out.put("cached_prompt_tokens", f.cachedPromptTokens());
    }
    if (f.error() != null) {
      out.put("error", f.error());
    }
    return out;
  }

  private static Map<String, Object> idLogprob(int id, double logprob) {
    Map<String, Object> m = new java.util.LinkedHashMap<>();
    m.put("id", id);
    m.put("logprob", logprob);
    return m;
  }
}
