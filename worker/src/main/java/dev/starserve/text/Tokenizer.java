package dev.starserve.text;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A HuggingFace {@code tokenizer.json} for the byte-level BPE family that gpt_bigcode models use
 * (StarCoder, SantaCoder, StarChat), in plain Java: added/special tokens, the Digits, ByteLevel and
 * Split pre-tokenizers, the BPE model and the ByteLevel decoder. {@link #encode} gives the ids of
 * HF's {@code encode(text, add_special_tokens=False)}; {@link #decode} gives HF's {@code decode}.
 *
 * <p>Immutable and thread-safe (the per-word BPE cache is concurrent).
 */
public final class Tokenizer {
  private static final String STARCODER_DIR = "/starcoder-tokenizer/";

  private final BpeModel model;
  private final PreTokenizer preTokenizer; // null: the model sees each text between added tokens
  private final AddedTokenMatcher addedTokens;
  private final String[] tokens; // id → vocabulary string; null where no token has the id
  private final byte[][] bytes; // id → what the ByteLevel decoder turns the token into
  private final String[] wholeText; // id → its bytes' text when they end on a character boundary
  private final boolean[] special;
  private final Map<String, Integer> ids;
  private final String eosToken;
  private final String bosToken;
  private final String chatTemplate;

  Tokenizer(
      Map<String, Integer> vocab,
      BpeModel model,
      PreTokenizer preTokenizer,
      List<AddedToken> added,
      TokenizerConfig config) {
    this.model = model;
    this.preTokenizer = preTokenizer;
    this.addedTokens = new AddedTokenMatcher(added);
    int maxId = -1;
    for (int id : vocab.values()) {
      maxId = Math.max(maxId, id);
    }
    for (AddedToken t : added) {
      maxId = Math.max(maxId, t.id());
    }
    this.tokens = new String[maxId + 1];
    this.special = new boolean[maxId + 1];
    this.ids = new HashMap<>(vocab);
    vocab.forEach((token, id) -> tokens[id] = token);
    for (AddedToken t : added) { // like HF's id_to_token: the added token wins
      tokens[t.id()] = t.content();
      special[t.id()] = t.special();
      ids.put(t.content(), t.id());
    }
    this.bytes = new byte[tokens.length][];
    this.wholeText = new String[tokens.length];
    StringBuilder text = new StringBuilder();
    for (int id = 0; id < tokens.length; id++) {
      if (tokens[id] != null) {
        bytes[id] = decodedBytes(tokens[id]);
        text.setLength(0);
        if (Utf8.decode(bytes[id], 0, bytes[id].length, false, text) == bytes[id].length) {
          wholeText[id] = text.toString();
        }
      }
    }
    this.eosToken = config.eosToken();
    this.bosToken = config.bosToken();
    this.chatTemplate = config.chatTemplate();
  }

  /**
   * Loads {@code tokenizer.json} and, when given and present, {@code tokenizer_config.json}.
   *
   * @param tokenizerConfigJson may be null or name a missing file
   * @throws TokenizerException naming the file and the problem
   */
  public static Tokenizer load(Path tokenizerJson, Path tokenizerConfigJson) {
    return TokenizerLoader.load(tokenizerJson, tokenizerConfigJson);
  }

  /** The StarCoder tokenizer shipped in this module ({@code /starcoder-tokenizer/}). */
  public static Tokenizer starCoder() {
    return StarCoderHolder.INSTANCE;
  }

  private static final class StarCoderHolder {
    static final Tokenizer INSTANCE = loadStarCoder();
  }

  private static Tokenizer loadStarCoder() {
    String json = STARCODER_DIR + "tokenizer.json";
    String config = STARCODER_DIR + "tokenizer_config.json";
    try (InputStream in = Tokenizer.class.getResourceAsStream(json);
        InputStream cin = Tokenizer.class.getResourceAsStream(config)) {
      if (in == null) {
        throw new TokenizerException("classpath:" + json, "resource not found");
      }
      return TokenizerLoader.load("classpath:" + json, in, "classpath:" + config, cin);
    } catch (IOException e) {
      throw new TokenizerException("classpath:" + json, "cannot be read: " + e.getMessage(), e);
    }
  }

  /**
   * The ids of {@code text}, as HF's {@code encode(text, add_special_tokens=False)}: added and
   * special tokens written in the text are recognized; nothing is added around it. A lone surrogate
   * (which a Rust string cannot hold) is encoded as U+FFFD.
   */
  public int[] encode(String text) {
    IntList out = new IntList(text.length() / 3 + 8);
    PreTokenizer.Sink toModel =
        (t, s, e) ->
            model.encode(
                t instanceof String str ? str.substring(s, e) : t.subSequence(s, e).toString(),
                out);
    addedTokens.split(
        text,
        new AddedTokenMatcher.Sink() {
          @Override
          public void text(String t, int start, int end) {
            if (preTokenizer == null) {
              toModel.accept(t, start, end);
            } else {
              preTokenizer.split(t, start, end, toModel);
            }
          }

          @Override
          public void token(int id) {
            out.add(id);
          }
        });
    return out.toArray();
  }

  /**
   * The text of {@code ids} (HF's {@code decode}): the tokens' bytes joined, then UTF-8 decoded
   * with every invalid sequence replaced by U+FFFD.
   *
   * @throws IllegalArgumentException for an id that has no token
   */
  public String decode(int[] ids, boolean skipSpecialTokens) {
    int length = 0;
    for (int id : ids) {
      length += bytesOf(id).length;
    }
    byte[] all = new byte[length];
    int pos = 0;
    for (int id : ids) {
      if (skipSpecialTokens && special[id]) {
        continue;
      }
      byte[] b = bytes[id];
      System.arraycopy(b, 0, all, pos, b.length);
      pos += b.length;
    }
    return Utf8.decode(all, pos);
  }

  /** The bytes token {@code id} decodes to (for an added token: its content's UTF-8). */
  public byte[] tokenBytes(int id) {
    return bytesOf(id).clone();
  }

  /** The vocabulary string of {@code id}, e.g. {@code "Ġhello"} or {@code "<fim_prefix>"}. */
  public String token(int id) {
    bytesOf(id); // validates
    return tokens[id];
  }

  /** The id of a vocabulary string or added token, or -1. */
  public int tokenId(String token) {
    Integer id = ids.get(token);
    return id == null ? -1 : id;
  }

  /** Whether {@code id} is an added token marked {@code special}. */
  public boolean isSpecial(int id) {
    bytesOf(id); // validates
    return special[id];
  }

  /** The number of ids: the largest id plus one. */
  public int vocabSize() {
    return tokens.length;
  }

  /** A detokenizer for one stream of ids; not thread-safe. */
  public IncrementalDetokenizer newDetokenizer(boolean skipSpecialTokens) {
    return new IncrementalDetokenizer(this, skipSpecialTokens);
  }

  /** {@code eos_token} of tokenizer_config.json, or null. */
  public String eosToken() {
    return eosToken;
  }

  /** {@code bos_token} of tokenizer_config.json, or null. */
  public String bosToken() {
    return bosToken;
  }

  /** {@code chat_template} of tokenizer_config.json (the "default" one of a list), or null. */
  public String chatTemplate() {
    return chatTemplate;
  }

  /**
   * What a detokenizer with nothing pending returns for {@code id}: the text of its bytes, or null
   * when they end in the middle of a character (which the detokenizer then holds back). Shared, so
   * that streaming a token allocates no text.
   */
  String wholeTextOf(int id) {
    bytesOf(id); // validates
    return wholeText[id];
  }

  /** The decoded bytes of {@code id}, shared (do not modify). */
  byte[] bytesOf(int id) {
    if (id < 0 || id >= bytes.length || bytes[id] == null) {
      throw new IllegalArgumentException(
          "token id " + id + " is not in the vocabulary (vocab size " + bytes.length + ")");
    }
    return bytes[id];
  }

  /**
   * HF's ByteLevel decoder on one token: when every character is a byte-level character, the bytes
   * they stand for; otherwise (an added token with a space or a character outside the table) the
   * token's own UTF-8.
   */
  private static byte[] decodedBytes(String token) {
    byte[] out = new byte[token.length()];
    int n = 0;
    for (int i = 0; i < token.length(); ) {
      int cp = token.codePointAt(i);
      int b = ByteLevel.byteOf(cp);
      if (b < 0) {
        return token.getBytes(java.nio.charset.StandardCharsets.UTF_8);
      }
      out[n++] = (byte) b;
      i += Character.charCount(cp);
    }
    return Arrays.copyOf(out, n);
  }
}
