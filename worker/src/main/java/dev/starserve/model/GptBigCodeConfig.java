package dev.starserve.model;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.core.util.Separators;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.starserve.backend.KvDType;
import dev.starserve.checkpoint.CheckpointException;
import dev.starserve.checkpoint.DType;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The architecture of a gpt_bigcode model, as HuggingFace's {@code GPTBigCodeConfig} describes it
 * in config.json.
 *
 * @param nEmbd hidden width ({@code n_embd}, alias {@code hidden_size})
 * @param nHead query heads ({@code n_head}, alias {@code num_attention_heads})
 * @param nLayer transformer blocks ({@code n_layer}, alias {@code num_hidden_layers})
 * @param nInner MLP width ({@code n_inner}; 4·n_embd when null)
 * @param nPositions learned positions, the context limit ({@code n_positions}, alias {@code
 *     max_position_embeddings})
 * @param vocabSize rows of {@code wte} and {@code lm_head}
 * @param multiQuery one shared K/V head (true for every StarCoder) instead of n_head of them
 * @param layerNormEpsilon LayerNorm epsilon
 * @param activation MLP activation
 * @param scaleAttnWeights scale attention scores by 1/sqrt(head_dim)
 * @param bosTokenId beginning-of-sequence token
 * @param eosTokenId end-of-sequence token (generation_config.json may add more)
 */
