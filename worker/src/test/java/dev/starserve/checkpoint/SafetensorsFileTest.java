package dev.starserve.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsFileTest {

  @TempDir Path dir;

  private static final long[] V4 = {4};

  /** Asserts that opening fails naming the file, the tensor (or none) and the problem. */
  static CheckpointException assertRejected(
      Executable open, Path file, String tensor, String... fragments) {
    CheckpointException e = assertThrows(CheckpointException.class, open);
    assertEquals(file, e.file(), e.getMessage());
    assertEquals(tensor, e.tensor(), e.getMessage());
    assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
    if (tensor != null) {
      assertTrue(e.getMessage().contains("'" + tensor + "'"), e.getMessage());
    }
    for (String f : fragments) {
      assertTrue(e.getMessage().contains(f), () -> "'" + f + "' not in: " + e.getMessage());
    }
    return e;
  }

  private CheckpointException rejects(byte[] bytes, String tensor, String... fragments)
      throws IOException {
    Path f = Files.write(dir.resolve("bad.safetensors"), bytes);
    return assertRejected(() -> SafetensorsFile.open(f).close(), f, tensor, fragments);
  }

  @Test
  void readsTensorsInFileOrderWithTheirValuesShapesAndMetadata() throws IOException {
    Path f =
        new HandMadeSafetensors()
            .metadata("{\"format\":\"pt\",\"note\":\"x\"}")
            .tensor("z.first", "F32", new long[] {2, 2}, 1.5f, -2f, 3.25f, 1e-3f)
            .tensor("a.second", "BF16", new long[] {3}, 1f, -0.5f, 384f)
            .tensor("m.third", "F16", new long[] {1, 2}, 0.333f, -65504f)
            .writeTo(dir.resolve("m.safetensors"));
    try (SafetensorsFile sf = SafetensorsFile.open(f)) {
      assertEquals(List.of("z.first", "a.second", "m.third"), List.copyOf(sf.tensors().keySet()));
      assertEquals(Map.of("format", "pt", "note", "x"), sf.metadata());
      TensorView a = sf.tensors().get("z.first");
      assertArrayEquals(new long[] {2, 2}, a.shape());
      assertEquals(DType.F32, a.dtype());
      assertEquals(f, a.file());
      assertEquals(-2f, a.getFloat(1));
      assertEquals(1e-3f, a.getFloat(3));
      TensorView b = sf.tensors().get("a.second");
      assertEquals(DType.BF16, b.dtype());
      assertEquals(384f, b.getFloat(2));
      assertEquals(-0.5f, b.getFloat(1));
      TensorView c = sf.tensors().get("m.third");
      assertEquals(Float.float16ToFloat(Float.floatToFloat16(0.333f)), c.getFloat(0));
      assertEquals(-65504f, c.getFloat(1));
      assertEquals(0, sf.uncoveredBytes());
    }
  }

  @Test
  void tensorViewsAreReadOnlySlicesOfTheMapping() throws IOException {
    Path f =
        new HandMadeSafetensors()
            .tensor("a", "F32", V4, 1, 2, 3, 4)
            .tensor("b", "F32", V4, 5, 6, 7, 8)
            .writeTo(dir.resolve("m.safetensors"));
    try (SafetensorsFile sf = SafetensorsFile.open(f)) {
      TensorView a = sf.tensors().get("a");
      TensorView b = sf.tensors().get("b");
      assertTrue(a.data().isMapped());
      assertTrue(a.data().isReadOnly());
      assertEquals(16, b.data().address() - a.data().address());
      assertEquals(sf.dataStart() + 16, Files.size(f) - 16);
    }
  }

  @Test
  void closingTheFileReleasesItsOwnMapping() throws IOException {
    Path f = new HandMadeSafetensors().tensor("a", "F32", V4, 1, 2, 3, 4).writeTo(dir.resolve("m"));
    SafetensorsFile sf = SafetensorsFile.open(f);
    TensorView a = sf.tensors().get("a");
    sf.close();
    assertThrows(IllegalStateException.class, () -> a.getFloat(0));
  }

  @Test
  void aCallersArenaOutlivesClose() throws IOException {
    Path f = new HandMadeSafetensors().tensor("a", "F32", V4, 1, 2, 3, 4).writeTo(dir.resolve("m"));
    try (Arena arena = Arena.ofConfined()) {
      SafetensorsFile sf = SafetensorsFile.open(f, arena);
      sf.close();
      assertEquals(4f, sf.tensors().get("a").getFloat(3));
    }
  }

  @Test
  void rejectsAFileShorterThanTheLengthField() throws IOException {
    rejects(new byte[] {1, 0, 0}, null, "3 bytes", "too short");
  }

  @Test
  void rejectsAHeaderLengthLargerThanTheFile() throws IOException {
    byte[] good = new HandMadeSafetensors().tensor("a", "F32", V4, 1, 2, 3, 4).build();
    ByteBuffer.wrap(good).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 1000);
    rejects(good, null, "header length 1000 is larger than the file (" + good.length + " bytes)");
  }

  @Test
  void rejectsAHeaderLengthWithTheTopBitSetInsteadOfReadingANegativeLength() throws IOException {
    byte[] bad = HandMadeSafetensors.file("{}", new byte[0]);
    ByteBuffer.wrap(bad).order(ByteOrder.LITTLE_ENDIAN).putLong(0, -2);
    rejects(bad, null, "header length 18446744073709551614 is larger than the file");
  }

  @Test
  void rejectsAnAbsurdHeaderLengthEvenWhenTheFileIsThatLarge() throws IOException {
    Path f = dir.resolve("huge-header.safetensors");
    try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
      raf.setLength(SafetensorsFile.MAX_HEADER_BYTES + 100); // sparse: nothing is written
      raf.write(
          ByteBuffer.allocate(8)
              .order(ByteOrder.LITTLE_ENDIAN)
              .putLong(SafetensorsFile.MAX_HEADER_BYTES + 1)
              .array());
    }
    assertRejected(
        () -> SafetensorsFile.open(f).close(), f, null, "header length 100000001 is absurd");
  }

  @Test
  void rejectsMalformedHeaderJson() throws IOException {
    rejects(HandMadeSafetensors.file("{\"a\": {\"dtype\": ", new byte[0]), null, "malformed");
  }

  @Test
  void rejectsAHeaderThatIsNotAnObject() throws IOException {
    rejects(HandMadeSafetensors.file("[1, 2]", new byte[0]), null, "malformed", "ARRAY");
  }

  @Test
  void rejectsAHeaderThatNamesATensorTwice() throws IOException {
    String entry = "{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}";
    byte[] bytes =
        HandMadeSafetensors.file("{\"a\":" + entry + ",\"a\":" + entry + "}", new byte[4]);
    rejects(bytes, null, "malformed", "Duplicate field 'a'");
  }

  @Test
  void rejectsAnEntryThatIsNotAnObject() throws IOException {
    rejects(new HandMadeSafetensors().raw("w", "[1,2]").build(), "w", "must be an object");
  }

  @Test
  void rejectsAnEntryWithoutADtype() throws IOException {
    rejects(
        new HandMadeSafetensors().raw("w", "{\"shape\":[1],\"data_offsets\":[0,4]}").build(),
        "w",
        "no dtype");
  }

  @Test
  void rejectsAnEntryWithoutAShape() throws IOException {
    byte[] b =
        new HandMadeSafetensors()
            .raw("w", "{\"dtype\":\"F32\",\"data_offsets\":[0,4]}")
            .extraData(new byte[4])
            .build();
    rejects(b, "w", "no shape array");
  }

  @Test
  void rejectsAnEntryWithoutDataOffsets() throws IOException {
    rejects(
        new HandMadeSafetensors().raw("w", "{\"dtype\":\"F32\",\"shape\":[1]}").build(),
        "w",
        "no data_offsets array");
  }

  @Test
  void rejectsF64NamingTheSupportedDtypes() throws IOException {
    byte[] b =
        new HandMadeSafetensors()
            .entry("lm_head.weight", "F64", new long[] {2}, 0, 16)
            .extraData(new byte[16])
            .build();
    rejects(b, "lm_head.weight", "unsupported dtype 'F64'", "[F32, F16, BF16]", "not supported");
  }

  @Test
  void rejectsI8() throws IOException {
    byte[] b =
        new HandMadeSafetensors()
            .entry("q", "I8", new long[] {4}, 0, 4)
            .extraData(new byte[4])
            .build();
    rejects(b, "q", "unsupported dtype 'I8'");
  }

  @Test
  void rejectsANegativeDimension() throws IOException {
    byte[] b =
        new HandMadeSafetensors()
            .raw("w", "{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,0]}")
            .build();
    rejects(b, "w", "shape must hold non-negative integers", "[2,-1]");
  }

  @Test
  void rejectsANonIntegerDimension() throws IOException {
    byte[] b =
        new HandMadeSafetensors()
            .raw("w", "{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,10]}")
            .extraData(new byte[10])
            .build();
    rejects(b, "w", "shape must hold non-negative integers", "[2.5]");
  }

  @Test
  void rejectsDataOffsetsThatAreNotAPair() throws IOException {
    byte[] b =
        new HandMadeSafetensors()
            .raw("w", "{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}")
            .extraData(new byte[8])
            .build();
    rejects(b, "w", "data_offsets must be [begin, end]", "[0,4,8]");
  }

  @Test
  void rejectsDataOffsetsThatEndBeforeTheyBegin() throws IOException {
    byte[] b =
        new HandMadeSafetensors()
            .entry("w", "F32", new long[] {1}, 8, 4)
            .extraData(new byte[8])
            .build();
    rejects(b, "w", "data_offsets [8, 4]", "begin <= end");
  }

  @Test
  void rejectsOffsetsThatDisagreeWithShapeAndDtype() throws IOException {
    byte[] b =
        new HandMadeSafetensors()
            .entry("transformer.wte.weight", "BF16", new long[] {2, 3}, 0, 8)
            .extraData(new byte[8])
            .build();
    rejects(b, "transformer.wte.weight", "shape [2,3] of BF16 needs 12 bytes but offsets give 8");
  }

  @Test
  void rejectsATruncatedFileSayingWhereTheTensorEnds() throws IOException {
    byte[] good =
        new HandMadeSafetensors()
            .tensor("a", "F32", V4, 1, 2, 3, 4)
            .tensor("b", "F32", V4, 5, 6, 7, 8)
            .build();
    byte[] cut = java.util.Arrays.copyOf(good, good.length - 6);
    rejects(cut, "b", "file is truncated: tensor ends at byte 32 but the data area has 26 bytes");
  }

  @Test
  void rejectsOffsetsBeyondTheDataArea() throws IOException {
    byte[] b =
        new HandMadeSafetensors()
            .tensor("a", "F32", V4, 1, 2, 3, 4)
            .entry("far", "F32", V4, 1000, 1016)
            .build();
    rejects(b, "far", "tensor ends at byte 1016 but the data area has 16 bytes", "[1000, 1016]");
  }

  @Test
  void rejectsOverlappingTensorsNamingBoth() throws IOException {
    byte[] b =
        new HandMadeSafetensors()
            .tensor("a", "F32", V4, 1, 2, 3, 4)
            .tensor("b", "F32", V4, 5, 6, 7, 8)
            .entry("c", "F32", new long[] {2}, 12, 20)
            .build();
    CheckpointException e = rejects(b, "c", "overlaps tensor 'a'", "[12, 20] and [0, 16]");
    assertTrue(e.getMessage().contains("overlaps"));
  }

  @Test
  void rejectsMetadataThatIsNotAStringMap() throws IOException {
    byte[] b =
        new HandMadeSafetensors()
            .metadata("{\"format\":1}")
            .tensor("a", "F32", V4, 1, 2, 3, 4)
            .build();
    rejects(b, null, "__metadata__ value for 'format' must be a string");
  }

  @Test
  void acceptsHolesAndTrailingBytesButCountsThem() throws IOException {
    byte[] b =
        new HandMadeSafetensors()
            .tensor("a", "F32", V4, 1, 2, 3, 4)
            .extraData(new byte[8]) // hole
            .entry("b", "F32", new long[] {1}, 24, 28)
            .extraData(HandMadeSafetensors.encode("F32", 9f))
            .extraData(new byte[3]) // trailing
            .build();
    Path f = Files.write(dir.resolve("holes.safetensors"), b);
    try (SafetensorsFile sf = SafetensorsFile.open(f)) {
      assertEquals(11, sf.uncoveredBytes());
      assertEquals(9f, sf.tensors().get("b").getFloat(0));
    }
  }

  @Test
  void acceptsEmptyTensorsAndAScalar() throws IOException {
    byte[] b =
        new HandMadeSafetensors()
            .tensor("empty", "F32", new long[] {0, 5})
            .tensor("scalar", "F16", new long[] {}, 2f)
            .build();
    Path f = Files.write(dir.resolve("m"), b);
    try (SafetensorsFile sf = SafetensorsFile.open(f)) {
      assertEquals(0, sf.tensors().get("empty").numel());
      assertEquals(1, sf.tensors().get("scalar").numel());
      assertEquals(2f, sf.tensors().get("scalar").getFloat(0));
    }
  }

  /**
   * All offsets are longs: a tensor that starts past 2^31 in the data area reads correctly. The 2.1
   * GB file is sparse, so only its header and last bytes take disk space.
   */
  @Test
  void readsATensorThatStartsBeyondTwoGibibytes() throws IOException {
    String fs = Files.getFileStore(dir).type();
    assumeTrue(
        Set.of("ext4", "xfs", "btrfs", "tmpfs", "zfs", "f2fs").contains(fs),
        "sparse files not known to work on " + fs);
    assumeTrue(Files.getFileStore(dir).getUsableSpace() > (3L << 30), "too little disk space");
    long fillerBytes = (1L << 31) + 16; // F32 [2^29 + 4]
    long bigBegin = fillerBytes;
    byte[] header =
        new HandMadeSafetensors()
            .entry("filler", "F32", new long[] {fillerBytes / 4}, 0, fillerBytes)
            .entry("big", "F32", new long[] {2, 2}, bigBegin, bigBegin + 16)
            .build();
    Path f = dir.resolve("sparse.safetensors");
    long dataStart = header.length;
    try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
      raf.write(header);
      raf.setLength(dataStart + bigBegin + 16);
      raf.seek(dataStart + bigBegin);
      raf.write(HandMadeSafetensors.encode("F32", 1.25f, -7f, 3e10f, Float.MIN_VALUE));
    }
    try (SafetensorsFile sf = SafetensorsFile.open(f)) {
      TensorView big = sf.tensors().get("big");
      TensorView filler = sf.tensors().get("filler");
      assertEquals((1L << 29) + 4, filler.numel());
      assertEquals(bigBegin, big.data().address() - filler.data().address());
      assertEquals(0f, filler.getFloat(filler.numel() - 1));
      assertEquals(1.25f, big.getFloat(0));
      assertEquals(-7f, big.getFloat(1));
      assertEquals(3e10f, big.getFloat(2));
      assertEquals(Float.MIN_VALUE, big.getFloat(3));
    }
  }
}
