package dev.starserve.checkpoint;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Builds safetensors bytes by hand (string-concatenated JSON, explicit byte encoding), so that
 * tests of the reader, and broken inputs in particular, do not depend on {@link SafetensorsWriter}.
 */
public final class HandMadeSafetensors {
  private final List<String> entries = new ArrayList<>();
  private final ByteArrayOutputStream data = new ByteArrayOutputStream();
  private String metadata;

  /** Appends a tensor with contiguous offsets. BF16 values are truncated (pick exact ones). */
  public HandMadeSafetensors tensor(String name, String dtype, long[] shape, float... values) {
    byte[] bytes = encode(dtype, values);
    long begin = data.size();
    data.writeBytes(bytes);
    return entry(name, dtype, shape, begin, begin + bytes.length);
  }

  /** Appends a header entry with explicit offsets; adds no data. */
  public HandMadeSafetensors entry(String name, String dtype, long[] shape, long begin, long end) {
    StringBuilder s = new StringBuilder("[");
    for (int i = 0; i < shape.length; i++) {
      s.append(i == 0 ? "" : ",").append(shape[i]);
    }
    s.append(']');
    return raw(
        name,
        "{\"dtype\":\""
            + dtype
            + "\",\"shape\":"
            + s
            + ",\"data_offsets\":["
            + begin
            + ","
            + end
            + "]}");
  }

  /** Appends a header entry whose JSON value is given verbatim. */
  public HandMadeSafetensors raw(String name, String valueJson) {
    entries.add("\"" + name + "\":" + valueJson);
    return this;
  }

  /** Appends bytes to the data area without a header entry. */
  public HandMadeSafetensors extraData(byte[] bytes) {
    data.writeBytes(bytes);
    return this;
  }

  public HandMadeSafetensors metadata(String objectJson) {
    this.metadata = objectJson;
    return this;
  }

  public String headerJson() {
    List<String> all = new ArrayList<>();
    if (metadata != null) {
      all.add("\"__metadata__\":" + metadata);
    }
    all.addAll(entries);
    return "{" + String.join(",", all) + "}";
  }

  public byte[] build() {
    return file(headerJson(), data.toByteArray());
  }

  public Path writeTo(Path file) throws IOException {
    Files.write(file, build());
    return file;
  }

  /** An 8-byte little-endian length, the header, then the data. */
  public static byte[] file(String headerJson, byte[] data) {
    byte[] h = headerJson.getBytes(StandardCharsets.UTF_8);
    return ByteBuffer.allocate(8 + h.length + data.length)
        .order(ByteOrder.LITTLE_ENDIAN)
        .putLong(h.length)
        .put(h)
        .put(data)
        .array();
  }

  static byte[] encode(String dtype, float... values) {
    int size = dtype.equals("F32") ? 4 : 2;
    ByteBuffer b = ByteBuffer.allocate(values.length * size).order(ByteOrder.LITTLE_ENDIAN);
    for (float v : values) {
      switch (dtype) {
        case "F32" -> b.putFloat(v);
        case "BF16" -> b.putShort((short) (Float.floatToRawIntBits(v) >>> 16));
        case "F16" -> b.putShort(Float.floatToFloat16(v));
        default -> throw new IllegalArgumentException(dtype);
      }
    }
    return b.array();
  }
}
