package dev.starserve.text;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.PatternSyntaxException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reads {@code tokenizer.json} (and {@code tokenizer_config.json}) into a {@link Tokenizer}. Every
 * setting this implementation does not reproduce exactly is rejected with a message that names the
 * file and the field, rather than silently giving different ids than HF would.
 *
 * <p>NOTE: {@code truncation}, {@code padding} and {@code post_processor} are ignored: encode has
 * {@code add_special_tokens=False} semantics and the engine checks lengths itself.
 */
final class TokenizerLoader {
  private static final Logger log = LoggerFactory.getLogger(TokenizerLoader.class);
  private static final ObjectMapper JSON = new ObjectMapper();

  private TokenizerLoader() {}

  static Tokenizer load(Path tokenizerJson, Path tokenizerConfigJson) {
    String source = String.valueOf(tokenizerJson);
    if (tokenizerJson == null || !Files.isRegularFile(tokenizerJson)) {
      throw new TokenizerException(source, "file not found");
    }
    JsonNode root;
    try (InputStream in = Files.newInputStream(tokenizerJson)) {
      root = readJson(source, in);
    } catch (IOException e) {
      throw new TokenizerException(source, "cannot be read: " + e.getMessage(), e);
    }
    TokenizerConfig config = TokenizerConfig.NONE;
    if (tokenizerConfigJson != null && Files.isRegularFile(tokenizerConfigJson)) {
      String configSource = tokenizerConfigJson.toString();
      try (InputStream in = Files.newInputStream(tokenizerConfigJson)) {
        config = parseConfig(configSource, readJson(configSource, in));
      } catch (IOException e) {
        throw new TokenizerException(configSource, "cannot be read: " + e.getMessage(), e);
      }
    }
    return build(source, root, config);
  }

  /** Loads from streams; {@code configIn} may be null. */
  static Tokenizer load(String source, InputStream in, String configSource, InputStream configIn) {
    TokenizerConfig config =
        configIn == null
            ? TokenizerConfig.NONE
            : parseConfig(configSource, readJson(configSource, configIn));
    return build(source, readJson(source, in), config);
  }

  private static JsonNode readJson(String source, InputStream in) {
    try {
      JsonNode node = JSON.readTree(in);
      if (node == null || !node.isObject()) {
        throw new TokenizerException(source, "expected a JSON object at the top level");
      }
      return node;
    } catch (JacksonException e) {
      throw new TokenizerException(source, "malformed JSON: " + e.getOriginalMessage(), e);
    } catch (IOException e) {
      throw new TokenizerException(source, "cannot be read: " + e.getMessage(), e);
    }
  }

  private static Tokenizer build(String src, JsonNode root, TokenizerConfig config) {
    JsonNode normalizer = root.get("normalizer");
    if (normalizer != null && !normalizer.isNull()) {
      throw new TokenizerException(
          src,
          "normalizer of type '"
              + normalizer.path("type").asText("?")
              + "' is not supported"
              + " (only null)");
    }
    JsonNode decoder = root.get("decoder");
    String decoderType = decoder == null || decoder.isNull() ? "null" : typeOf(decoder);
    if (!decoderType.equals("ByteLevel")) {
      throw new TokenizerException(
          src, "decoder of type '" + decoderType + "' is not supported (only ByteLevel)");
    }
    PreTokenizer preTokenizer = preTokenizer(src, "pre_tokenizer", root.get("pre_tokenizer"));

    JsonNode model = root.get("model");
    if (model == null || !model.isObject()) {
      throw new TokenizerException(src, "model is missing or not an object");
    }
    String modelType = model.has("type") ? typeOf(model) : model.has("merges") ? "BPE" : "?";
    if (!modelType.equals("BPE")) {
      throw new TokenizerException(
          src, "model.type '" + modelType + "' is not supported (only BPE)");
    }
    Map<String, Integer> vocab = vocab(src, model.get("vocab"));
    checkBpeOptions(src, model, vocab);
    MergeTable merges = merges(src, model.get("merges"), vocab);
    JsonNode unk = model.get("unk_token");
    int unkId = unk == null || unk.isNull() ? -1 : vocab.get(unk.asText());
    BpeModel bpe =
        new BpeModel(
            vocab,
            merges,
            model.path("ignore_merges").asBoolean(false),
            unkId,
            model.path("fuse_unk").asBoolean(false));
    List<AddedToken> added = addedTokens(src, root.get("added_tokens"), vocab);
    return new Tokenizer(vocab, bpe, preTokenizer, added, config);
  }

