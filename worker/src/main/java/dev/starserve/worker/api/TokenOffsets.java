package dev.starserve.worker.api;

import dev.starserve.text.Tokenizer;

/**
 * Character offsets of tokens in the text they were encoded from, as HF tokenizers reports them: in
 * Unicode code points (Python string indices), {@code [start, end)}. A byte-level token that holds
 * part of a character covers that whole character.
 */
final class TokenOffsets {
  private TokenOffsets() {}

  /** {@code [i] = {start, end}} of {@code ids[i]} in {@code text}. */
  static int[][] of(Tokenizer tokenizer, String text, int[] ids) {
    // byteToCp[b] = index of the code point whose UTF-8 holds byte b; the extra slot ends it.
    int cps = text.codePointCount(0, text.length());
    int[] cpStartByte = new int[cps + 1];
    int bytes = 0;
    int cp = 0;
    for (int i = 0; i < text.length(); ) {
      int c = text.codePointAt(i);
      cpStartByte[cp++] = bytes;
      bytes += utf8Length(c);
      i += Character.charCount(c);
    }
    cpStartByte[cps] = bytes;
    int[][] out = new int[ids.length][];
    int at = 0; // byte position of the next token
    int cpAt = 0; // code point holding byte `at`
    for (int i = 0; i < ids.length; i++) {
      int start = at;
      int end = Math.min(bytes, at + tokenizer.tokenBytes(ids[i]).length);
      while (cpAt < cps && cpStartByte[cpAt + 1] <= start) {
        cpAt++;
      }
      int startCp = cpAt;
      int endCp = startCp;
      while (endCp < cps && cpStartByte[endCp] < end) {
        endCp++;
      }
      out[i] = new int[] {Math.min(startCp, cps), endCp};
      at = end;
    }
    return out;
  }

  /** UTF-8 length of a code point; a lone surrogate becomes U+FFFD, 3 bytes like its own. */
  private static int utf8Length(int c) {
    return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
  }
}
