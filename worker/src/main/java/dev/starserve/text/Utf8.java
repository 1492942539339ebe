package dev.starserve.text;

/**
 * Lossy UTF-8 decoding with exactly the replacement rule of Rust's {@code String::from_utf8_lossy}
 * (which HuggingFace's ByteLevel decoder uses): every maximal subpart of an ill-formed sequence
 * becomes one U+FFFD (Unicode 16, section 3.9, "U+FFFD Substitution of Maximal Subparts"), and an
 * incomplete sequence at the very end becomes one U+FFFD.
 *
 * <p>Because the rule is local, decoding a prefix that ends on a sequence boundary and then the
 * rest gives the same text as decoding everything at once. {@link #decode} therefore can stop
 * before a trailing sequence that is still a valid prefix and report where it stopped; that is what
 * the incremental detokenizer builds on.
 */
final class Utf8 {
  static final char REPLACEMENT = '\uFFFD';

  private Utf8() {}

  /**
   * Decodes {@code b[from, to)} into {@code out}.
   *
   * @param endOfInput true when no more bytes will follow: an incomplete final sequence becomes
   *     U+FFFD. When false, such a sequence is left undecoded.
   * @return the index of the first byte not decoded: {@code to}, or the start of an incomplete but
   *     so far valid final sequence when {@code endOfInput} is false
   */
  static int decode(byte[] b, int from, int to, boolean endOfInput, StringBuilder out) {
    int i = from;
    while (i < to) {
      int b0 = b[i] & 0xFF;
      if (b0 < 0x80) {
        out.append((char) b0);
        i++;
        continue;
      }
      int need;
      int cp;
      int lo = 0x80;
      int hi = 0xBF;
      if (b0 >= 0xC2 && b0 <= 0xDF) {
        need = 1;
        cp = b0 & 0x1F;
      } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 2;
        cp = b0 & 0x0F;
        if (b0 == 0xE0) {
          lo = 0xA0; // no overlong 3-byte forms
        } else if (b0 == 0xED) {
          hi = 0x9F; // no surrogates
        }
      } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 3;
        cp = b0 & 0x07;
        if (b0 == 0xF0) {
          lo = 0x90; // no overlong 4-byte forms
        } else if (b0 == 0xF4) {
          hi = 0x8F; // nothing above U+10FFFF
        }
      } else {
        out.append(REPLACEMENT); // a continuation byte or a byte that never starts a sequence
        i++;
        continue;
      }
      int j = i + 1;
      boolean valid = true;
      for (int k = 0; k < need; k++, j++) {
        if (j == to) {
          if (!endOfInput) {
            return i;
          }
          out.append(REPLACEMENT);
          return to;
        }
        int bk = b[j] & 0xFF;
        if (bk < (k == 0 ? lo : 0x80) || bk > (k == 0 ? hi : 0xBF)) {
          valid = false;
          break;
        }
        cp = (cp << 6) | (bk & 0x3F);
      }
      if (valid) {
        out.appendCodePoint(cp);
      } else {
        out.append(REPLACEMENT); // the maximal subpart b[i, j); b[j] starts afresh
      }
      i = j;
    }
    return to;
  }

  /** Lossy decode of the whole array. */
  static String decode(byte[] b, int length) {
    StringBuilder sb = new StringBuilder(length);
    decode(b, 0, length, true, sb);
    return sb.toString();
  }

  /**
   * Writes the UTF-8 bytes of {@code cp} to {@code dst} at {@code pos} and returns the new
   * position. A lone surrogate (which a Java string may hold but a Rust string cannot) is written
   * as U+FFFD.
   */
  static int encode(int cp, byte[] dst, int pos) {
    if (cp < 0x80) {
      dst[pos] = (byte) cp;
      return pos + 1;
    }
    if (cp < 0x800) {
      dst[pos] = (byte) (0xC0 | (cp >>> 6));
      dst[pos + 1] = (byte) (0x80 | (cp & 0x3F));
      return pos + 2;
    }
    if (cp >= Character.MIN_SURROGATE && cp <= Character.MAX_SURROGATE) {
      cp = REPLACEMENT;
    }
    if (cp < 0x10000) {
      dst[pos] = (byte) (0xE0 | (cp >>> 12));
      dst[pos + 1] = (byte) (0x80 | ((cp >>> 6) & 0x3F));
      dst[pos + 2] = (byte) (0x80 | (cp & 0x3F));
      return pos + 3;
    }
    dst[pos] = (byte) (0xF0 | (cp >>> 18));
    dst[pos + 1] = (byte) (0x80 | ((cp >>> 12) & 0x3F));
    dst[pos + 2] = (byte) (0x80 | ((cp >>> 6) & 0x3F));
    dst[pos + 3] = (byte) (0x80 | (cp & 0x3F));
    return pos + 4;
  }
}
