package dev.starserve.checkpoint;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Writes safetensors files whose tensors are produced chunk by chunk, so that a 31 GB checkpoint
 * never sits on the heap: each tensor's region of the output file is memory-mapped, a {@link
 * Filler} produces floats one chunk at a time, and the chunk is converted to the tensor's dtype
 * straight into the mapping.
 *
 * <p>The layout is the reference implementation's: an 8-byte little-endian header length, compact
 * JSON padded with spaces to a multiple of 8, then the tensors back to back in the order given. The
 * file is written under a temporary name and renamed into place when complete.
 */
public final class SafetensorsWriter {

  /**
   * Elements per {@link Filler#fill} call. Every call but a tensor's last gets exactly this many,
   * and {@code start} is always a multiple of it, so a filler may key its randomness on {@code
   * start / CHUNK_ELEMENTS}.
   */
  public static final int CHUNK_ELEMENTS = 1 << 20;

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final ValueLayout.OfFloat F32_LE =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  private static final ValueLayout.OfShort I16_LE =
      ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private SafetensorsWriter() {}

  /**
   * Produces the values of one tensor. Called from several threads at once for different chunks, so
   * it must be a pure function of {@code start}.
   */
  @FunctionalInterface
  public interface Filler {
    /** Writes elements {@code [start, start + count)} (row-major) into {@code dst[0, count)}. */
    void fill(long start, float[] dst, int count);
  }

  /** One tensor to write. */
  public record Entry(String name, DType dtype, long[] shape, Filler filler) {
    public Entry {
      if (name == null || name.isEmpty() || name.equals("__metadata__")) {
        throw new IllegalArgumentException("tensor name must be non-empty, got '" + name + "'");
      }
      if (dtype == null || filler == null) {
        throw new IllegalArgumentException(name + ": dtype and filler are required");
      }
      shape = shape.clone();
      long n = 1;
      for (long d : shape) {
        if (d < 0) {
          throw new IllegalArgumentException(name + ": dimensions must be >= 0");
        }
        n = Math.multiplyExact(n, d);
      }
      Math.multiplyExact(n, (long) dtype.byteSize());
    }

    @Override
    public long[] shape() {
      return shape.clone();
    }

    /** Number of elements. */
    public long numel() {
      long n = 1;
      for (long d : shape) {
        n *= d;
      }
      return n;
    }

    /** Bytes this tensor takes in the file. */
    public long byteSize() {
      return numel() * dtype.byteSize();
    }
  }

  /**
   * Writes {@code entries} in order to {@code file}, filling with up to {@code threads} threads.
   * Output is byte-identical for any thread count when the fillers are pure.
   *
   * @return the size of the written file in bytes
   */
  public static long write(
      Path file, List<Entry> entries, Map<String, String> metadata, int threads)
      throws IOException {
    if (threads < 1) {
      throw new IllegalArgumentException("threads must be >= 1, got " + threads);
    }
    byte[] header = header(entries, metadata);
    long dataBytes = 0;
    for (Entry e : entries) {
      dataBytes += e.byteSize();
    }
    long total = 8L + header.length + dataBytes;
    Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
    ExecutorService pool = threads == 1 ? null : Executors.newFixedThreadPool(threads);
    try {
      try (FileChannel ch =
          FileChannel.open(
              tmp,
              StandardOpenOption.CREATE,
              StandardOpenOption.TRUNCATE_EXISTING,
              StandardOpenOption.READ,
              StandardOpenOption.WRITE)) {
        ByteBuffer head = ByteBuffer.allocate(8 + header.length).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(header.length).put(header).flip();
        while (head.hasRemaining()) {
          ch.write(head);
        }
        long offset = 8L + header.length;
        for (Entry e : entries) {
          long bytes = e.byteSize();
          if (bytes > 0) {
            // One mapping per tensor, unmapped as soon as it is filled: the dirty pages of a
            // multi-GB file go to the page cache, never to the heap or to one huge live mapping.
            try (Arena arena = Arena.ofShared()) {
              MemorySegment seg = ch.map(FileChannel.MapMode.READ_WRITE, offset, bytes, arena);
              fillTensor(e, seg, pool, threads);
            }
          }
          offset += bytes;
        }
        if (ch.size() != total) {
          throw new IOException(tmp + ": wrote " + ch.size() + " bytes, expected " + total);
        }
      }
      Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
      return total;
    } finally {
      if (pool != null) {
        pool.shutdownNow();
      }
      Files.deleteIfExists(tmp);
    }
  }

