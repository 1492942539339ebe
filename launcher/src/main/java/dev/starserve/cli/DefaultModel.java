package dev.starserve.cli;

import dev.starserve.checkpoint.DType;
import dev.starserve.model.ModelShape;
import dev.starserve.model.RandomModelWriter;
import java.io.IOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The model {@code serve} runs when given none: a {@code tiny_starcoder_py}-shaped bf16 model with
 * random weights (seed 0) and the StarCoder tokenizer, created once in the cache folder so that a
 * new user sees the whole system answer with one command. Its output is gibberish by design.
 */
final class DefaultModel {
  static final ModelShape SHAPE = ModelShape.TINY_STARCODER_PY;

  private DefaultModel() {}

  /**
   * The cache folder: {@code $STARSERVE_CACHE_DIR}, else {@code $XDG_CACHE_HOME/starserve}, else
   * {@code ~/.cache/starserve}.
   */
  static Path cacheDir(Map<String, String> env) {
    String explicit = env.get("STARSERVE_CACHE_DIR");
    if (explicit != null && !explicit.isBlank()) {
      return Path.of(explicit);
    }
    String xdg = env.get("XDG_CACHE_HOME");
    if (xdg != null && !xdg.isBlank()) {
      return Path.of(xdg, "starserve");
    }
    return Path.of(System.getProperty("user.home"), ".cache", "starserve");
  }

  /**
   * The directory of a random-weight model of {@code shape} (the default: {@link #SHAPE}) under
   * {@code cache}, writing it first if it is not there yet. Written into a temporary sibling and
   * renamed, so an interrupted write never leaves a half model behind; a concurrent creator's
   * finished copy is kept.
   *
   * @return the directory and whether this call created it
   */
  static Created ensure(Path cache, ModelShape shape) throws IOException {
    String name = shape.cliName() + "-random";
    Path dir = cache.resolve("models").resolve(name);
    if (Files.isRegularFile(dir.resolve("config.json"))) {
      return new Created(dir, false);
    }
    Files.createDirectories(dir.getParent());
    Path tmp = Files.createTempDirectory(dir.getParent(), name + ".partial-");
    try {
      Files.delete(tmp); // the writer wants a new or empty directory; it creates it itself
      RandomModelWriter.write(tmp, shape.config(), DType.BF16, 0, 0.02, 1);
      try {
        Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
      } catch (FileAlreadyExistsException | AtomicMoveNotSupportedException e) {
        if (!Files.isRegularFile(dir.resolve("config.json"))) {
          throw e;
        }
        return new Created(dir, false); // another process finished first
      } catch (IOException e) {
        if (Files.isRegularFile(dir.resolve("config.json"))) {
          return new Created(dir, false);
        }
        throw e;
      }
      return new Created(dir, true);
    } finally {
      deleteTree(tmp);
    }
  }

  record Created(Path dir, boolean created) {}

  private static void deleteTree(Path p) throws IOException {
    if (!Files.exists(p)) {
      return;
    }
    try (Stream<Path> s = Files.walk(p)) {
      for (Path q : s.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(q);
      }
    }
  }
}
