package dev.starserve.text;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Builders for small tokenizer.json files written to a temp dir, and the real StarCoder one. */
final class TestTokenizers {
  static final ObjectMapper JSON = new ObjectMapper();

  private TestTokenizers() {}

  /** The GPT-2 bytes→unicode table, computed here independently of the main code. */
  static char byteChar(int b) {
    int extra = 0;
    for (int x = 0; x < 256; x++) {
      boolean printable = (x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE;
      if (x == b) {
        return printable ? (char) x : (char) (256 + extra);
      }
      if (!printable) {
        extra++;
      }
    }
    throw new IllegalArgumentException("not a byte: " + b);
  }

  /**
   * A byte-level BPE tokenizer.json: ids 0..255 are the bytes in byte order (so the id of an
   * unmerged byte is the byte value), then one token per merge, in merge order. Pre-tokenizer
   * ByteLevel without prefix space, ByteLevel decoder, no added tokens.
   */
  static ObjectNode byteLevel(String... merges) {
    ObjectNode root = JSON.createObjectNode();
    root.put("version", "1.0");
    root.putNull("truncation");
    root.putNull("padding");
    root.putArray("added_tokens");
    root.putNull("normalizer");
    ObjectNode pre = root.putObject("pre_tokenizer");
    pre.put("type", "ByteLevel");
    pre.put("add_prefix_space", false);
    pre.put("trim_offsets", true);
    pre.put("use_regex", true);
    root.putNull("post_processor");
    root.putObject("decoder").put("type", "ByteLevel");
    ObjectNode model = root.putObject("model");
    model.put("type", "BPE");
    model.putNull("dropout");
    model.putNull("unk_token");
    model.putNull("continuing_subword_prefix");
    model.putNull("end_of_word_suffix");
    model.put("fuse_unk", false);
    model.put("byte_fallback", false);
    ObjectNode vocab = model.putObject("vocab");
    for (int b = 0; b < 256; b++) {
      vocab.put(String.valueOf(byteChar(b)), b);
    }
    ArrayNode mergeList = model.putArray("merges");
    for (String m : merges) {
      mergeList.add(m);
      String merged = m.replace(" ", "");
      if (!vocab.has(merged)) {
        vocab.put(merged, vocab.size());
      }
    }
    return root;
  }

  /** Appends an added token with the next free id (largest id + 1) and returns that id. */
  static int addToken(
      ObjectNode root,
      String content,
      boolean special,
      boolean singleWord,
      boolean lstrip,
      boolean rstrip,
      boolean normalized) {
    int id = 0;
    for (com.fasterxml.jackson.databind.JsonNode v : root.path("model").path("vocab")) {
      id = Math.max(id, v.intValue() + 1);
    }
    for (com.fasterxml.jackson.databind.JsonNode t : root.withArray("added_tokens")) {
      id = Math.max(id, t.path("id").intValue() + 1);
    }
    ObjectNode t = root.withArray("added_tokens").addObject();
    t.put("id", id);
    t.put("content", content);
    t.put("single_word", singleWord);
    t.put("lstrip", lstrip);
    t.put("rstrip", rstrip);
    t.put("normalized", normalized);
    t.put("special", special);
    return id;
  }

  /** The real StarCoder tokenizer.json as a tree, to be modified. */
  static ObjectNode starCoderJson() {
    try (InputStream in =
        TestTokenizers.class.getResourceAsStream("/starcoder-tokenizer/tokenizer.json")) {
      return (ObjectNode) JSON.readTree(in);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static Path write(Path dir, String name, Object json) {
    try {
      Path file = dir.resolve(name);
      Files.writeString(file, JSON.writeValueAsString(json));
      return file;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static Tokenizer load(Path dir, ObjectNode json) {
    return Tokenizer.load(write(dir, "tokenizer.json", json), null);
  }

  /** The ids of text in a {@link #byteLevel} tokenizer without merges: its UTF-8 bytes. */
  static int[] byteIds(String text) {
    byte[] b = text.getBytes(java.nio.charset.StandardCharsets.UTF_8);
    int[] ids = new int[b.length];
    for (int i = 0; i < b.length; i++) {
      ids[i] = b[i] & 0xFF;
    }
    return ids;
  }

  static int[] concat(int[]... parts) {
    return java.util.Arrays.stream(parts).flatMapToInt(java.util.Arrays::stream).toArray();
  }
}
