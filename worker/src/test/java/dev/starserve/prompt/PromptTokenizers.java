package dev.starserve.prompt;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.starserve.text.Tokenizer;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/** Variants of the real StarCoder tokenizer, written to a temp dir. */
public final class PromptTokenizers {
  static final ObjectMapper JSON = new ObjectMapper();

  /** StarChat-beta's ids for its four chat tokens, right after StarCoder's 49152. */
  public static final Map<String, Integer> STARCHAT_IDS =
      Map.of("<|system|>", 49152, "<|user|>", 49153, "<|assistant|>", 49154, "<|end|>", 49155);

  private PromptTokenizers() {}

  public static ObjectNode starCoderJson() {
    try (InputStream in =
        PromptTokenizers.class.getResourceAsStream("/starcoder-tokenizer/tokenizer.json")) {
      return (ObjectNode) JSON.readTree(in);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** StarCoder plus the StarChat tokens in added_tokens (special) and the vocabulary. */
  public static ObjectNode starChatJson() {
    ObjectNode root = starCoderJson();
    ObjectNode vocab = (ObjectNode) root.path("model").path("vocab");
    STARCHAT_IDS.entrySet().stream()
        .sorted(Map.Entry.comparingByValue())
        .forEach(
            e -> {
              vocab.put(e.getKey(), e.getValue());
              ObjectNode t = root.withArray("added_tokens").addObject();
              t.put("id", e.getValue());
              t.put("content", e.getKey());
              t.put("single_word", false);
              t.put("lstrip", false);
              t.put("rstrip", false);
              t.put("normalized", false);
              t.put("special", true);
            });
    return root;
  }

  /** StarCoder with SantaCoder's dash spelling of the FIM tokens. */
  public static ObjectNode dashFimJson() {
    ObjectNode root = starCoderJson();
    ObjectNode vocab = (ObjectNode) root.path("model").path("vocab");
    for (String part : new String[] {"prefix", "middle", "suffix", "pad"}) {
      String underscore = "<fim_" + part + ">";
      JsonNode id = vocab.remove(underscore);
      vocab.set("<fim-" + part + ">", id);
      for (JsonNode t : root.withArray("added_tokens")) {
        if (t.path("content").asText().equals(underscore)) {
          ((ObjectNode) t).put("content", "<fim-" + part + ">");
        }
      }
    }
    return root;
  }

  /** StarCoder without any FIM token. */
  public static ObjectNode noFimJson() {
    ObjectNode root = starCoderJson();
    ObjectNode vocab = (ObjectNode) root.path("model").path("vocab");
    for (String part : new String[] {"prefix", "middle", "suffix", "pad"}) {
      vocab.remove("<fim_" + part + ">");
    }
    root.withArray("added_tokens").removeIf(t -> t.path("content").asText().startsWith("<fim_"));
    return root;
  }

  /**
   * Writes tokenizer.json and, when {@code config} is not null, tokenizer_config.json, and loads
   * them.
   */
  public static Tokenizer load(Path dir, ObjectNode tokenizerJson, ObjectNode config) {
    try {
      Path json = dir.resolve("tokenizer.json");
      Files.writeString(json, JSON.writeValueAsString(tokenizerJson));
      Path configFile = dir.resolve("tokenizer_config.json");
      if (config != null) {
        Files.writeString(configFile, JSON.writeValueAsString(config));
      }
      return Tokenizer.load(json, configFile);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  public static ObjectNode config(String chatTemplate, String bosToken, String eosToken) {
    ObjectNode c = JSON.createObjectNode();
    if (chatTemplate != null) {
      c.put("chat_template", chatTemplate);
    }
    if (bosToken != null) {
      c.put("bos_token", bosToken);
    }
    if (eosToken != null) {
      c.put("eos_token", eosToken);
    }
    return c;
  }
}