public record GptBigCodeConfig(
    int nEmbd,
    int nHead,
    int nLayer,
    int nInner,
    int nPositions,
    int vocabSize,
    boolean multiQuery,
    float layerNormEpsilon,
    Activation activation,
    boolean scaleAttnWeights,
    int bosTokenId,
    int eosTokenId) {

  /** HuggingFace's default bos/eos id (GPT-2's {@code <|endoftext|>}). */
  public static final int HF_DEFAULT_SPECIAL_TOKEN_ID = 50256;

  private static final ObjectMapper JSON = new ObjectMapper();

  public GptBigCodeConfig {
    positive("n_embd", nEmbd);
    positive("n_head", nHead);
    positive("n_layer", nLayer);
    positive("n_inner", nInner);
    positive("n_positions", nPositions);
    positive("vocab_size", vocabSize);
    if (nEmbd % nHead != 0) {
      throw new IllegalArgumentException(
          "n_embd (" + nEmbd + ") must be divisible by n_head (" + nHead + ")");
    }
    if (!(layerNormEpsilon > 0) || Float.isInfinite(layerNormEpsilon)) {
      throw new IllegalArgumentException(
          "layer_norm_epsilon must be a positive number, got " + layerNormEpsilon);
    }
    if (activation == null) {
      throw new IllegalArgumentException("activation_function is required");
    }
    tokenId("bos_token_id", bosTokenId, vocabSize);
    tokenId("eos_token_id", eosTokenId, vocabSize);
    // c_attn's width is a dimension the kernels index with ints.
    long qkv = nEmbd + 2L * (multiQuery ? nEmbd / nHead : nEmbd);
    if (qkv > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(
          "n_embd (" + nEmbd + ") is too large: c_attn is wider than 2^31");
    }
  }

  private static void positive(String field, int value) {
    if (value <= 0) {
      throw new IllegalArgumentException(field + " must be > 0, got " + value);
    }
  }

  private static void tokenId(String field, int id, int vocabSize) {
    if (id < 0 || id >= vocabSize) {
      throw new IllegalArgumentException(
          field + " must be in [0, vocab_size=" + vocabSize + "), got " + id);
    }
  }

  /** Width of one attention head. */
  public int headDim() {
    return nEmbd / nHead;
  }

  /** Key/value heads: 1 with multi-query attention, else n_head. */
  public int kvHeads() {
    return multiQuery ? 1 : nHead;
  }

  /** Width of K (and of V): kvHeads · headDim. */
  public int kvDim() {
    return kvHeads() * headDim();
  }

  /** Bytes one token position takes in a K/V cache storing {@code dtype}: K and V, every layer. */
  public long kvBytesPerToken(KvDType dtype) {
    return 2L * nLayer * kvDim() * dtype.byteSize();
  }

  /** Output width of the fused c_attn projection: Q (n_embd) then K then V. */
  public int qkvDim() {
    return nEmbd + 2 * kvDim();
  }

  /** Number of parameters with a tied lm_head (StarCoder: 15.5 billion). */
  public long parameterCount() {
    long e = nEmbd;
    long perLayer =
        2 * e // ln_1
            + (long) qkvDim() * e
            + qkvDim() // c_attn
            + e * e
            + e // attn.c_proj
            + 2 * e // ln_2
            + (long) nInner * e
            + nInner // mlp.c_fc
            + e * nInner
            + e; // mlp.c_proj
    return (long) vocabSize * e + (long) nPositions * e + nLayer * perLayer + 2 * e;
  }

  // ---- config.json ----

  /**
   * Reads a HuggingFace config.json. Absent optional fields take HuggingFace's defaults, with one
   * exception: HF's default bos/eos id 50256 is GPT-2's; when that does not fit the vocabulary (as
   * for every StarCoder, whose {@code <|endoftext|>} is id 0), an absent id means 0.
   *
   * <p>The sizes (n_embd, n_head, n_layer, n_positions, vocab_size) are required: HF's defaults are
   * GPT-2's, and silently assuming them would only move the error to weight binding.
   */
  public static GptBigCodeConfig read(Path configJson) {
    JsonNode root;
    try {
      root = JSON.readTree(Files.readAllBytes(configJson));
    } catch (NoSuchFileException e) {
      throw new CheckpointException(configJson, null, "config.json does not exist", e);
    } catch (JacksonException e) {
      throw new CheckpointException(
          configJson, null, "malformed JSON: " + e.getOriginalMessage(), e);
    } catch (IOException e) {
      throw new CheckpointException(configJson, null, "cannot read: " + e, e);
    }
    if (root == null || !root.isObject()) {
      throw new CheckpointException(configJson, null, "must be a JSON object");
    }
    JsonNode modelType = root.get("model_type");
    if (modelType == null || !modelType.isTextual()) {
      throw new CheckpointException(
          configJson, null, "has no model_type; StarServe serves gpt_bigcode models");
    }
    if (!modelType.textValue().equals("gpt_bigcode")) {
      throw new CheckpointException(
          configJson,
          null,
          "unknown model_type '"
              + modelType.textValue()
              + "': StarServe serves gpt_bigcode models");
    }
    try {
      int nEmbd = requiredInt(root, "n_embd", "hidden_size");
      int nHead = requiredInt(root, "n_head", "num_attention_heads");
      int nLayer = requiredInt(root, "n_layer", "num_hidden_layers");
      int nPositions = requiredInt(root, "n_positions", "max_position_embeddings");
      int vocabSize = requiredInt(root, "vocab_size", null);
      Integer nInner = optionalInt(root, "n_inner");
      boolean multiQuery = optionalBoolean(root, "multi_query", true);
      JsonNode epsNode = present(root, "layer_norm_epsilon");
      if (epsNode != null && !epsNode.isNumber()) {
        throw new IllegalArgumentException("layer_norm_epsilon must be a number, got " + epsNode);
      }
      float eps = epsNode == null ? 1e-5f : (float) epsNode.doubleValue();
      JsonNode actNode = present(root, "activation_function");
      if (actNode != null && !actNode.isTextual()) {
        throw new IllegalArgumentException("activation_function must be a string, got " + actNode);
      }
      Activation act = Activation.fromHf(actNode == null ? "gelu_pytorch_tanh" : actNode.asText());
      boolean scale = optionalBoolean(root, "scale_attn_weights", true);
      int defaultId = HF_DEFAULT_SPECIAL_TOKEN_ID < vocabSize ? HF_DEFAULT_SPECIAL_TOKEN_ID : 0;
      List<Integer> bos = tokenIds(root, "bos_token_id");
      List<Integer> eos = tokenIds(root, "eos_token_id");
      return new GptBigCodeConfig(
          nEmbd,
          nHead,
          nLayer,
          nInner == null ? defaultInner(nEmbd) : nInner,
          nPositions,
          vocabSize,
          multiQuery,
          eps,
          act,
          scale,
          bos.isEmpty() ? defaultId : bos.getFirst(),
          eos.isEmpty() ? defaultId : eos.getFirst());
    } catch (IllegalArgumentException e) {
      throw new CheckpointException(configJson, null, e.getMessage(), e);
    }
  }

  private static int defaultInner(int nEmbd) {
    if (nEmbd > Integer.MAX_VALUE / 4) {
      throw new IllegalArgumentException(
          "n_embd (" + nEmbd + ") is too large for n_inner = 4·n_embd");
    }
    return 4 * nEmbd;
  }

  /** The field, or null when it is absent or JSON null. */
  private static JsonNode present(JsonNode root, String field) {
    JsonNode n = root.get(field);
    return n == null || n.isNull() ? null : n;
  }

  private static int requiredInt(JsonNode root, String field, String alias) {
    Integer value = optionalInt(root, field);
    Integer aliased = alias == null ? null : optionalInt(root, alias);
    if (value != null && aliased != null && !value.equals(aliased)) {
      throw new IllegalArgumentException(
          field + " (" + value + ") and its alias " + alias + " (" + aliased + ") disagree");
    }
    if (value == null && aliased == null) {
      throw new IllegalArgumentException(
          "missing required field " + field + (alias == null ? "" : " (or " + alias + ")"));
    }
    return value != null ? value : aliased;
  }

  private static Integer optionalInt(JsonNode root, String field) {
    JsonNode n = present(root, field);
    if (n == null) {
      return null;
    }
    if (!n.isIntegralNumber() || !n.canConvertToInt()) {
      throw new IllegalArgumentException(field + " must be an integer, got " + n);
    }
    return n.intValue();
  }

  private static boolean optionalBoolean(JsonNode root, String field, boolean dflt) {
    JsonNode n = present(root, field);
    if (n == null) {
      return dflt;
    }
    if (!n.isBoolean()) {
      throw new IllegalArgumentException(field + " must be true or false, got " + n);
    }
    return n.booleanValue();
  }

  /**
   * A token id field that may be an int or a list of ints (as in generation_config.json); empty
   * when absent or null.
   */
  static List<Integer> tokenIds(JsonNode root, String field) {
    JsonNode n = present(root, field);
    if (n == null) {
      return List.of();
    }
    if (n.isIntegralNumber() && n.canConvertToInt()) {
      return List.of(n.intValue());
    }
    if (n.isArray()) {
      Integer[] out = new Integer[n.size()];
      for (int i = 0; i < out.length; i++) {
        JsonNode v = n.get(i);
        if (!v.isIntegralNumber() || !v.canConvertToInt()) {
          throw new IllegalArgumentException(
              field + " must be an integer or a list of integers, got " + n);
        }
        out[i] = v.intValue();
      }
      return List.of(out);
    }
    throw new IllegalArgumentException(
        field + " must be an integer or a list of integers, got " + n);
  }

  /** config.json as the hub has it, without torch_dtype. */
  public String toHfJson() {
    return toHfJson(null);
  }

  /** config.json as the hub has it, with {@code torch_dtype} naming {@code dtype} (if non-null). */
  public String toHfJson(DType dtype) {
    Map<String, Object> m = new TreeMap<>(); // HF writes sorted keys
    m.put("activation_function", activation.hfName());
    m.put("architectures", List.of("GPTBigCodeForCausalLM"));
    m.put("attention_softmax_in_fp32", true);
    m.put("attn_pdrop", 0.1);
    m.put("bos_token_id", bosTokenId);
    m.put("embd_pdrop", 0.1);
    m.put("eos_token_id", eosTokenId);
    m.put("initializer_range", 0.02);
    // Through Float.toString so that 1e-5f is written as 1e-05, not 9.999999747378752E-6.
    m.put("layer_norm_epsilon", Double.parseDouble(Float.toString(layerNormEpsilon)));
    m.put("model_type", "gpt_bigcode");
    m.put("multi_query", multiQuery);
    m.put("n_embd", nEmbd);
    m.put("n_head", nHead);
    m.put("n_inner", nInner);
    m.put("n_layer", nLayer);
    m.put("n_positions", nPositions);
    m.put("resid_pdrop", 0.1);
    m.put("scale_attention_softmax_in_fp32", true);
    m.put("scale_attn_weights", scaleAttnWeights);
    if (dtype != null) {
      m.put("torch_dtype", torchDtype(dtype));
    }
    m.put("use_cache", true);
    m.put("vocab_size", vocabSize);
    return prettyJson(m);
  }

  /** PyTorch's name for a dtype, as config.json's torch_dtype spells it. */
  static String torchDtype(DType dtype) {
    return switch (dtype) {
      case F32 -> "float32";
      case F16 -> "float16";
      case BF16 -> "bfloat16";
    };
  }

  /** JSON indented like Python's {@code json.dumps(indent=2)}, with a final newline. */
  static String prettyJson(Object value) {
    DefaultPrettyPrinter pp =
        new DefaultPrettyPrinter()
            .withSeparators(
                Separators.createDefaultInstance()
                    .withObjectFieldValueSpacing(Separators.Spacing.AFTER))
            .withObjectIndenter(new DefaultIndenter("  ", "\n"))
            .withArrayIndenter(new DefaultIndenter("  ", "\n"));
    try {
      return JSON.writer(pp).writeValueAsString(value) + "\n";
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
