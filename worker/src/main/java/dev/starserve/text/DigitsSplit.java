package dev.starserve.text;

/**
 * The Digits pre-tokenizer: numeric characters (Rust {@code char::is_numeric}: Nd, Nl, No) are cut
 * out of the text, each on its own ({@code individual_digits: true}, as StarCoder does) or as runs
 * of consecutive numerics.
 */
record DigitsSplit(boolean individualDigits) implements PreTokenizer {

  @Override
  public void split(CharSequence text, int start, int end, Sink sink) {
    int pieceStart = start;
    boolean inDigits = false;
    for (int i = start; i < end; ) {
      int cp = CharClass.codePointAt(text, i, end);
      int next = i + Character.charCount(cp);
      boolean numeric = CharClass.isNumeric(cp);
      if (numeric) {
        if (individualDigits) {
          if (pieceStart < i) {
            sink.accept(text, pieceStart, i);
          }
          sink.accept(text, i, next);
          pieceStart = next;
        } else if (!inDigits && pieceStart < i) {
          sink.accept(text, pieceStart, i);
          pieceStart = i;
        }
      } else if (inDigits && !individualDigits) {
        sink.accept(text, pieceStart, i);
        pieceStart = i;
      }
      inDigits = numeric;
      i = next;
    }
    if (pieceStart < end) {
      sink.accept(text, pieceStart, end);
    }
  }
}
