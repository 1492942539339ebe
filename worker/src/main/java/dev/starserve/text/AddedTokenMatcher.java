package dev.starserve.text;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Finds added tokens in raw text the way HF's {@code AddedVocabulary::extract_and_normalize} does:
 * first the non-normalized tokens over the whole text, then the normalized ones in the gaps left
 * (there is no normalizer here, so both match the text as is). In each pass the matches are
 * leftmost-longest and non-overlapping (an Aho-Corasick {@code LeftmostLongest} search), and the
 * {@code single_word}, {@code lstrip} and {@code rstrip} flags then accept, widen or drop a match.
 */
final class AddedTokenMatcher {

  /** Receives the text between tokens and the tokens, in text order. */
  interface Sink {
    void text(String text, int start, int end);

    void token(int id);
  }

  private final Trie nonNormalized;
  private final Trie normalized;

  AddedTokenMatcher(List<AddedToken> tokens) {
    List<AddedToken> plain = new ArrayList<>();
    List<AddedToken> norm = new ArrayList<>();
    for (AddedToken t : tokens) {
      if (!t.content().isEmpty()) {
        (t.normalized() ? norm : plain).add(t);
      }
    }
    nonNormalized = new Trie(plain);
    normalized = new Trie(norm);
  }

  void split(String text, Sink sink) {
    if (text.isEmpty()) {
      return;
    }
    pass(
        text,
        0,
        text.length(),
        nonNormalized,
        new Sink() {
          @Override
          public void text(String t, int start, int end) {
            pass(t, start, end, normalized, sink);
          }

          @Override
          public void token(int id) {
            sink.token(id);
          }
        });
  }

  /** HF's {@code find_matches} on the sentence {@code text[from, to)}. */
  private static void pass(String text, int from, int to, Trie trie, Sink sink) {
    if (trie.isEmpty()) {
      sink.text(text, from, to);
      return;
    }
    int emitted = from; // HF's start_offset: text before it is already handed on
    int i = from;
    while (i < to) {
      AddedToken token = trie.longestAt(text, i, to);
      if (token == null) {
        i++;
        continue;
      }
      int start = i;
      int stop = i + token.content().length();
      i = stop; // the search resumes after the match even when the flags drop it
      if (token.singleWord()) {
        boolean wordBefore =
            start > from && CharClass.isWordChar(CharClass.codePointBefore(text, start, from));
        boolean wordAfter =
            stop < to && CharClass.isWordChar(CharClass.codePointAt(text, stop, to));
        if (wordBefore || wordAfter) {
          continue;
        }
      }
      if (token.lstrip()) {
        int s = start;
        while (s > from && CharClass.isWhiteSpace(CharClass.codePointBefore(text, s, from))) {
          s -= Character.charCount(CharClass.codePointBefore(text, s, from));
        }
        start = Math.max(s, emitted); // a previous rstrip may already own those spaces
      }
      if (token.rstrip()) {
        while (stop < to && CharClass.isWhiteSpace(CharClass.codePointAt(text, stop, to))) {
          stop += Character.charCount(CharClass.codePointAt(text, stop, to));
        }
      }
      if (emitted < start) {
        sink.text(text, emitted, start);
      }
      sink.token(token.id());
      emitted = Math.max(emitted, stop);
    }
    if (emitted < to) {
      sink.text(text, emitted, to);
    }
  }

  /** A character trie over the token contents; later duplicates of a content replace earlier. */
  private static final class Trie {
    private final Node root = new Node();
    private final BitSet firstChars = new BitSet(65536);
    private final boolean empty;

    Trie(List<AddedToken> tokens) {
      for (AddedToken t : tokens) {
        Node node = root;
        for (int k = 0; k < t.content().length(); k++) {
          node = node.children.computeIfAbsent(t.content().charAt(k), c -> new Node());
        }
        node.token = t;
        firstChars.set(t.content().charAt(0));
      }
      empty = tokens.isEmpty();
    }

    boolean isEmpty() {
      return empty;
    }

    /** The longest token that starts at {@code i} and ends by {@code to}, or null. */
    AddedToken longestAt(String text, int i, int to) {
      if (!firstChars.get(text.charAt(i))) {
        return null;
      }
      AddedToken best = null;
      Node node = root;
      for (int k = i; k < to; k++) {
        node = node.children.get(text.charAt(k));
        if (node == null) {
          break;
        }
        if (node.token != null) {
          best = node.token;
        }
      }
      return best;
    }
  }

  private static final class Node {
    final Map<Character, Node> children = new HashMap<>(4);
    AddedToken token;
  }
}
