package dev.starserve.checkpoint;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One memory-mapped safetensors file: the parsed header and a {@link TensorView} slice per tensor.
 *
 * <pre>
 * file:  | u64 LE n | header: n bytes of JSON (space padded) | data area ........................ |
 *        0          8                                        8+n                                 size
 * tensor "x": data_offsets [begin, end] are relative to the data area, so its bytes are
 *        file[8 + n + begin, 8 + n + end)
 * </pre>
 *
 * <p>Nothing but the header is read onto the heap, and every offset is a {@code long}, so files
 * larger than 2 GiB work. The header is validated completely before any view is handed out: a file
 * that opens is safe to read everywhere its tensors say.
 *
 * <p>NOTE: the safetensors format wants the tensors to tile the data area with no holes. A hole or
 * trailing bytes cannot make a read go wrong, so they are logged as a warning (see {@link
 * #uncoveredBytes()}) instead of refusing a file that every tensor of can be read.
 */
public final class SafetensorsFile implements AutoCloseable {

  /** Largest header accepted; the reference implementation uses the same 100 MB limit. */
  public static final long MAX_HEADER_BYTES = 100_000_000L;

  private static final Logger LOG = LoggerFactory.getLogger(SafetensorsFile.class);

  private static final ObjectMapper JSON =
      JsonMapper.builder()
          .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
          .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
          .build();

  private static final ValueLayout.OfLong U64 =
      ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private final Path file;
  private final Arena ownArena;
  private final long dataStart;
  private final Map<String, TensorView> tensors;
  private final Map<String, String> metadata;
  private final long uncoveredBytes;

  private SafetensorsFile(
      Path file,
      Arena ownArena,
      long dataStart,
      Map<String, TensorView> tensors,
      Map<String, String> metadata,
      long uncoveredBytes) {
    this.file = file;
    this.ownArena = ownArena;
    this.dataStart = dataStart;
    this.tensors = tensors;
    this.metadata = metadata;
    this.uncoveredBytes = uncoveredBytes;
  }

  /**
   * Maps {@code file} in {@code arena} and parses its header. The mapping lives as long as the
   * arena; {@link #close()} leaves a caller's arena alone.
   */
  public static SafetensorsFile open(Path file, Arena arena) {
    return open(file, arena, null);
  }

  /** Maps {@code file} in an arena of its own, released by {@link #close()}. */
  public static SafetensorsFile open(Path file) {
    Arena arena = Arena.ofShared();
    try {
      return open(file, arena, arena);
    } catch (RuntimeException e) {
      arena.close();
      throw e;
    }
  }

  private static SafetensorsFile open(Path file, Arena arena, Arena ownArena) {
    MemorySegment mapping;
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      long size = ch.size();
      if (size < 8) {
        throw new CheckpointException(
            file,
            null,
            "file has "
                + size
                + " bytes, too short for a safetensors file (it starts with an 8-byte header"
                + " length)");
      }
      mapping = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
    } catch (NoSuchFileException e) {
      throw new CheckpointException(file, null, "file does not exist", e);
    } catch (IOException e) {
      throw new CheckpointException(file, null, "cannot map file: " + e, e);
    }
    long size = mapping.byteSize();
    long headerLen = mapping.get(U64, 0);
    if (Long.compareUnsigned(headerLen, size - 8) > 0) {
      throw new CheckpointException(
          file,
          null,
          "header length "
              + Long.toUnsignedString(headerLen)
              + " is larger than the file ("
              + size
              + " bytes): not a safetensors file, or a truncated one");
    }
    if (headerLen > MAX_HEADER_BYTES) {
      throw new CheckpointException(
          file,
          null,
          "header length " + headerLen + " is absurd (limit " + MAX_HEADER_BYTES + " bytes)");
    }
    byte[] header = mapping.asSlice(8, headerLen).toArray(ValueLayout.JAVA_BYTE);
    JsonNode root;
    try {
      root = JSON.readTree(header);
    } catch (JacksonException e) {
      throw new CheckpointException(
          file, null, "malformed header JSON: " + e.getOriginalMessage(), e);
    } catch (IOException e) {
      throw new CheckpointException(file, null, "cannot read header: " + e, e);
    }
    if (root == null || !root.isObject()) {
      throw new CheckpointException(
          file, null, "malformed header JSON: expected an object of tensors, got " + kind(root));
    }
    long dataStart = 8 + headerLen;
    MemorySegment data = mapping.asSlice(dataStart);
    Map<String, String> metadata = new LinkedHashMap<>();
    List<Entry> entries = new ArrayList<>();
    for (Map.Entry<String, JsonNode> field : root.properties()) {
      if (field.getKey().equals("__metadata__")) {
        readMetadata(file, field.getValue(), metadata);
      } else {
        entries.add(parseEntry(file, field.getKey(), field.getValue(), data.byteSize()));
      }
    }
    long uncovered = checkLayout(file, entries, data.byteSize());
    if (uncovered > 0) {
      LOG.warn(
          "{}: {} bytes of the data area belong to no tensor (holes or trailing bytes); the"
              + " safetensors format expects none, reading it anyway",
          file,
          uncovered);
    }
    Map<String, TensorView> tensors = new LinkedHashMap<>();
    for (Entry e : entries) {
      MemorySegment slice = data.asSlice(e.begin, e.end - e.begin);
      tensors.put(e.name, new TensorView(e.name, e.dtype, e.shape, slice, file));
    }
    return new SafetensorsFile(
        file,
        ownArena,
        dataStart,
        Collections.unmodifiableMap(tensors),
        Collections.unmodifiableMap(metadata),
        uncovered);
  }

  private record Entry(String name, DType dtype, long[] shape, long begin, long end) {}

  private static void readMetadata(Path file, JsonNode node, Map<String, String> out) {
    if (!node.isObject()) {
      throw new CheckpointException(
          file, null, "__metadata__ must be an object of strings, got " + kind(node));
    }
    for (Map.Entry<String, JsonNode> m : node.properties()) {
      if (!m.getValue().isTextual()) {
        throw new CheckpointException(
            file,
            null,
            "__metadata__ value for '" + m.getKey() + "' must be a string, got " + m.getValue());
      }
      out.put(m.getKey(), m.getValue().textValue());
    }
  }

  private static Entry parseEntry(Path file, String name, JsonNode node, long dataBytes) {
    if (name.isEmpty()) {
      throw new CheckpointException(file, null, "header has a tensor with an empty name");
    }
    if (!node.isObject()) {
      throw new CheckpointException(
          file, name, "header entry must be an object {dtype, shape, data_offsets}, got " + node);
    }
    JsonNode dtypeNode = node.get("dtype");
    if (dtypeNode == null || !dtypeNode.isTextual()) {
      throw new CheckpointException(file, name, "header entry has no dtype string: " + node);
    }
    DType dtype = DType.fromSafetensors(dtypeNode.textValue());
    if (dtype == null) {
      throw new CheckpointException(
          file,
          name,
          "unsupported dtype '"
              + dtypeNode.textValue()
              + "': StarServe reads "
              + Arrays.stream(DType.values()).map(DType::safetensorsName).toList()
              + " (F64, I8, U8, quantized and other types are not supported)");
    }
    long[] shape = longArray(file, name, node.get("shape"), "shape", -1);
    long[] offsets = longArray(file, name, node.get("data_offsets"), "data_offsets", 2);
    long begin = offsets[0];
    long end = offsets[1];
    if (begin > end) {
      throw new CheckpointException(
          file,
          name,
          "data_offsets [" + begin + ", " + end + "] must be [begin, end] with begin <= end");
    }
    long numel = 1;
    long bytes;
    try {
      for (long d : shape) {
        numel = Math.multiplyExact(numel, d);
      }
      bytes = Math.multiplyExact(numel, (long) dtype.byteSize());
    } catch (ArithmeticException e) {
      throw new CheckpointException(
          file, name, "shape " + shapeString(shape) + " has more elements than a long holds", e);
    }
    if (end - begin != bytes) {
      throw new CheckpointException(
          file,
          name,
          "shape "
              + shapeString(shape)
              + " of "
              + dtype
              + " needs "
              + bytes
              + " bytes but offsets give "
              + (end - begin)
              + " (data_offsets ["
              + begin
              + ", "
              + end
              + "])");
    }
    if (end > dataBytes) {
      throw new CheckpointException(
          file,
          name,
          "file is truncated: tensor ends at byte "
              + end
              + " but the data area has "
              + dataBytes
              + " bytes (data_offsets ["
              + begin
              + ", "
              + end
              + "] are out of range)");
    }
    return new Entry(name, dtype, shape, begin, end);
  }

  /** Sorts by offset, rejects overlaps, and returns how many data bytes no tensor covers. */
  private static long checkLayout(Path file, List<Entry> entries, long dataBytes) {
    List<Entry> sorted = new ArrayList<>(entries);
    sorted.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
    long covered = 0;
    Entry prev = null;
    for (Entry e : sorted) {
      if (prev != null && e.begin < prev.end) {
        throw new CheckpointException(
            file,
            e.name,
            "overlaps tensor '"
                + prev.name
                + "': data_offsets ["
                + e.begin
                + ", "
                + e.end
                + "] and ["
                + prev.begin
                + ", "
                + prev.end
                + "]");
      }
      covered += e.end - e.begin;
      if (e.end > e.begin || prev == null) {
        prev = e;
      }
    }
    return dataBytes - covered;
  }

  private static long[] longArray(Path file, String name, JsonNode node, String field, int len) {
    if (node == null || !node.isArray()) {
      throw new CheckpointException(
          file, name, "header entry has no " + field + " array: got " + kind(node));
    }
    if (len >= 0 && node.size() != len) {
      throw new CheckpointException(file, name, field + " must be [begin, end], got " + node);
    }
    long[] out = new long[node.size()];
    for (int i = 0; i < out.length; i++) {
      JsonNode v = node.get(i);
      if (!v.isIntegralNumber() || !v.canConvertToLong() || v.longValue() < 0) {
        throw new CheckpointException(
            file,
            name,
            field + " must hold non-negative integers, got " + node + " (element " + i + ")");
      }
      out[i] = v.longValue();
    }
    return out;
  }

  private static String kind(JsonNode node) {
    return node == null || node.isMissingNode() ? "nothing" : node.getNodeType() + " " + node;
  }

  static String shapeString(long[] shape) {
    StringBuilder sb = new StringBuilder("[");
    for (int i = 0; i < shape.length; i++) {
      sb.append(i == 0 ? "" : ",").append(shape[i]);
    }
    return sb.append(']').toString();
  }

  /** The mapped file. */
  public Path file() {
    return file;
  }

  /** Tensors in file (header) order. */
  public Map<String, TensorView> tensors() {
    return tensors;
  }

  /** The {@code __metadata__} string map; empty when the header has none. */
  public Map<String, String> metadata() {
    return metadata;
  }

  /** File offset of the data area ({@code 8 + header length}). */
  public long dataStart() {
    return dataStart;
  }

  /** Bytes of the data area that belong to no tensor (0 in a well-formed file). */
  public long uncoveredBytes() {
    return uncoveredBytes;
  }

  /** Releases the mapping when this file owns its arena; otherwise the caller's arena does. */
  @Override
  public void close() {
    if (ownArena != null && ownArena.scope().isAlive()) {
      ownArena.close();
    }
  }
}
