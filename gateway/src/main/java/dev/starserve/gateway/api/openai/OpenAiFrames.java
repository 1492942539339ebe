package dev.starserve.gateway.api.openai;

import dev.starserve.gateway.api.Models;
import dev.starserve.gateway.api.SequenceResult;
import dev.starserve.proto.worker.v1.FinishReason;
import dev.starserve.proto.worker.v1.Finished;
import dev.starserve.proto.worker.v1.PromptToken;
import dev.starserve.proto.worker.v1.Started;
import dev.starserve.proto.worker.v1.Token;
import dev.starserve.proto.worker.v1.TopToken;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * The {@code choices[i]} objects of completions and chat completions, whole and as stream chunks,
 * exactly as OpenAI frames them.
 */
abstract sealed class OpenAiFrames {
  final OpenAiRequests.Plan plan;

  OpenAiFrames(OpenAiRequests.Plan plan) {
    this.plan = plan;
  }

  abstract String object(boolean chunk);

  /** The first chunk of a choice, or null when there is nothing to say yet. */
  abstract JsonObject startChoice(int index, Started started);

  /** A chunk for newly generated tokens, or null when they add nothing visible. */
  abstract JsonObject tokensChoice(int index, List<Token> tokens);

  abstract JsonObject finishChoice(int index, Finished finished);

  abstract JsonObject choice(int index, SequenceResult result);

  static String finishReason(FinishReason reason) {
    return switch (reason) {
      case LENGTH, CONTEXT_LENGTH, TIME_LIMIT -> "length";
      default -> "stop";
    };
  }

  static JsonObject choiceBase(int index) {
    return new JsonObject().put("index", index);
  }

  /** Legacy completions: {@code text}, {@code logprobs{tokens, token_logprobs, ...}}. */
  static final class Completion extends OpenAiFrames {
    private final int[] textOffset;

    Completion(OpenAiRequests.Plan plan) {
      super(plan);
      textOffset = new int[plan.requests().size()];
    }

    @Override
    String object(boolean chunk) {
      return "text_completion";
    }

    private String echoText(int index, Started started) {
      String text = plan.echoTexts().get(index / plan.n());
      if (text != null) {
        return text;
      }
      StringBuilder sb = new StringBuilder();
      for (PromptToken t : started.getPromptTokensList()) {
        sb.append(t.getText());
      }
      return sb.toString();
    }

    @Override
    JsonObject startChoice(int index, Started started) {
      if (!plan.echo()) {
        return null;
      }
      return choiceBase(index)
          .put("text", echoText(index, started))
          .put("logprobs", logprobs(index, started.getPromptTokensList(), List.of()))
          .putNull("finish_reason");
    }

    @Override
    JsonObject tokensChoice(int index, List<Token> tokens) {
      StringBuilder text = new StringBuilder();
      for (Token t : tokens) {
        text.append(t.getText());
      }
      if (text.isEmpty() && plan.logprobs() < 0) {
        return null;
      }
      return choiceBase(index)
          .put("text", text.toString())
          .put("logprobs", logprobs(index, List.of(), tokens))
          .putNull("finish_reason");
    }

    @Override
    JsonObject finishChoice(int index, Finished finished) {
      return choiceBase(index)
          .put("text", finished.getTrailingText())
          .putNull("logprobs")
          .put("finish_reason", finishReason(finished.getReason()));
    }

    @Override
    JsonObject choice(int index, SequenceResult r) {
      String text = plan.echo() ? echoText(index, r.started) + r.text : r.text.toString();
      List<PromptToken> prompt = plan.echo() ? r.started.getPromptTokensList() : List.of();
      return choiceBase(index)
          .put("text", text)
          .put("logprobs", logprobs(index, prompt, r.tokens))
          .put("finish_reason", finishReason(r.finished.getReason()));
    }

