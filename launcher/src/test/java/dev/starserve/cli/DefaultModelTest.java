package dev.starserve.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.model.ModelDirectory;
import dev.starserve.model.ModelShape;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DefaultModelTest {
  @Test
  void createsTheModelOnceAndLeavesNoPartialCopies(@TempDir Path cache) throws Exception {
    DefaultModel.Created first = DefaultModel.ensure(cache, ModelShape.TINY);
    assertTrue(first.created());
    long written = Files.getLastModifiedTime(first.dir().resolve("config.json")).toMillis();
    try (ModelDirectory md = ModelDirectory.open(first.dir())) {
      assertEquals(ModelShape.TINY.config().nLayer(), md.config().nLayer());
    }

    DefaultModel.Created second = DefaultModel.ensure(cache, ModelShape.TINY);
    assertFalse(second.created());
    assertEquals(first.dir(), second.dir());
    assertEquals(
        written, Files.getLastModifiedTime(second.dir().resolve("config.json")).toMillis());
    try (Stream<Path> s = Files.list(cache.resolve("models"))) {
      assertEquals(1, s.count(), "only the finished model directory remains");
    }
  }

  @Test
  void cacheFolderFollowsTheEnvironment() {
    assertEquals(Path.of("/x/c"), DefaultModel.cacheDir(Map.of("STARSERVE_CACHE_DIR", "/x/c")));
    assertEquals(
        Path.of("/x/xdg/starserve"), DefaultModel.cacheDir(Map.of("XDG_CACHE_HOME", "/x/xdg")));
    assertEquals(
        Path.of(System.getProperty("user.home"), ".cache", "starserve"),
        DefaultModel.cacheDir(Map.of()));
  }
}
