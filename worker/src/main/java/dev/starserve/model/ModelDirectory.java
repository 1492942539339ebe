package dev.starserve.model;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.starserve.checkpoint.Checkpoint;
import dev.starserve.checkpoint.CheckpointException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * A HuggingFace model directory, opened and checked as a whole:
 *
 * <pre>
 * config.json              required  architecture ({@link GptBigCodeConfig})
 * generation_config.json   optional  more eos ids, bos id
 * tokenizer.json           required  (read by the tokenizer; only its path is exposed here)
 * tokenizer_config.json    optional
 * model.safetensors | model.safetensors.index.json + shards   required ({@link Checkpoint})
 * </pre>
 *
 * Closing it unmaps the weights.
 */
public final class ModelDirectory implements AutoCloseable {

  public static final String CONFIG = "config.json";
  public static final String GENERATION_CONFIG = "generation_config.json";
  public static final String TOKENIZER = "tokenizer.json";
  public static final String TOKENIZER_CONFIG = "tokenizer_config.json";

  private static final ObjectMapper JSON = new ObjectMapper();

  private final Path dir;
  private final GptBigCodeConfig config;
  private final Checkpoint checkpoint;
  private final GptBigCodeWeights weights;
  private final int[] eosTokenIds;
  private final int bosTokenId;

  private ModelDirectory(
      Path dir,
      GptBigCodeConfig config,
      Checkpoint checkpoint,
      GptBigCodeWeights weights,
      int[] eosTokenIds,
      int bosTokenId) {
    this.dir = dir;
    this.config = config;
    this.checkpoint = checkpoint;
    this.weights = weights;
    this.eosTokenIds = eosTokenIds;
    this.bosTokenId = bosTokenId;
  }

  /** Opens {@code dir}; cheap checks (configs, tokenizer) come before mapping the weights. */
  public static ModelDirectory open(Path dir) {
    if (!Files.isDirectory(dir)) {
      throw new CheckpointException(dir, null, "model directory does not exist");
    }
    Path configJson = dir.resolve(CONFIG);
    GptBigCodeConfig config = GptBigCodeConfig.read(configJson);
    Set<Integer> eos = new LinkedHashSet<>();
    eos.add(config.eosTokenId());
    // config.json may itself list several eos ids; read() kept only the first.
    eos.addAll(tokenIds(configJson, readJson(configJson), "eos_token_id", config.vocabSize()));
    int bos = config.bosTokenId();
    Path genJson = dir.resolve(GENERATION_CONFIG);
    if (Files.exists(genJson)) {
      JsonNode gen = readJson(genJson);
      eos.addAll(tokenIds(genJson, gen, "eos_token_id", config.vocabSize()));
      List<Integer> genBos = tokenIds(genJson, gen, "bos_token_id", config.vocabSize());
      bos = genBos.isEmpty() ? bos : genBos.getFirst();
    }
    if (!Files.isRegularFile(dir.resolve(TOKENIZER))) {
      throw new CheckpointException(
          dir, null, "no " + TOKENIZER + " in the model directory (the tokenizer is required)");
    }
    Checkpoint ck = Checkpoint.open(dir);
    try {
      GptBigCodeWeights weights = GptBigCodeWeights.bind(ck, config);
      int[] eosIds = eos.stream().mapToInt(Integer::intValue).toArray();
      return new ModelDirectory(dir, config, ck, weights, eosIds, bos);
    } catch (RuntimeException e) {
      ck.close();
      throw e;
    }
  }

  private static JsonNode readJson(Path file) {
    JsonNode root;
    try {
      root = JSON.readTree(Files.readAllBytes(file));
    } catch (JacksonException e) {
      throw new CheckpointException(file, null, "malformed JSON: " + e.getOriginalMessage(), e);
    } catch (IOException e) {
      throw new CheckpointException(file, null, "cannot read: " + e, e);
    }
    if (root == null || !root.isObject()) {
      throw new CheckpointException(file, null, "must be a JSON object");
    }
    return root;
  }

  private static List<Integer> tokenIds(Path file, JsonNode root, String field, int vocab) {
    List<Integer> ids;
    try {
      ids = GptBigCodeConfig.tokenIds(root, field);
    } catch (IllegalArgumentException e) {
      throw new CheckpointException(file, null, e.getMessage(), e);
    }
    for (int id : ids) {
      if (id < 0 || id >= vocab) {
        throw new CheckpointException(
            file, null, field + " " + id + " is outside the vocabulary [0, " + vocab + ")");
      }
    }
    return ids;
  }

  /** The directory. */
  public Path dir() {
    return dir;
  }

  /** The directory's name, e.g. {@code starcoderbase-1b}. */
  public String modelId() {
    Path name = dir.toAbsolutePath().normalize().getFileName();
    return name == null ? dir.toString() : name.toString();
  }

  /** The architecture from config.json. */
  public GptBigCodeConfig config() {
    return config;
  }

  /** The bound weights (views into {@link #checkpoint()}). */
  public GptBigCodeWeights weights() {
    return weights;
  }

  /** The mapped weight files. */
  public Checkpoint checkpoint() {
    return checkpoint;
  }

  /** Ids that end generation: config.json's first, then generation_config.json's, distinct. */
  public int[] eosTokenIds() {
    return eosTokenIds.clone();
  }

  /** generation_config.json's bos_token_id when it has one, else config.json's. */
  public int bosTokenId() {
    return bosTokenId;
  }

  /** tokenizer.json (always exists: {@link #open} checks). */
  public Path tokenizerJson() {
    return dir.resolve(TOKENIZER);
  }

  /** tokenizer_config.json, or null when the directory has none. */
  public Path tokenizerConfigJson() {
    Path p = dir.resolve(TOKENIZER_CONFIG);
    return Files.isRegularFile(p) ? p : null;
  }

  /** Unmaps the weights; views from {@link #weights()} must not be used afterwards. */
  @Override
  public void close() {
    checkpoint.close();
  }
}