    private JsonObject logprobs(int index, List<PromptToken> prompt, List<Token> tokens) {
      int k = plan.logprobs();
      if (k < 0) {
        return null;
      }
      JsonArray texts = new JsonArray();
      JsonArray lps = new JsonArray();
      JsonArray tops = new JsonArray();
      JsonArray offsets = new JsonArray();
      for (PromptToken t : prompt) {
        texts.add(t.getText());
        if (t.hasLogprob()) {
          lps.add(Models.finite(t.getLogprob()));
        } else {
          lps.addNull();
        }
        tops.addNull();
        offsets.add(textOffset[index]);
        textOffset[index] += t.getText().length();
      }
      for (Token t : tokens) {
        texts.add(t.getTokenText());
        lps.add(Models.finite(t.getLogprob()));
        JsonObject top = new JsonObject();
        if (k == 0) {
          top.put(t.getTokenText(), Models.finite(t.getLogprob()));
        }
        for (int i = 0; i < Math.min(k, t.getTopTokensCount()); i++) {
          TopToken tt = t.getTopTokens(i);
          top.put(tt.getText(), Models.finite(tt.getLogprob()));
        }
        tops.add(top);
        offsets.add(textOffset[index]);
        textOffset[index] += t.getTokenText().length();
      }
      return new JsonObject()
          .put("tokens", texts)
          .put("token_logprobs", lps)
          .put("top_logprobs", tops)
          .put("text_offset", offsets);
    }
  }

  /** Chat completions: {@code message} / {@code delta}, {@code logprobs{content[...]}}. */
  static final class ChatCompletion extends OpenAiFrames {
    ChatCompletion(OpenAiRequests.Plan plan) {
      super(plan);
    }

    @Override
    String object(boolean chunk) {
      return chunk ? "chat.completion.chunk" : "chat.completion";
    }

    @Override
    JsonObject startChoice(int index, Started started) {
      return choiceBase(index)
          .put("delta", new JsonObject().put("role", "assistant").put("content", ""))
          .putNull("logprobs")
          .putNull("finish_reason");
    }

    @Override
    JsonObject tokensChoice(int index, List<Token> tokens) {
      StringBuilder text = new StringBuilder();
      for (Token t : tokens) {
        text.append(t.getText());
      }
      if (text.isEmpty() && plan.logprobs() < 0) {
        return null;
      }
      return choiceBase(index)
          .put("delta", new JsonObject().put("content", text.toString()))
          .put("logprobs", logprobs(tokens))
          .putNull("finish_reason");
    }

    @Override
    JsonObject finishChoice(int index, Finished finished) {
      JsonObject delta = new JsonObject();
      if (!finished.getTrailingText().isEmpty()) {
        delta.put("content", finished.getTrailingText());
      }
      return choiceBase(index)
          .put("delta", delta)
          .putNull("logprobs")
          .put("finish_reason", finishReason(finished.getReason()));
    }

    @Override
    JsonObject choice(int index, SequenceResult r) {
      return choiceBase(index)
          .put(
              "message",
              new JsonObject().put("role", "assistant").put("content", r.text.toString()))
          .put("logprobs", logprobs(r.tokens))
          .put("finish_reason", finishReason(r.finished.getReason()));
    }

    private JsonObject logprobs(List<Token> tokens) {
      int k = plan.logprobs();
      if (k < 0) {
        return null;
      }
      JsonArray content = new JsonArray();
      for (Token t : tokens) {
        JsonArray top = new JsonArray();
        for (int i = 0; i < Math.min(k, t.getTopTokensCount()); i++) {
          TopToken tt = t.getTopTokens(i);
          top.add(entry(tt.getText(), tt.getLogprob()));
        }
        content.add(entry(t.getTokenText(), t.getLogprob()).put("top_logprobs", top));
      }
      return new JsonObject().put("content", content);
    }

    private static JsonObject entry(String token, float logprob) {
      JsonArray bytes = new JsonArray();
      for (byte b : token.getBytes(StandardCharsets.UTF_8)) {
        bytes.add(b & 0xff);
      }
      return new JsonObject()
          .put("token", token)
          .put("logprob", Models.finite(logprob))
          .put("bytes", bytes);
    }
  }
}
