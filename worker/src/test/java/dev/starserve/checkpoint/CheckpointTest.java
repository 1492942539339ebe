package dev.starserve.checkpoint;

import static dev.starserve.checkpoint.SafetensorsFileTest.assertRejected;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointTest {

  @TempDir Path dir;

  private static final long[] V2 = {2};
  private static final String S1 = "model-00001-of-00002.safetensors";
  private static final String S2 = "model-00002-of-00002.safetensors";

  private void index(String weightMapJson) throws IOException {
    Files.writeString(
        dir.resolve(Checkpoint.INDEX_FILE),
        "{\"metadata\":{\"total_size\":20},\"weight_map\":" + weightMapJson + "}");
  }

  private void twoShards() throws IOException {
    new HandMadeSafetensors()
        .tensor("a", "F32", V2, 1, 2)
        .tensor("b", "F32", V2, 3, 4)
        .writeTo(dir.resolve(S1));
    new HandMadeSafetensors().tensor("c", "BF16", V2, 5, 6).writeTo(dir.resolve(S2));
  }

  @Test
  void opensASingleFile() throws IOException {
    new HandMadeSafetensors()
        .tensor("x", "F32", V2, 1, 2)
        .tensor("y", "F16", V2, 3, 4)
        .writeTo(dir.resolve("model.safetensors"));
    try (Checkpoint ck = Checkpoint.open(dir)) {
      assertEquals(List.of("x", "y"), List.copyOf(ck.names()));
      assertEquals(4f, ck.tensor("y").getFloat(1));
      assertNull(ck.tensor("z"));
      assertEquals(dir, ck.dir());
      assertEquals(dir.resolve("model.safetensors"), ck.source());
    }
  }

  @Test
  void opensShardsListedInTheIndexAndUnmapsThemOnClose() throws IOException {
    twoShards();
    index("{\"a\":\"" + S1 + "\",\"c\":\"" + S2 + "\",\"b\":\"" + S1 + "\"}");
    TensorView c;
    try (Checkpoint ck = Checkpoint.open(dir)) {
      assertEquals(List.of("a", "b", "c"), List.copyOf(ck.names()));
      assertEquals(List.of(dir.resolve(S1), dir.resolve(S2)), ck.files());
      c = ck.tensor("c");
      assertEquals(dir.resolve(S2), c.file());
      assertEquals(6f, c.getFloat(1));
      assertEquals(4f, ck.tensor("b").getFloat(1));
      assertEquals(20, ck.totalBytes());
    }
    assertThrows(IllegalStateException.class, () -> c.getFloat(0));
  }

  @Test
  void rejectsADirectoryWithoutWeightsListingWhatItLookedForAndFound() throws IOException {
    Files.writeString(dir.resolve("config.json"), "{}");
    Files.write(dir.resolve("pytorch_model.bin"), new byte[10]);
    assertRejected(
        () -> Checkpoint.open(dir),
        dir,
        null,
        "no weights: looked for model.safetensors and model.safetensors.index.json",
        "[config.json, pytorch_model.bin]",
        "safetensors only");
  }

  @Test
  void rejectsAnIndexThatPointsToAMissingShard() throws IOException {
    twoShards();
    Files.delete(dir.resolve(S2));
    index("{\"a\":\"" + S1 + "\",\"b\":\"" + S1 + "\",\"c\":\"" + S2 + "\"}");
    assertRejected(
        () -> Checkpoint.open(dir),
        dir.resolve(Checkpoint.INDEX_FILE),
        null,
        "index references shard '" + S2 + "', which does not exist");
  }

  @Test
  void rejectsAnIndexedTensorThatIsNotInItsShard() throws IOException {
    twoShards();
    index("{\"a\":\"" + S1 + "\",\"b\":\"" + S1 + "\",\"c\":\"" + S2 + "\",\"d\":\"" + S2 + "\"}");
    assertRejected(
        () -> Checkpoint.open(dir),
        dir.resolve(S2),
        "d",
        "listed in model.safetensors.index.json under " + S2 + " but absent from that file");
  }

  @Test
  void rejectsATensorThatIsInADifferentShardThanTheIndexSays() throws IOException {
    twoShards();
    index("{\"a\":\"" + S1 + "\",\"b\":\"" + S2 + "\",\"c\":\"" + S2 + "\"}");
    assertRejected(
        () -> Checkpoint.open(dir),
        dir.resolve(S1),
        "b",
        "places it in " + S2 + " but it is in " + S1);
  }

  @Test
  void rejectsTheSameTensorInTwoShards() throws IOException {
    twoShards();
    new HandMadeSafetensors()
        .tensor("c", "BF16", V2, 5, 6)
        .tensor("a", "F32", V2, 1, 2)
        .writeTo(dir.resolve(S2));
    index("{\"a\":\"" + S1 + "\",\"b\":\"" + S1 + "\",\"c\":\"" + S2 + "\"}");
    assertRejected(
        () -> Checkpoint.open(dir),
        dir.resolve(S2),
        "a",
        "tensor is in two files: " + S1 + " and " + S2);
  }

  @Test
  void rejectsAShardTensorTheIndexDoesNotList() throws IOException {
    twoShards();
    index("{\"a\":\"" + S1 + "\",\"c\":\"" + S2 + "\"}");
    assertRejected(
        () -> Checkpoint.open(dir),
        dir.resolve(S1),
        "b",
        "not listed in model.safetensors.index.json");
  }

  @Test
  void rejectsAShardNameThatLeavesTheDirectory() throws IOException {
    twoShards();
    index("{\"a\":\"../" + S1 + "\"}");
    assertRejected(
        () -> Checkpoint.open(dir),
        dir.resolve(Checkpoint.INDEX_FILE),
        null,
        "must name a file in");
  }

  @Test
  void rejectsAnIndexWithoutAWeightMap() throws IOException {
    twoShards();
    Files.writeString(dir.resolve(Checkpoint.INDEX_FILE), "{\"metadata\":{}}");
    assertRejected(
        () -> Checkpoint.open(dir), dir.resolve(Checkpoint.INDEX_FILE), null, "no weight_map");
  }

  @Test
  void rejectsAMissingDirectory() {
    Path missing = dir.resolve("nope");
    assertRejected(() -> Checkpoint.open(missing), missing, null, "does not exist");
  }
}
