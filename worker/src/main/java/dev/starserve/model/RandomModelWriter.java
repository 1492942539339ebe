package dev.starserve.model;

import dev.starserve.checkpoint.Checkpoint;
import dev.starserve.checkpoint.CheckpointException;
import dev.starserve.checkpoint.DType;
import dev.starserve.checkpoint.SafetensorsWriter;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * Writes a complete HuggingFace model directory with random weights: what {@code make-model}
 * produces so that every shape, StarCoder-15.5B included, can be served and benchmarked without
 * downloading a checkpoint.
 *
 * <p>Values are a pure function of (seed, tensor name, element index): each tensor is cut into
 * {@link SafetensorsWriter#CHUNK_ELEMENTS}-element chunks, and each chunk draws from its own {@link
 * SplittableRandom} seeded by (seed, name, chunk). So the bytes do not depend on the number of
 * threads or of shards, and chunks can be filled in parallel.
 *
 * <p>Matrices and embeddings are N(0, std), biases N(0, std/2), LayerNorm weights 1 + N(0, std/10):
 * small enough that activations stay bounded through many layers, non-zero so that a kernel that
 * drops a bias or a LayerNorm term gives a different answer.
 */
public final class RandomModelWriter {

  static final String[] TOKENIZER_FILES = {
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"
  };

  private static final String TOKENIZER_RESOURCES = "/starcoder-tokenizer/";

  private RandomModelWriter() {}

  /**
   * Writes the model directory {@code outDir}, which must not exist or be empty.
   *
   * @param shards 1 for a single model.safetensors; K > 1 for K shards and an index
   */
  public static void write(
      Path outDir, GptBigCodeConfig cfg, DType dtype, long seed, double std, int shards)
      throws IOException {
    write(
        outDir,
        cfg,
        dtype,
        seed,
        std,
        shards,
        Math.min(4, Runtime.getRuntime().availableProcessors()));
  }

  static void write(
      Path outDir,
      GptBigCodeConfig cfg,
      DType dtype,
      long seed,
      double std,
      int shards,
      int threads)
      throws IOException {
    if (dtype == null || cfg == null) {
      throw new IllegalArgumentException("config and dtype are required");
    }
    if (!(std >= 0) || Double.isInfinite(std)) {
      throw new IllegalArgumentException("std must be a finite number >= 0, got " + std);
    }
    List<SafetensorsWriter.Entry> entries = new ArrayList<>();
    for (Map.Entry<String, long[]> t : GptBigCodeWeights.tensorShapes(cfg).entrySet()) {
      String name = GptBigCodeWeights.PREFIX + t.getKey();
      entries.add(new SafetensorsWriter.Entry(name, dtype, t.getValue(), filler(name, seed, std)));
    }
    if (shards < 1 || shards > entries.size()) {
      throw new IllegalArgumentException(
          "shards must be in [1, " + entries.size() + "] (the number of tensors), got " + shards);
    }
    boolean created = prepareEmptyDirectory(outDir);
    try {
      Files.writeString(outDir.resolve(ModelDirectory.CONFIG), cfg.toHfJson(dtype));
      Map<String, Object> gen = new TreeMap<>();
      gen.put("_from_model_config", true);
      gen.put("bos_token_id", cfg.bosTokenId());
      gen.put("eos_token_id", cfg.eosTokenId());
      Files.writeString(
          outDir.resolve(ModelDirectory.GENERATION_CONFIG), GptBigCodeConfig.prettyJson(gen));
      for (String f : TOKENIZER_FILES) {
        try (InputStream in =
            RandomModelWriter.class.getResourceAsStream(TOKENIZER_RESOURCES + f)) {
          if (in == null) {
            throw new IllegalStateException("resource " + TOKENIZER_RESOURCES + f + " is missing");
          }
          Files.copy(in, outDir.resolve(f));
        }
      }
      writeWeights(outDir, entries, shards, threads);
    } catch (IOException | RuntimeException e) {
      deleteContents(outDir, created);
      throw e;
    }
  }

  private static void writeWeights(
      Path outDir, List<SafetensorsWriter.Entry> entries, int shards, int threads)
      throws IOException {
    Map<String, String> metadata = Map.of("format", "pt");
    if (shards == 1) {
      SafetensorsWriter.write(outDir.resolve(Checkpoint.SINGLE_FILE), entries, metadata, threads);
      return;
    }
    List<List<SafetensorsWriter.Entry>> parts = split(entries, shards);
    Map<String, String> weightMap = new TreeMap<>();
    long totalSize = 0;
    for (int s = 0; s < parts.size(); s++) {
      String file = String.format("model-%05d-of-%05d.safetensors", s + 1, shards);
      SafetensorsWriter.write(outDir.resolve(file), parts.get(s), metadata, threads);
      for (SafetensorsWriter.Entry e : parts.get(s)) {
        weightMap.put(e.name(), file);
        totalSize += e.byteSize();
      }
    }
    Map<String, Object> index = new LinkedHashMap<>();
    index.put("metadata", Map.of("total_size", totalSize));
    index.put("weight_map", weightMap);
    Files.writeString(
        outDir.resolve(Checkpoint.INDEX_FILE),
        GptBigCodeConfig.prettyJson(index),
        StandardCharsets.UTF_8);
  }

