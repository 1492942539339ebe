package dev.starserve.text;

/**
 * The ByteLevel pre-tokenizer of GPT-2: splits with the GPT-2 regex
 *
 * <pre>'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+</pre>
 *
 * and rewrites every piece as its UTF-8 bytes, each byte shown as one printable character (the
 * GPT-2 bytes→unicode table). The regex is implemented by hand: {@link #matchEnd} is the Oniguruma
 * leftmost-first match of that pattern at a position, without backtracking machinery.
 */
record ByteLevel(boolean addPrefixSpace, boolean useRegex) implements PreTokenizer {

  /** byte (0..255) → the character GPT-2 shows it as. */
  private static final char[] BYTE_TO_CHAR = new char[256];

  /** character → byte, or -1; every byte-level character is below U+0144. */
  private static final int[] CHAR_TO_BYTE = new int[0x144];

  static {
    java.util.Arrays.fill(CHAR_TO_BYTE, -1);
    int extra = 0;
    for (int b = 0; b < 256; b++) {
      boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      char c = printable ? (char) b : (char) (256 + extra++);
      BYTE_TO_CHAR[b] = c;
      CHAR_TO_BYTE[c] = b;
    }
  }

  /** The byte a byte-level character stands for, or -1 when it is not one. */
  static int byteOf(int cp) {
    return cp < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[cp] : -1;
  }

  /** The byte-level character of a byte. */
  static char charOf(int b) {
    return BYTE_TO_CHAR[b & 0xFF];
  }

  @Override
  public void split(CharSequence text, int start, int end, Sink sink) {
    if (addPrefixSpace && text.charAt(start) != ' ') {
      // NOTE: as in HF, the space is prepended to every piece this step receives, not only to
      // the first piece of the text.
      String spaced = " " + text.subSequence(start, end);
      text = spaced;
      start = 0;
      end = spaced.length();
    }
    if (!useRegex) {
      emitMapped(text, start, end, sink);
      return;
    }
    for (int i = start; i < end; ) {
      int j = matchEnd(text, i, end);
      emitMapped(text, i, j, sink);
      i = j;
    }
  }

  private static void emitMapped(CharSequence text, int start, int end, Sink sink) {
    char[] out = new char[(end - start) * 3]; // a UTF-16 unit is at most 3 UTF-8 bytes
    byte[] utf8 = new byte[4];
    int n = 0;
    for (int i = start; i < end; ) {
      char c = text.charAt(i);
      if (c < 0x80) {
        out[n++] = BYTE_TO_CHAR[c];
        i++;
        continue;
      }
      int cp = CharClass.codePointAt(text, i, end);
      i += Character.charCount(cp);
      int len = Utf8.encode(cp, utf8, 0);
      for (int k = 0; k < len; k++) {
        out[n++] = BYTE_TO_CHAR[utf8[k] & 0xFF];
      }
    }
    String mapped = new String(out, 0, n);
    sink.accept(mapped, 0, n);
  }

  /** End of the GPT-2 regex match that starts at {@code i} (the regex matches every position). */
  static int matchEnd(CharSequence s, int i, int end) {
    char c = s.charAt(i);
    // 's|'t|'re|'ve|'m|'ll|'d (case-sensitive, as in GPT-2)
    if (c == '\'' && i + 1 < end) {
      char d = s.charAt(i + 1);
      char e = i + 2 < end ? s.charAt(i + 2) : 0;
      if (d == 's' || d == 't' || d == 'm' || d == 'd') {
        return i + 2;
      }
      if ((d == 'r' && e == 'e') || (d == 'v' && e == 'e') || (d == 'l' && e == 'l')) {
        return i + 3;
      }
    }
    int cp = CharClass.codePointAt(s, i, end);
    byte cls = CharClass.of(cp);
    int runStart = i;
    if (c == ' ' && i + 1 < end) {
      // ' ?\p{L}+', ' ?\p{N}+' and ' ?[^\s\p{L}\p{N}]+' take one leading space
      byte next = CharClass.of(CharClass.codePointAt(s, i + 1, end));
      if (next != CharClass.WHITESPACE) {
        cls = next;
        runStart = i + 1;
      }
    }
    int j = runEnd(s, runStart, end, cls);
    if (cls != CharClass.WHITESPACE || j == end) {
      return j; // a letter/number/other run, or whitespace up to the end: \s+(?!\S)
    }
    // \s+(?!\S) backs off one character so that the last space can lead the next word;
    // a single whitespace character before a non-space falls through to \s+
    int last = j - Character.charCount(CharClass.codePointBefore(s, j, i));
    return last > i ? last : j;
  }

  private static int runEnd(CharSequence s, int i, int end, byte cls) {
    while (i < end) {
      char c = s.charAt(i);
      if (c < 0x80) {
        if (CharClass.of(c) != cls) {
          break;
        }
        i++;
      } else {
        int cp = CharClass.codePointAt(s, i, end);
        if (CharClass.of(cp) != cls) {
          break;
        }
        i += Character.charCount(cp);
      }
    }
    return i;
  }
}
