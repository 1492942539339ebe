package dev.starserve.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsWriterTest {

  @TempDir Path dir;

  @Test
  void headerIsCompactJsonPaddedWithSpacesToAMultipleOfEight() {
    SafetensorsWriter.Filler zeros = (s, d, n) -> {};
    List<SafetensorsWriter.Entry> es =
        List.of(
            new SafetensorsWriter.Entry("w", DType.BF16, new long[] {2, 3}, zeros),
            new SafetensorsWriter.Entry("b", DType.F32, new long[] {3}, zeros));
    byte[] h = SafetensorsWriter.header(es, Map.of("format", "pt"));
    String json = new String(h, StandardCharsets.UTF_8);
    assertEquals(0, h.length % 8);
    assertEquals(
        "{\"__metadata__\":{\"format\":\"pt\"},"
            + "\"w\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
            + "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[12,24]}}",
        json.stripTrailing());
    assertTrue(json.length() - json.stripTrailing().length() < 8);
  }

  @Test
  void rejectsTheSameNameTwice() {
    SafetensorsWriter.Filler f = (s, d, n) -> {};
    List<SafetensorsWriter.Entry> es =
        List.of(
            new SafetensorsWriter.Entry("w", DType.F32, new long[] {1}, f),
            new SafetensorsWriter.Entry("w", DType.F32, new long[] {1}, f));
    assertThrows(IllegalArgumentException.class, () -> SafetensorsWriter.header(es, Map.of()));
  }

  /** A filler whose element i is a known function of i, across chunk boundaries. */
  private static SafetensorsWriter.Filler ramp(float scale) {
    return (start, dst, count) -> {
      for (int i = 0; i < count; i++) {
        dst[i] = scale * (((start + i) % 1000) - 500);
      }
    };
  }

  @Test
  void writesEveryDtypeAcrossChunksAndReadsBackWhatWasWritten() throws IOException {
    long big = SafetensorsWriter.CHUNK_ELEMENTS * 2L + 37; // three chunks, a short last one
    List<SafetensorsWriter.Entry> es =
        List.of(
            new SafetensorsWriter.Entry("f32", DType.F32, new long[] {big}, ramp(0.01f)),
            new SafetensorsWriter.Entry("bf16", DType.BF16, new long[] {3, big}, ramp(1f / 3)),
            new SafetensorsWriter.Entry("empty", DType.F32, new long[] {0}, ramp(1)),
            new SafetensorsWriter.Entry("f16", DType.F16, new long[] {big, 1}, ramp(0.125f)));
    Path f = dir.resolve("out.safetensors");
    long size = SafetensorsWriter.write(f, es, Map.of("format", "pt"), 3);
    assertEquals(Files.size(f), size);
    assertFalse(Files.exists(dir.resolve("out.safetensors.tmp")));
    try (SafetensorsFile sf = SafetensorsFile.open(f)) {
      assertEquals(List.of("f32", "bf16", "empty", "f16"), List.copyOf(sf.tensors().keySet()));
      assertEquals(Map.of("format", "pt"), sf.metadata());
      assertEquals(0, sf.uncoveredBytes());
      assertEquals(0, sf.dataStart() % 8);
      TensorView t32 = sf.tensors().get("f32");
      TensorView t16 = sf.tensors().get("f16");
      TensorView tb = sf.tensors().get("bf16");
      assertArrayEquals(new long[] {3, big}, tb.shape());
      for (long i : new long[] {0, 1, 999, SafetensorsWriter.CHUNK_ELEMENTS, big - 1}) {
        float want = ((i % 1000) - 500);
        assertEquals(0.01f * want, t32.getFloat(i));
        assertEquals(Float.float16ToFloat(Float.floatToFloat16(0.125f * want)), t16.getFloat(i));
        long j = 2 * big + i; // last row of the bf16 tensor: its own chunk numbering
        float wantB = (1f / 3) * ((j % 1000) - 500);
        assertEquals(Bf16.widen(Bf16.round(wantB)), tb.getFloat(j));
      }
    }
  }

  @Test
  void outputIsByteIdenticalForAnyThreadCount() throws IOException {
    long n = SafetensorsWriter.CHUNK_ELEMENTS * 5L + 3;
    List<SafetensorsWriter.Entry> es =
        List.of(new SafetensorsWriter.Entry("x", DType.BF16, new long[] {n}, ramp(0.7f)));
    Path one = dir.resolve("one");
    Path four = dir.resolve("four");
    SafetensorsWriter.write(one, es, Map.of(), 1);
    SafetensorsWriter.write(four, es, Map.of(), 4);
    assertEquals(-1, Files.mismatch(one, four));
  }

  @Test
  void aFailingFillerLeavesNoFileBehind() {
    SafetensorsWriter.Filler boom =
        (s, d, n) -> {
          throw new IllegalStateException("boom");
        };
    Path f = dir.resolve("x.safetensors");
    List<SafetensorsWriter.Entry> es =
        List.of(new SafetensorsWriter.Entry("x", DType.F32, new long[] {4}, boom));
    assertThrows(IllegalStateException.class, () -> SafetensorsWriter.write(f, es, Map.of(), 2));
    assertFalse(Files.exists(f));
    assertFalse(Files.exists(dir.resolve("x.safetensors.tmp")));
  }

  @Test
  void lengthFieldIsLittleEndianAndMatchesThePaddedHeader() throws IOException {
    Path f = dir.resolve("x");
    SafetensorsWriter.write(
        f,
        List.of(new SafetensorsWriter.Entry("abc", DType.F32, new long[] {1}, ramp(1))),
        Map.of(),
        1);
    byte[] all = Files.readAllBytes(f);
    long n = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
    assertEquals(all.length - 8 - 4, n);
    assertEquals('{', all[8]);
    assertEquals(
        -500f, ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN).getFloat(all.length - 4));
  }
}
