package dev.starserve.text;

import java.util.Arrays;

/**
 * Turns a stream of ids into text as it arrives. Bytes that may still become one character are held
 * back, so a piece never ends in half a UTF-8 character (or half a surrogate pair), and the
 * concatenation of every {@link #push} result and {@link #flush} equals {@link Tokenizer#decode} of
 * all the ids: lossy decoding replaces maximal ill-formed subparts, a local rule, so cutting only
 * where no valid sequence is pending changes nothing.
 *
 * <p>One per stream; not thread-safe.
 */
public final class IncrementalDetokenizer {
  private final Tokenizer tokenizer;
  private final boolean skipSpecialTokens;
  private byte[] pending = new byte[8]; // an incomplete UTF-8 sequence: at most 3 bytes after push
  private int pendingLength;
  private final StringBuilder text = new StringBuilder(); // scratch: the text a push completes

  IncrementalDetokenizer(Tokenizer tokenizer, boolean skipSpecialTokens) {
    this.tokenizer = tokenizer;
    this.skipSpecialTokens = skipSpecialTokens;
  }

  /**
   * Feeds one id and returns the text that became complete (possibly "").
   *
   * @throws IllegalArgumentException for an id that has no token
   */
  public String push(int id) {
    byte[] b = tokenizer.bytesOf(id);
    if (skipSpecialTokens && tokenizer.isSpecial(id)) {
      return "";
    }
    if (pendingLength == 0) {
      String whole = tokenizer.wholeTextOf(id);
      if (whole != null) {
        return whole; // the decoding below would give the same text: nothing pending before it
      }
    }
    if (pendingLength + b.length > pending.length) {
      pending = Arrays.copyOf(pending, Math.max(pending.length * 2, pendingLength + b.length));
    }
    System.arraycopy(b, 0, pending, pendingLength, b.length);
    pendingLength += b.length;
    text.setLength(0);
    int done = Utf8.decode(pending, 0, pendingLength, false, text);
    System.arraycopy(pending, done, pending, 0, pendingLength - done);
    pendingLength -= done;
    return text.isEmpty() ? "" : text.toString();
  }

  /**
   * Ends the stream: returns what is pending (an incomplete sequence becomes U+FFFD, as in a full
   * decode) and starts afresh.
   */
  public String flush() {
    String rest = Utf8.decode(pending, pendingLength);
    pendingLength = 0;
    return rest;
  }
}
