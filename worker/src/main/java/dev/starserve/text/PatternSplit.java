package dev.starserve.text;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The Split pre-tokenizer: cuts on the matches of a pattern (a literal string or a regex) and
 * treats the matches according to {@link Behavior}.
 *
 * <p>NOTE: regex patterns run on {@code java.util.regex} with {@code UNICODE_CHARACTER_CLASS}, not
 * on Oniguruma as in HF. The two agree on the classes and constructs that tokenizer files use
 * ({@code \p{L}}, {@code \s}, lookahead, {@code (?i:...)}), but this step is not conformance-tested
 * against HF the way the StarCoder pipeline is; StarCoder does not use it.
 */
record PatternSplit(Pattern pattern, Behavior behavior, boolean invert) implements PreTokenizer {

  /** What happens to a match ({@code SplitDelimiterBehavior} in HF). */
  enum Behavior {
    REMOVED,
    ISOLATED,
    MERGED_WITH_PREVIOUS,
    MERGED_WITH_NEXT,
    CONTIGUOUS;

    /** Parses the JSON spelling ("MergedWithPrevious"), or returns null. */
    static Behavior parse(String name) {
      return switch (name) {
        case "Removed" -> REMOVED;
        case "Isolated" -> ISOLATED;
        case "MergedWithPrevious" -> MERGED_WITH_PREVIOUS;
        case "MergedWithNext" -> MERGED_WITH_NEXT;
        case "Contiguous" -> CONTIGUOUS;
        default -> null;
      };
    }
  }

  /** A literal-string pattern ({@code "pattern": {"String": ...}}). */
  static PatternSplit literal(String s, Behavior behavior, boolean invert) {
    return new PatternSplit(Pattern.compile(Pattern.quote(s)), behavior, invert);
  }

  /** A regex pattern ({@code "pattern": {"Regex": ...}}); throws PatternSyntaxException. */
  static PatternSplit regex(String regex, Behavior behavior, boolean invert) {
    return new PatternSplit(
        Pattern.compile(regex, Pattern.UNICODE_CHARACTER_CLASS), behavior, invert);
  }

  private static final class Span {
    int start;
    int end;
    final boolean match;

    Span(int start, int end, boolean match) {
      this.start = start;
      this.end = end;
      this.match = match;
    }
  }

  @Override
  public void split(CharSequence text, int start, int end, Sink sink) {
    List<Span> spans = new ArrayList<>();
    Matcher m = pattern.matcher(text).region(start, end);
    int prev = start;
    while (m.find()) {
      if (prev != m.start()) {
        spans.add(new Span(prev, m.start(), invert));
      }
      spans.add(new Span(m.start(), m.end(), !invert));
      prev = m.end();
    }
    if (prev != end) {
      spans.add(new Span(prev, end, invert));
    }
    for (Span s : apply(spans)) {
      if (s.start < s.end) {
        sink.accept(text, s.start, s.end);
      }
    }
  }

  private List<Span> apply(List<Span> spans) {
    List<Span> out = new ArrayList<>(spans.size());
    switch (behavior) {
      case ISOLATED -> out.addAll(spans);
      case REMOVED -> spans.stream().filter(s -> !s.match).forEach(out::add);
      case MERGED_WITH_PREVIOUS, CONTIGUOUS -> {
        boolean previousMatch = false;
        for (Span s : spans) {
          boolean merge =
              behavior == Behavior.CONTIGUOUS
                  ? s.match == previousMatch
                  : s.match && !previousMatch;
          if (merge && !out.isEmpty()) {
            out.getLast().end = s.end;
          } else {
            out.add(new Span(s.start, s.end, false));
          }
          previousMatch = s.match;
        }
      }
      case MERGED_WITH_NEXT -> {
        boolean previousMatch = false;
        for (Span s : spans.reversed()) {
          if (s.match && !previousMatch && !out.isEmpty()) {
            out.getLast().start = s.start;
          } else {
            out.add(new Span(s.start, s.end, false));
          }
          previousMatch = s.match;
        }
        return out.reversed();
      }
    }
    return out;
  }
}