  private static String typeOf(JsonNode node) {
    JsonNode type = node.get("type");
    return type == null || !type.isTextual() ? "<missing type>" : type.asText();
  }

  private static PreTokenizer preTokenizer(String src, String field, JsonNode node) {
    if (node == null || node.isNull()) {
      return null;
    }
    String type = typeOf(node);
    return switch (type) {
      case "ByteLevel" ->
          new ByteLevel(
              node.path("add_prefix_space").asBoolean(true),
              node.path("use_regex").asBoolean(true));
      case "Digits" -> new DigitsSplit(node.path("individual_digits").asBoolean(false));
      case "Split" -> split(src, field, node);
      case "Sequence" -> {
        JsonNode steps = node.get("pretokenizers");
        if (steps == null || !steps.isArray()) {
          throw new TokenizerException(src, field + ".pretokenizers is missing or not an array");
        }
        List<PreTokenizer> parsed = new ArrayList<>();
        for (int i = 0; i < steps.size(); i++) {
          PreTokenizer step = preTokenizer(src, field + ".pretokenizers[" + i + "]", steps.get(i));
          if (step != null) {
            parsed.add(step);
          }
        }
        yield new PreTokenizer.Sequence(parsed);
      }
      default ->
          throw new TokenizerException(
              src,
              field
                  + ".type '"
                  + type
                  + "' is not supported (supported: ByteLevel, Digits, Split, Sequence)");
    };
  }

  private static PatternSplit split(String src, String field, JsonNode node) {
    String behaviorName = node.path("behavior").asText("");
    PatternSplit.Behavior behavior = PatternSplit.Behavior.parse(behaviorName);
    if (behavior == null) {
      throw new TokenizerException(
          src,
          field
              + ".behavior '"
              + behaviorName
              + "' is not one of Removed, Isolated, MergedWithPrevious, MergedWithNext,"
              + " Contiguous");
    }
    boolean invert = node.path("invert").asBoolean(false);
    JsonNode pattern = node.path("pattern");
    if (pattern.path("String").isTextual()) {
      return PatternSplit.literal(pattern.get("String").asText(), behavior, invert);
    }
    if (pattern.path("Regex").isTextual()) {
      String regex = pattern.get("Regex").asText();
      try {
        return PatternSplit.regex(regex, behavior, invert);
      } catch (PatternSyntaxException e) {
        throw new TokenizerException(
            src, field + ".pattern.Regex '" + regex + "' is not a valid regex: " + e.getMessage());
      }
    }
    throw new TokenizerException(
        src, field + ".pattern must be {\"String\": ...} or {\"Regex\": ...}, got " + pattern);
  }

  private static Map<String, Integer> vocab(String src, JsonNode node) {
    if (node == null || !node.isObject()) {
      throw new TokenizerException(src, "model.vocab is missing or not an object");
    }
    Map<String, Integer> vocab = HashMap.newHashMap(node.size());
    for (Map.Entry<String, JsonNode> e : node.properties()) {
      JsonNode id = e.getValue();
      if (!id.canConvertToInt() || !id.isIntegralNumber() || id.intValue() < 0) {
        throw new TokenizerException(
            src, "model.vocab['" + e.getKey() + "'] must be a non-negative integer, got " + id);
      }
      vocab.put(e.getKey(), id.intValue());
    }
    return vocab;
  }

  private static void checkBpeOptions(String src, JsonNode model, Map<String, Integer> vocab) {
    JsonNode dropout = model.get("dropout");
    if (dropout != null && !dropout.isNull() && dropout.asDouble() != 0.0) {
      throw new TokenizerException(
          src,
          "model.dropout " + dropout + " is not supported (only null or 0: BPE dropout is random)");
    }
    for (String field : List.of("continuing_subword_prefix", "end_of_word_suffix")) {
      JsonNode v = model.get(field);
      if (v != null && !v.isNull() && !v.asText().isEmpty()) {
        throw new TokenizerException(
            src, "model." + field + " '" + v.asText() + "' is not supported (only null)");
      }
    }
    if (model.path("byte_fallback").asBoolean(false)) {
      throw new TokenizerException(src, "model.byte_fallback true is not supported (only false)");
    }
    JsonNode unk = model.get("unk_token");
    if (unk != null && !unk.isNull() && !vocab.containsKey(unk.asText())) {
      throw new TokenizerException(
          src, "model.unk_token '" + unk.asText() + "' is not in model.vocab");
    }
  }