  /**
   * Cuts the tensors, in order, into {@code shards} non-empty runs of roughly equal bytes: a new
   * shard starts once the running total passes the next 1/shards mark, or when the tensors left are
   * just enough to give every remaining shard one.
   */
  static List<List<SafetensorsWriter.Entry>> split(
      List<SafetensorsWriter.Entry> entries, int shards) {
    long total = 0;
    for (SafetensorsWriter.Entry e : entries) {
      total += e.byteSize();
    }
    List<List<SafetensorsWriter.Entry>> parts = new ArrayList<>();
    List<SafetensorsWriter.Entry> current = new ArrayList<>();
    long before = 0;
    for (int i = 0; i < entries.size(); i++) {
      int shard = parts.size();
      boolean passedMark = (double) before >= (double) total * (shard + 1) / shards;
      boolean mustMove = entries.size() - i <= shards - 1 - shard;
      if (!current.isEmpty() && shard < shards - 1 && (passedMark || mustMove)) {
        parts.add(current);
        current = new ArrayList<>();
      }
      current.add(entries.get(i));
      before += entries.get(i).byteSize();
    }
    parts.add(current);
    return parts;
  }

  /**
   * The values of tensor {@code name}: chunk by chunk, each chunk its own generator. Package
   * private so that tests can recompute what was written.
   */
  static SafetensorsWriter.Filler filler(String name, long seed, double std) {
    long tensorSeed = mix64(seed ^ fnv1a64(name));
    boolean layerNormWeight = name.matches(".*(ln_1|ln_2|ln_f)\\.weight");
    double scale = layerNormWeight ? std / 10 : name.endsWith(".bias") ? std / 2 : std;
    float offset = layerNormWeight ? 1f : 0f;
    return (start, dst, count) -> {
      if (start % SafetensorsWriter.CHUNK_ELEMENTS != 0) {
        throw new IllegalStateException("chunks must start at multiples of CHUNK_ELEMENTS");
      }
      long chunk = start / SafetensorsWriter.CHUNK_ELEMENTS;
      SplittableRandom rnd =
          new SplittableRandom(mix64(tensorSeed + 0x9E37_79B9_7F4A_7C15L * (chunk + 1)));
      for (int i = 0; i < count; i++) {
        dst[i] = offset + (float) (scale * rnd.nextGaussian());
      }
    };
  }

  /** Stafford's mix13 (the SplittableRandom finaliser): a bijective 64-bit scramble. */
  private static long mix64(long z) {
    z = (z ^ (z >>> 30)) * 0xBF58_476D_1CE4_E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D0_49BB_1331_11EBL;
    return z ^ (z >>> 31);
  }

  /** 64-bit FNV-1a of the UTF-8 bytes: fixed by definition, and wider than String.hashCode. */
  private static long fnv1a64(String s) {
    long h = 0xCBF2_9CE4_8422_2325L;
    for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
      h = (h ^ (b & 0xff)) * 0x0000_0100_0000_01B3L;
    }
    return h;
  }

  /** Creates {@code dir} or accepts it when empty; returns whether it was created. */
  private static boolean prepareEmptyDirectory(Path dir) throws IOException {
    if (Files.exists(dir)) {
      if (!Files.isDirectory(dir)) {
        throw new CheckpointException(
            dir, null, "output path exists and is not a directory; refusing to overwrite it");
      }
      try (Stream<Path> s = Files.list(dir)) {
        if (s.findAny().isPresent()) {
          throw new CheckpointException(
              dir,
              null,
              "output directory exists and is not empty; refusing to overwrite it (choose a new"
                  + " directory or empty this one)");
        }
      }
      return false;
    }
    Files.createDirectories(dir);
    return true;
  }

  /** Best-effort cleanup after a failed write: the directory was empty (or absent) before. */
  private static void deleteContents(Path dir, boolean created) {
    try (Stream<Path> s = Files.list(dir)) {
      for (Path p : (Iterable<Path>) s::iterator) {
        Files.deleteIfExists(p);
      }
      if (created) {
        Files.deleteIfExists(dir);
      }
    } catch (IOException ignored) {
      // The original failure is the one worth reporting.
    }
  }
}