  private static void fillTensor(Entry e, MemorySegment seg, ExecutorService pool, int threads)
      throws IOException {
    long numel = e.numel();
    long chunks = (numel + CHUNK_ELEMENTS - 1) / CHUNK_ELEMENTS;
    int workers = (int) Math.min(threads, chunks);
    if (pool == null || workers <= 1) {
      fillChunks(e, seg, 0, 1, chunks);
      return;
    }
    // Thread w fills chunks w, w + workers, ...: disjoint regions of the mapping.
    List<Future<?>> done = new ArrayList<>();
    for (int w = 0; w < workers; w++) {
      int first = w;
      done.add(pool.submit(() -> fillChunks(e, seg, first, workers, chunks)));
    }
    try {
      for (Future<?> f : done) {
        f.get();
      }
    } catch (InterruptedException ex) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while writing tensor " + e.name(), ex);
    } catch (ExecutionException ex) {
      if (ex.getCause() instanceof RuntimeException re) {
        throw re;
      }
      throw new IOException("filling tensor " + e.name() + " failed", ex.getCause());
    }
  }

  private static void fillChunks(Entry e, MemorySegment seg, long first, long step, long chunks) {
    long numel = e.numel();
    float[] buf = new float[(int) Math.min(CHUNK_ELEMENTS, numel)];
    short[] half = e.dtype() == DType.F32 ? null : new short[buf.length];
    for (long c = first; c < chunks; c += step) {
      long start = c * CHUNK_ELEMENTS;
      int count = (int) Math.min(CHUNK_ELEMENTS, numel - start);
      e.filler().fill(start, buf, count);
      long at = start * e.dtype().byteSize();
      switch (e.dtype()) {
        case F32 -> MemorySegment.copy(buf, 0, seg, F32_LE, at, count);
        case BF16 -> {
          for (int i = 0; i < count; i++) {
            half[i] = Bf16.round(buf[i]);
          }
          MemorySegment.copy(half, 0, seg, I16_LE, at, count);
        }
        case F16 -> {
          for (int i = 0; i < count; i++) {
            half[i] = Float.floatToFloat16(buf[i]);
          }
          MemorySegment.copy(half, 0, seg, I16_LE, at, count);
        }
      }
    }
  }

  /**
   * The header bytes (without the 8-byte length): compact JSON, {@code __metadata__} first, then
   * the tensors in order, padded with spaces to a multiple of 8 as the reference writer does.
   */
  static byte[] header(List<Entry> entries, Map<String, String> metadata) {
    ObjectNode root = JSON.createObjectNode();
    if (metadata != null && !metadata.isEmpty()) {
      ObjectNode m = root.putObject("__metadata__");
      metadata.forEach(m::put);
    }
    Set<String> seen = new HashSet<>();
    long offset = 0;
    for (Entry e : entries) {
      if (!seen.add(e.name())) {
        throw new IllegalArgumentException("tensor '" + e.name() + "' is listed twice");
      }
      ObjectNode t = root.putObject(e.name());
      t.put("dtype", e.dtype().safetensorsName());
      ArrayNode shape = t.putArray("shape");
      for (long d : e.shape()) {
        shape.add(d);
      }
      long end = offset + e.byteSize();
      t.putArray("data_offsets").add(offset).add(end);
      offset = end;
    }
    byte[] json;
    try {
      json = JSON.writeValueAsString(root).getBytes(StandardCharsets.UTF_8);
    } catch (IOException ex) {
      throw new UncheckedIOException(ex);
    }
    int padded = (json.length + 7) / 8 * 8;
    byte[] out = new byte[padded];
    System.arraycopy(json, 0, out, 0, json.length);
    for (int i = json.length; i < padded; i++) {
      out[i] = ' ';
    }
    return out;
  }
}
