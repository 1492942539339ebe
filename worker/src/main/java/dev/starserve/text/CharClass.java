package dev.starserve.text;

/**
 * The Unicode character classes the HuggingFace tokenizer regexes use, spelled out so that the hot
 * path needs no {@code java.util.regex} and so that their meaning is the Rust/Oniguruma one, not
 * Java's ({@link Character#isWhitespace} differs from Unicode White_Space: it rejects NBSP and
 * accepts U+001C..U+001F).
 */
final class CharClass {
  static final byte WHITESPACE = 0;
  static final byte LETTER = 1;
  static final byte NUMBER = 2;
  static final byte OTHER = 3;

  private static final byte[] ASCII = new byte[128];

  static {
    for (int c = 0; c < 128; c++) {
      ASCII[c] = classifySlow(c);
    }
  }

  private CharClass() {}

  /** WHITESPACE ({@code \s}), LETTER ({@code \p{L}}), NUMBER ({@code \p{N}}) or OTHER. */
  static byte of(int cp) {
    return cp < 128 ? ASCII[cp] : classifySlow(cp);
  }

  private static byte classifySlow(int cp) {
    if (isWhiteSpace(cp)) {
      return WHITESPACE;
    }
    return switch (Character.getType(cp)) {
      case Character.UPPERCASE_LETTER,
          Character.LOWERCASE_LETTER,
          Character.TITLECASE_LETTER,
          Character.MODIFIER_LETTER,
          Character.OTHER_LETTER ->
          LETTER;
      case Character.DECIMAL_DIGIT_NUMBER, Character.LETTER_NUMBER, Character.OTHER_NUMBER ->
          NUMBER;
      default -> OTHER;
    };
  }

  /** The Unicode White_Space property: what {@code \s} matches in Oniguruma and Rust regex. */
  static boolean isWhiteSpace(int cp) {
    if (cp <= 0x20) {
      return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
    }
    if (cp < 0x85) {
      return false;
    }
    return cp == 0x85
        || cp == 0xA0
        || cp == 0x1680
        || (cp >= 0x2000 && cp <= 0x200A)
        || cp == 0x2028
        || cp == 0x2029
        || cp == 0x202F
        || cp == 0x205F
        || cp == 0x3000;
  }

  /** Rust's {@code char::is_numeric}: general category Nd, Nl or No (the Digits pre-tokenizer). */
  static boolean isNumeric(int cp) {
    if (cp < 128) {
      return cp >= '0' && cp <= '9';
    }
    int type = Character.getType(cp);
    return type == Character.DECIMAL_DIGIT_NUMBER
        || type == Character.LETTER_NUMBER
        || type == Character.OTHER_NUMBER;
  }

  /**
   * Rust regex's Unicode {@code \w} (UTS #18 annex C): Alphabetic, marks, Nd, Pc and the join
   * controls. Used by the {@code single_word} flag of added tokens.
   */
  static boolean isWordChar(int cp) {
    if (cp < 128) {
      return (cp >= 'a' && cp <= 'z')
          || (cp >= 'A' && cp <= 'Z')
          || (cp >= '0' && cp <= '9')
          || cp == '_';
    }
    if (Character.isAlphabetic(cp) || cp == 0x200C || cp == 0x200D) {
      return true;
    }
    int type = Character.getType(cp);
    return type == Character.NON_SPACING_MARK
        || type == Character.ENCLOSING_MARK
        || type == Character.COMBINING_SPACING_MARK
        || type == Character.DECIMAL_DIGIT_NUMBER
        || type == Character.CONNECTOR_PUNCTUATION;
  }

  /** The code point starting at {@code i}, never reading at or past {@code end}. */
  static int codePointAt(CharSequence s, int i, int end) {
    char c = s.charAt(i);
    if (Character.isHighSurrogate(c) && i + 1 < end) {
      char d = s.charAt(i + 1);
      if (Character.isLowSurrogate(d)) {
        return Character.toCodePoint(c, d);
      }
    }
    return c;
  }

  /** The code point ending just before {@code i}, never reading before {@code start}. */
  static int codePointBefore(CharSequence s, int i, int start) {
    char c = s.charAt(i - 1);
    if (Character.isLowSurrogate(c) && i - 2 >= start) {
      char h = s.charAt(i - 2);
      if (Character.isHighSurrogate(h)) {
        return Character.toCodePoint(h, c);
      }
    }
    return c;
  }
}
