package dev.starserve.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.starserve.checkpoint.Bf16;
import dev.starserve.checkpoint.Checkpoint;
import dev.starserve.checkpoint.CheckpointException;
import dev.starserve.checkpoint.DType;
import dev.starserve.checkpoint.SafetensorsFile;
import dev.starserve.checkpoint.SafetensorsWriter;
import dev.starserve.checkpoint.TensorView;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class RandomModelWriterTest {

  @TempDir Path tmp;

  private static final GptBigCodeConfig TINY = ModelShape.TINY.config();
  private static final double STD = 0.02;

  private static List<String> files(Path dir) throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return s.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  /** The value written at element i of tensor t, recomputed chunk by chunk from the filler. */
  private static float[] expected(TensorView t, long seed) {
    SafetensorsWriter.Filler f = RandomModelWriter.filler(t.name(), seed, STD);
    float[] out = new float[(int) t.numel()];
    float[] chunk = new float[SafetensorsWriter.CHUNK_ELEMENTS];
    for (long start = 0; start < out.length; start += SafetensorsWriter.CHUNK_ELEMENTS) {
      int n = (int) Math.min(SafetensorsWriter.CHUNK_ELEMENTS, out.length - start);
      f.fill(start, chunk, n);
      System.arraycopy(chunk, 0, out, (int) start, n);
    }
    return out;
  }

  private static float stored(DType dtype, float x) {
    return switch (dtype) {
      case F32 -> x;
      case BF16 -> Bf16.widen(Bf16.round(x));
      case F16 -> Float.float16ToFloat(Float.floatToFloat16(x));
    };
  }

  @ParameterizedTest
  @CsvSource({"F32, 1", "F32, 3", "BF16, 1", "BF16, 3", "F16, 1", "F16, 3"})
  void everyTensorReadsBackAsWrittenThroughModelDirectory(DType dtype, int shards)
      throws IOException {
    Path out = tmp.resolve("tiny");
    RandomModelWriter.write(out, TINY, dtype, 42, STD, shards);
    double relTol = dtype == DType.F32 ? 0 : dtype == DType.BF16 ? 1.0 / 256 : 1.0 / 2048;
    try (ModelDirectory md = ModelDirectory.open(out)) {
      assertEquals(TINY, md.config());
      assertEquals("tiny", md.modelId());
      assertEquals(2 + 12 * 2 + 2, md.checkpoint().names().size());
      assertTrue(md.weights().tiedLmHead());
      for (String name : md.checkpoint().names()) {
        TensorView t = md.checkpoint().tensor(name);
        assertEquals(dtype, t.dtype(), name);
        float[] want = expected(t, 42);
        for (int i = 0; i < want.length; i++) {
          float got = t.getFloat(i);
          if (got != stored(dtype, want[i])) {
            assertEquals(stored(dtype, want[i]), got, name + "[" + i + "]");
          }
          // and independently of the converter: within half an ulp of the stored precision
          if (Math.abs(got - want[i]) > relTol * Math.abs(want[i]) + 1e-7) {
            assertEquals(want[i], got, relTol * Math.abs(want[i]), name + "[" + i + "]");
          }
        }
      }
    }
    List<String> names = files(out);
    if (shards == 1) {
      assertTrue(names.contains("model.safetensors"), names.toString());
      assertFalse(names.contains(Checkpoint.INDEX_FILE));
    } else {
      assertTrue(
          names.containsAll(
              List.of(
                  "model-00001-of-00003.safetensors",
                  "model-00002-of-00003.safetensors",
                  "model-00003-of-00003.safetensors",
                  Checkpoint.INDEX_FILE)),
          names.toString());
    }
  }

  @Test
  void shardedAndSingleFileCheckpointsHoldIdenticalBytesForEveryTensor() throws IOException {
    RandomModelWriter.write(tmp.resolve("one"), TINY, DType.BF16, 7, STD, 1);
    RandomModelWriter.write(tmp.resolve("five"), TINY, DType.BF16, 7, STD, 5);
    try (Checkpoint one = Checkpoint.open(tmp.resolve("one"));
        Checkpoint five = Checkpoint.open(tmp.resolve("five"))) {
      assertEquals(5, five.files().size());
      assertEquals(one.names(), Set.copyOf(five.names()));
      for (String name : one.names()) {
        assertEquals(-1, one.tensor(name).data().mismatch(five.tensor(name).data()), name);
      }
    }
  }

  @Test
  void theIndexListsEveryTensorAndTheTotalSizeLikeHuggingFace() throws IOException {
    Path out = tmp.resolve("m");
    RandomModelWriter.write(out, TINY, DType.F16, 1, STD, 3);
    JsonNode index = new ObjectMapper().readTree(out.resolve(Checkpoint.INDEX_FILE).toFile());
    long total = 0;
    try (Checkpoint ck = Checkpoint.open(out)) {
      assertEquals(ck.names().size(), index.get("weight_map").size());
      for (String name : ck.names()) {
        assertEquals(
            ck.tensor(name).file().getFileName().toString(),
            index.get("weight_map").get(name).asText());
        total += ck.tensor(name).numel() * 2;
      }
    }
    assertEquals(total, index.get("metadata").get("total_size").longValue());
  }

  @Test
  void writesConfigGenerationConfigTokenizerAndPtMetadata() throws IOException {
    Path out = tmp.resolve("m");
    RandomModelWriter.write(out, TINY, DType.BF16, 1, STD, 1);
    assertEquals(
        List.of(
            "config.json",
            "generation_config.json",
            "model.safetensors",
            "special_tokens_map.json",
            "tokenizer.json",
            "tokenizer_config.json"),
        files(out));
    JsonNode cfg = new ObjectMapper().readTree(out.resolve("config.json").toFile());
    assertEquals("bfloat16", cfg.get("torch_dtype").asText());
    JsonNode gen = new ObjectMapper().readTree(out.resolve("generation_config.json").toFile());
    assertTrue(gen.get("_from_model_config").booleanValue());
    assertEquals(0, gen.get("eos_token_id").intValue());
    assertEquals(0, gen.get("bos_token_id").intValue());
    for (String f : RandomModelWriter.TOKENIZER_FILES) {
      try (InputStream in = getClass().getResourceAsStream("/starcoder-tokenizer/" + f)) {
        assertArrayEquals(in.readAllBytes(), Files.readAllBytes(out.resolve(f)), f);
      }
    }
    try (SafetensorsFile sf = SafetensorsFile.open(out.resolve("model.safetensors"))) {
      assertEquals(Map.of("format", "pt"), sf.metadata());
      assertEquals("transformer.wte.weight", sf.tensors().keySet().iterator().next());
      assertEquals(0, sf.uncoveredBytes());
    }
  }

  @Test
  void sameSeedGivesByteIdenticalFilesWhateverTheThreadCount() throws IOException {
    RandomModelWriter.write(tmp.resolve("a"), TINY, DType.BF16, 99, STD, 2, 1);
    RandomModelWriter.write(tmp.resolve("b"), TINY, DType.BF16, 99, STD, 2, 4);
    List<String> names = files(tmp.resolve("a"));
    assertEquals(names, files(tmp.resolve("b")));
    for (String f : names) {
      assertEquals(-1, Files.mismatch(tmp.resolve("a").resolve(f), tmp.resolve("b").resolve(f)), f);
    }
  }

  @Test
  void aDifferentSeedGivesDifferentWeights() throws IOException {
    RandomModelWriter.write(tmp.resolve("a"), TINY, DType.F32, 1, STD, 1);
    RandomModelWriter.write(tmp.resolve("b"), TINY, DType.F32, 2, STD, 1);
    try (Checkpoint a = Checkpoint.open(tmp.resolve("a"));
        Checkpoint b = Checkpoint.open(tmp.resolve("b"))) {
      for (String name : a.names()) {
        assertNotEquals(-1, a.tensor(name).data().mismatch(b.tensor(name).data()), name);
      }
    }
  }

  @Test
  void valuesFollowTheIntendedDistributions() throws IOException {
    RandomModelWriter.write(tmp.resolve("m"), TINY, DType.F32, 5, STD, 1);
    try (Checkpoint ck = Checkpoint.open(tmp.resolve("m"))) {
      double[] wte = moments(ck.tensor("transformer.wte.weight")); // 3.1M values
      assertEquals(0, wte[0], 1e-4);
      assertEquals(STD, wte[1], STD * 0.01);
      double[] fc = moments(ck.tensor("transformer.h.1.mlp.c_fc.weight"));
      assertEquals(STD, fc[1], STD * 0.05);
      double[] bias = moments(ck.tensor("transformer.h.0.mlp.c_fc.bias"));
      assertEquals(STD / 2, bias[1], STD / 2 * 0.2);
      TensorView ln = ck.tensor("transformer.h.0.ln_1.weight");
      double[] lnm = moments(ln);
      assertEquals(1, lnm[0], 0.001);
      assertEquals(STD / 10, lnm[1], STD / 10 * 0.3);
      // and distinct chunks of one tensor are not copies of each other
      TensorView w = ck.tensor("transformer.wte.weight");
      assertNotEquals(w.getFloat(0), w.getFloat(SafetensorsWriter.CHUNK_ELEMENTS));
    }
  }

  private static double[] moments(TensorView t) {
    double sum = 0;
    double sq = 0;
    for (long i = 0; i < t.numel(); i++) {
      double v = t.getFloat(i);
      sum += v;
      sq += v * v;
    }
    double mean = sum / t.numel();
    return new double[] {mean, Math.sqrt(sq / t.numel() - mean * mean)};
  }

  @Test
  void refusesANonEmptyOutputDirectoryAndLeavesItAlone() throws IOException {
    Path out = Files.createDirectories(tmp.resolve("busy"));
    Files.writeString(out.resolve("notes.txt"), "mine");
    CheckpointException e =
        assertThrows(
            CheckpointException.class,
            () -> RandomModelWriter.write(out, TINY, DType.BF16, 1, STD, 1));
    assertEquals(out, e.file());
    assertTrue(e.getMessage().contains("exists and is not empty; refusing to overwrite"));
    assertEquals(List.of("notes.txt"), files(out));
  }

  @Test
  void refusesAnOutputPathThatIsAFile() throws IOException {
    Path out = Files.writeString(tmp.resolve("file"), "x");
    CheckpointException e =
        assertThrows(
            CheckpointException.class,
            () -> RandomModelWriter.write(out, TINY, DType.BF16, 1, STD, 1));
    assertTrue(e.getMessage().contains("not a directory"), e.getMessage());
    assertEquals("x", Files.readString(out));
  }

  @Test
  void writesIntoAnEmptyExistingDirectory() throws IOException {
    Path out = Files.createDirectories(tmp.resolve("empty"));
    RandomModelWriter.write(out, TINY, DType.BF16, 1, STD, 1);
    assertTrue(Files.exists(out.resolve("model.safetensors")));
  }

  @Test
  void rejectsBadArgumentsBeforeWritingAnything() {
    Path out = tmp.resolve("never");
    assertThrows(
        IllegalArgumentException.class,
        () -> RandomModelWriter.write(out, TINY, DType.BF16, 1, STD, 0));
    assertThrows(
        IllegalArgumentException.class,
        () -> RandomModelWriter.write(out, TINY, DType.BF16, 1, STD, 29));
    assertThrows(
        IllegalArgumentException.class,
        () -> RandomModelWriter.write(out, TINY, DType.BF16, 1, Double.NaN, 1));
    assertFalse(Files.exists(out));
  }

  @Test
  void splitGivesEveryShardATensorAndKeepsTheOrder() {
    List<SafetensorsWriter.Entry> es = new ArrayList<>();
    for (int i = 0; i < 6; i++) {
      long n = i == 0 ? 1000 : 1; // one huge tensor first, as wte is
      es.add(new SafetensorsWriter.Entry("t" + i, DType.F32, new long[] {n}, (s, d, c) -> {}));
    }
    List<List<SafetensorsWriter.Entry>> parts = RandomModelWriter.split(es, 4);
    assertEquals(4, parts.size());
    assertEquals(List.of("t0"), parts.get(0).stream().map(SafetensorsWriter.Entry::name).toList());
    List<String> flat = new ArrayList<>();
    for (List<SafetensorsWriter.Entry> p : parts) {
      assertFalse(p.isEmpty());
      p.forEach(e -> flat.add(e.name()));
    }
    assertEquals(List.of("t0", "t1", "t2", "t3", "t4", "t5"), flat);
    assertEquals(6, RandomModelWriter.split(es, 6).size());
  }
}