  private static MergeTable merges(String src, JsonNode node, Map<String, Integer> vocab) {
    if (node == null || !node.isArray()) {
      throw new TokenizerException(src, "model.merges is missing or not an array");
    }
    int n = node.size();
    int[] lefts = new int[n];
    int[] rights = new int[n];
    int[] merged = new int[n];
    for (int rank = 0; rank < n; rank++) {
      JsonNode m = node.get(rank);
      String a;
      String b;
      if (m.isTextual()) {
        String[] parts = m.asText().split(" ", -1);
        if (parts.length != 2) {
          throw new TokenizerException(
              src, "model.merges[" + rank + "] must be \"left right\", got " + m);
        }
        a = parts[0];
        b = parts[1];
      } else if (m.isArray() && m.size() == 2 && m.get(0).isTextual() && m.get(1).isTextual()) {
        a = m.get(0).asText();
        b = m.get(1).asText();
      } else {
        throw new TokenizerException(
            src,
            "model.merges[" + rank + "] must be \"left right\" or [\"left\", \"right\"], got " + m);
      }
      lefts[rank] = vocabId(src, rank, a, vocab);
      rights[rank] = vocabId(src, rank, b, vocab);
      merged[rank] = vocabId(src, rank, a + b, vocab);
    }
    return new MergeTable(lefts, rights, merged);
  }

  private static int vocabId(String src, int rank, String token, Map<String, Integer> vocab) {
    Integer id = vocab.get(token);
    if (id == null) {
      throw new TokenizerException(
          src, "model.merges[" + rank + "]: token '" + token + "' is not in model.vocab");
    }
    return id;
  }

  private static List<AddedToken> addedTokens(
      String src, JsonNode node, Map<String, Integer> vocab) {
    List<AddedToken> out = new ArrayList<>();
    if (node == null || node.isNull()) {
      return out;
    }
    if (!node.isArray()) {
      throw new TokenizerException(src, "added_tokens is not an array");
    }
    Map<Integer, String> vocabById = new HashMap<>();
    vocab.forEach((token, id) -> vocabById.putIfAbsent(id, token));
    Map<Integer, String> addedById = new HashMap<>();
    for (int i = 0; i < node.size(); i++) {
      JsonNode t = node.get(i);
      String field = "added_tokens[" + i + "]";
      if (!t.path("content").isTextual() || !t.path("id").canConvertToInt()) {
        throw new TokenizerException(src, field + " needs a string content and an integer id");
      }
      String content = t.get("content").asText();
      int id = t.get("id").intValue();
      Integer inVocab = vocab.get(content);
      if (inVocab != null && inVocab != id) {
        // HF keeps the vocabulary's id for a token the model already has.
        log.warn(
            "{}: {} '{}' has id {} but the vocabulary gives it {}",
            src,
            field,
            content,
            id,
            inVocab);
        id = inVocab;
      }
      if (id < 0) {
        throw new TokenizerException(src, field + ".id " + id + " is negative");
      }
      String other = inVocab == null ? vocabById.get(id) : null;
      if (other == null) {
        other = addedById.get(id);
        other = content.equals(other) ? null : other;
      }
      if (other != null) {
        throw new TokenizerException(
            src,
            field + ": id " + id + " of '" + content + "' is already the id of '" + other + "'");
      }
      addedById.put(id, content);
      boolean special = t.path("special").asBoolean(false);
      out.add(
          new AddedToken(
              id,
              content,
              t.path("single_word").asBoolean(false),
              t.path("lstrip").asBoolean(false),
              t.path("rstrip").asBoolean(false),
              t.path("normalized").asBoolean(!special),
              special));
    }
    return out;
  }

  private static TokenizerConfig parseConfig(String src, JsonNode root) {
    return new TokenizerConfig(
        tokenText(root.get("eos_token")),
        tokenText(root.get("bos_token")),
        chatTemplate(src, root.get("chat_template")));
  }

  /** A token in tokenizer_config.json: a string or an AddedToken object with "content". */
  private static String tokenText(JsonNode node) {
    if (node == null || node.isNull()) {
      return null;
    }
    if (node.isTextual()) {
      return node.asText();
    }
    JsonNode content = node.get("content");
    return content != null && content.isTextual() ? content.asText() : null;
  }

  private static String chatTemplate(String src, JsonNode node) {
    if (node == null || node.isNull()) {
      return null;
    }
    if (node.isTextual()) {
      return node.asText();
    }
    if (node.isArray()) {
      for (JsonNode t : node) {
        if ("default".equals(t.path("name").asText()) && t.path("template").isTextual()) {
          return t.get("template").asText();
        }
      }
      return null;
    }
    throw new TokenizerException(src, "chat_template must be a string or a list, got " + node);
  }
}
