package dev.starserve.text;

import java.util.List;

/**
 * One step of HuggingFace pre-tokenization: cuts a piece of text into smaller pieces (and may
 * rewrite them, as ByteLevel does). Pieces are handed on in order, never empty.
 *
 * <pre>
 * text ─► added tokens ─► [Digits ─► ByteLevel (split + bytes→unicode)] ─► BPE per piece
 * </pre>
 */
sealed interface PreTokenizer permits ByteLevel, DigitsSplit, PatternSplit, PreTokenizer.Sequence {

  /** Splits {@code text[start, end)} (never empty) and hands every piece to {@code sink}. */
  void split(CharSequence text, int start, int end, Sink sink);

  /** Receives pieces; a piece is {@code text[start, end)}. */
  @FunctionalInterface
  interface Sink {
    void accept(CharSequence text, int start, int end);
  }

  /** {@code "type": "Sequence"}: each step splits every piece of the previous step. */
  record Sequence(List<PreTokenizer> steps) implements PreTokenizer {
    public Sequence {
      steps = List.copyOf(steps);
    }

    @Override
    public void split(CharSequence text, int start, int end, Sink sink) {
      run(0, text, start, end, sink);
    }

    private void run(int step, CharSequence text, int start, int end, Sink sink) {
      if (step == steps.size()) {
        sink.accept(text, start, end);
      } else {
        steps.get(step).split(text, start, end, (t, s, e) -> run(step + 1, t, s, e, sink));
      }
    }
  }
}
