package dev.starserve.checkpoint;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The weights of a model directory: one {@code model.safetensors}, or the shards that {@code
 * model.safetensors.index.json} lists, all mapped in one shared arena that {@link #close()}
 * releases.
 *
 * <p>NOTE: when both a single file and an index are present, the single file wins, as in
 * HuggingFace transformers. A sharded checkpoint must agree with its index exactly: every listed
 * tensor in the shard the index names, nothing unlisted, nothing twice.
 */
public final class Checkpoint implements AutoCloseable {

  public static final String SINGLE_FILE = "model.safetensors";
  public static final String INDEX_FILE = "model.safetensors.index.json";

  private static final Logger LOG = LoggerFactory.getLogger(Checkpoint.class);
  private static final ObjectMapper JSON = new ObjectMapper();

  private final Path dir;
  private final Path source;
  private final Arena arena;
  private final List<SafetensorsFile> files;
  private final Map<String, TensorView> tensors;

  private Checkpoint(
      Path dir,
      Path source,
      Arena arena,
      List<SafetensorsFile> files,
      Map<String, TensorView> tensors) {
    this.dir = dir;
    this.source = source;
    this.arena = arena;
    this.files = files;
    this.tensors = tensors;
  }

  /** Opens the weights of {@code modelDir}; see the class comment for the layouts accepted. */
  public static Checkpoint open(Path modelDir) {
    if (!Files.isDirectory(modelDir)) {
      throw new CheckpointException(modelDir, null, "model directory does not exist");
    }
    Path single = modelDir.resolve(SINGLE_FILE);
    Path index = modelDir.resolve(INDEX_FILE);
    Arena arena = Arena.ofShared();
    try {
      if (Files.exists(single)) {
        if (Files.exists(index)) {
          LOG.info("{}: both {} and {} exist; using {}", modelDir, SINGLE_FILE, INDEX_FILE, single);
        }
        SafetensorsFile f = SafetensorsFile.open(single, arena);
        return new Checkpoint(modelDir, single, arena, List.of(f), f.tensors());
      }
      if (Files.exists(index)) {
        return openSharded(modelDir, index, arena);
      }
      throw new CheckpointException(
          modelDir,
          null,
          "no weights: looked for "
              + SINGLE_FILE
              + " and "
              + INDEX_FILE
              + "; found "
              + describeContents(modelDir)
              + " (StarServe reads safetensors only; convert .bin/.pt checkpoints first)");
    } catch (RuntimeException e) {
      arena.close();
      throw e;
    }
  }

  private static Checkpoint openSharded(Path dir, Path index, Arena arena) {
    JsonNode root = readJson(index);
    Map<String, String> weightMap = weightMap(index, root);
    // Open every shard once, in name order, so names() is deterministic.
    Map<String, SafetensorsFile> shards = new TreeMap<>();
    for (String shard : new TreeSet<>(weightMap.values())) {
      Path p = dir.resolve(shard).normalize();
      if (!p.startsWith(dir.normalize()) || shard.contains("/") || shard.contains("\\")) {
        throw new CheckpointException(
            index, null, "shard file name '" + shard + "' must name a file in " + dir);
      }
      if (!Files.isRegularFile(p)) {
        throw new CheckpointException(
            index, null, "index references shard '" + shard + "', which does not exist in " + dir);
      }
      shards.put(shard, SafetensorsFile.open(p, arena));
    }
    // Where each tensor really is; a tensor must be in exactly one shard.
    Map<String, String> foundIn = new LinkedHashMap<>();
    Map<String, TensorView> tensors = new LinkedHashMap<>();
    for (Map.Entry<String, SafetensorsFile> s : shards.entrySet()) {
      for (TensorView t : s.getValue().tensors().values()) {
        String other = foundIn.putIfAbsent(t.name(), s.getKey());
        if (other != null) {
          throw new CheckpointException(
              s.getValue().file(),
              t.name(),
              "tensor is in two files: " + other + " and " + s.getKey());
        }
        tensors.put(t.name(), t);
      }
    }
    for (Map.Entry<String, String> w : weightMap.entrySet()) {
      String actual = foundIn.get(w.getKey());
      if (actual == null) {
        throw new CheckpointException(
            dir.resolve(w.getValue()),
            w.getKey(),
            "listed in " + INDEX_FILE + " under " + w.getValue() + " but absent from that file");
      }
      if (!actual.equals(w.getValue())) {
        throw new CheckpointException(
            dir.resolve(actual),
            w.getKey(),
            INDEX_FILE + " places it in " + w.getValue() + " but it is in " + actual);
      }
    }
    for (Map.Entry<String, String> f : foundIn.entrySet()) {
      if (!weightMap.containsKey(f.getKey())) {
        throw new CheckpointException(
            dir.resolve(f.getValue()), f.getKey(), "tensor is not listed in " + INDEX_FILE);
      }
    }
    Checkpoint ck =
        new Checkpoint(
            dir, index, arena, List.copyOf(shards.values()), Collections.unmodifiableMap(tensors));
    JsonNode totalSize = root.path("metadata").path("total_size");
    if (totalSize.isIntegralNumber() && totalSize.longValue() != ck.totalBytes()) {
      // NOTE: transformers never checks total_size either; a wrong one harms nothing.
      LOG.warn(
          "{}: metadata.total_size is {} but the shards hold {} bytes of tensors",
          index,
          totalSize.longValue(),
          ck.totalBytes());
    }
    return ck;
  }

  private static JsonNode readJson(Path index) {
    try {
      return JSON.readTree(index.toFile());
    } catch (JacksonException e) {
      throw new CheckpointException(index, null, "malformed JSON: " + e.getOriginalMessage(), e);
    } catch (IOException e) {
      throw new CheckpointException(index, null, "cannot read: " + e, e);
    }
  }

  private static Map<String, String> weightMap(Path index, JsonNode root) {
    JsonNode map = root == null ? null : root.get("weight_map");
    if (map == null || !map.isObject()) {
      throw new CheckpointException(
          index, null, "has no weight_map object (tensor name -> shard file)");
    }
    Map<String, String> out = new LinkedHashMap<>();
    for (Map.Entry<String, JsonNode> e : map.properties()) {
      if (!e.getValue().isTextual()) {
        throw new CheckpointException(
            index, e.getKey(), "weight_map value must be a file name, got " + e.getValue());
      }
      out.put(e.getKey(), e.getValue().textValue());
    }
    if (out.isEmpty()) {
      throw new CheckpointException(index, null, "weight_map is empty");
    }
    return out;
  }

  private static String describeContents(Path dir) {
    List<String> names = new ArrayList<>();
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
      for (Path p : ds) {
        names.add(p.getFileName().toString());
      }
    } catch (IOException e) {
      return "an unreadable directory (" + e + ")";
    }
    Collections.sort(names);
    return names.isEmpty() ? "an empty directory" : String.valueOf(names);
  }

  /** The model directory. */
  public Path dir() {
    return dir;
  }

  /** {@code model.safetensors} or {@code model.safetensors.index.json}: what a user would fix. */
  public Path source() {
    return source;
  }

  /** The mapped files, in the order their tensors appear in {@link #names()}. */
  public List<Path> files() {
    return files.stream().map(SafetensorsFile::file).toList();
  }

  /** Every tensor name: file order within a file, shards in file-name order. */
  public Set<String> names() {
    return tensors.keySet();
  }

  /** The tensor called {@code name}, or null when the checkpoint has none. */
  public TensorView tensor(String name) {
    return tensors.get(name);
  }

  /** Total bytes of tensor data. */
  public long totalBytes() {
    long sum = 0;
    for (TensorView t : tensors.values()) {
      sum += t.data().byteSize();
    }
    return sum;
  }

  /** Unmaps every file; tensor views must not be used afterwards. Idempotent. */
  @Override
  public void close() {
    if (arena.scope().isAlive()) {
      arena.close();
    }
  }
}
