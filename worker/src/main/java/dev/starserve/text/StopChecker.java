package dev.starserve.text;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Finds the client's stop strings in generated text as it streams, and says what may be shown to
 * the client now. One per request (per sample); not thread-safe.
 *
 * <p>The match is defined on the text alone, never on how it was cut into pieces: of all stop
 * strings that occur in the text, the one that starts earliest wins, and at the same start the
 * longest. So the checker may hold back text behind a complete match while an earlier-starting or
 * longer one is still possible (stops {@code "ab"} and {@code "abc"}: after {@code "ab"} it waits
 * for one more piece). Text that could still be part of a match is never returned: every {@link
 * #append} returns the text before the earliest position where a stop string may still start.
 *
 * <p>The concatenation of every {@link #append} result and the {@link #flush} result is the text
 * fed in, cut before the match (after it with {@code includeStopSequence}), or all of it when no
 * stop string occurs.
 *
 * <p>NOTE: stop strings are matched with an Aho-Corasick automaton over their characters, so each
 * character fed in costs amortized O(1) transitions, plus O(held-back length) to cut the output:
 * O(total length × longest stop string) at worst. Stop strings must be well-formed UTF-16 (no lone
 * surrogate), so a match or a held-back prefix always starts on a code point boundary, and a
 * surrogate pair in the text is never split between what is returned and what is held back.
 */
public final class StopChecker {
  /** The most stop strings one request may give. */
  public static final int MAX_STOP_SEQUENCES = 16;

  /** The longest stop string, in UTF-16 chars. */
  public static final int MAX_STOP_LENGTH = 240;

  private final List<String> stops;
  private final boolean includeStopSequence;
  private final Automaton automaton;

  private final StringBuilder held = new StringBuilder(); // text from offset heldStart on
  private long heldStart; // absolute position of held[0] in the text fed in
  private long fed; // characters fed in so far
  private int state; // automaton state after the text fed in
  private long candidateStart = -1; // earliest-start, longest complete match so far, or -1
  private int candidateStop = -1; // index into stops
  private boolean stopped;
  private boolean finished;

  /**
   * @param stopSequences the stop strings: at most {@value #MAX_STOP_SEQUENCES}, each non-empty, at
   *     most {@value #MAX_STOP_LENGTH} chars and well-formed text; may be empty (never stops)
   * @param includeStopSequence whether the returned text ends with the matched stop string
   * @throws IllegalArgumentException naming {@code stop} and the offending entry
   */
  public StopChecker(List<String> stopSequences, boolean includeStopSequence) {
    this.stops = validate(stopSequences);
    this.includeStopSequence = includeStopSequence;
    this.automaton = new Automaton(stops);
  }

  private static List<String> validate(List<String> stopSequences) {
    if (stopSequences == null) {
      throw new IllegalArgumentException("stop must be a list of strings, got null");
    }
    if (stopSequences.size() > MAX_STOP_SEQUENCES) {
      throw new IllegalArgumentException(
          "stop may have at most " + MAX_STOP_SEQUENCES + " strings, got " + stopSequences.size());
    }
    for (int i = 0; i < stopSequences.size(); i++) {
      String s = stopSequences.get(i);
      if (s == null || s.isEmpty()) {
        throw new IllegalArgumentException("stop[" + i + "] must be a non-empty string");
      }
      if (s.length() > MAX_STOP_LENGTH) {
        throw new IllegalArgumentException(
            "stop["
                + i
                + "] must be at most "
                + MAX_STOP_LENGTH
                + " characters, got "
                + s.length());
      }
      int bad = loneSurrogateAt(s);
      if (bad >= 0) {
        throw new IllegalArgumentException(
            "stop[" + i + "] is not well-formed text: lone surrogate at index " + bad);
      }
    }
    return List.copyOf(stopSequences);
  }

  private static int loneSurrogateAt(String s) {
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (Character.isHighSurrogate(c)
          && i + 1 < s.length()
          && Character.isLowSurrogate(s.charAt(i + 1))) {
        i++;
      } else if (Character.isSurrogate(c)) {
        return i;
      }
    }
    return -1;
  }

  /**
   * Feeds the next piece of generated text (whole characters, as {@link
   * IncrementalDetokenizer#push} gives them) and returns what may be shown now, possibly "". When
   * this piece completes the match, returns the text up to it (and the stop string with {@code
   * includeStopSequence}), and {@link #stopped()} becomes true; the rest of the piece is dropped.
   *
   * @throws IllegalStateException after a stop or {@link #flush}
   */
  public String append(String piece) {
    if (finished) {
      throw new IllegalStateException(
          stopped ? "already stopped at a stop string" : "already flushed");
    }
    boolean nothingHeld = held.isEmpty();
    for (int i = 0; i < piece.length(); i++) {
      char c = piece.charAt(i);
      held.append(c);
      fed++;
      state = automaton.next(state, c);
      int length = automaton.longestMatch[state];
      if (length > 0) {
        long start = fed - length;
        // Matches end in order; a later end starts later or is longer at the same start.
        if (candidateStart < 0 || start <= candidateStart) {
          candidateStart = start;
          candidateStop = automaton.matchedStop[state];
        }
      }
      if (candidateStart >= 0 && earliestOpenStart() > candidateStart) {
        return stop();
      }
    }
    long keepFrom = earliestOpenStart();
    long end = candidateStart >= 0 ? Math.min(keepFrom, candidateStart) : keepFrom;
    if (nothingHeld && end == fed) {
      held.setLength(0); // the whole piece goes out as it came: no copy of it
      heldStart = fed;
      return piece;
    }
    return emitUpTo(end);
  }

  /**
   * Ends the text for another reason (length, EOS, cancellation) and returns what was held back. If
   * a complete match was waiting on a possibly earlier or longer one, it is now final: the text up
   * to it is returned and {@link #stopped()} becomes true. Later calls return "".
   */
  public String flush() {
    if (finished) {
      return "";
    }
    if (candidateStart >= 0) {
      return stop();
    }
    finished = true;
    return emitUpTo(fed);
  }

  /** Whether a stop string was found. */
  public boolean stopped() {
    return stopped;
  }

  /** The stop string that was found, or null unless {@link #stopped()}. */
  public String matchedStopSequence() {
    return stopped ? stops.get(candidateStop) : null;
  }

  /** The absolute position where the earliest stop string that may still complete starts. */
  private long earliestOpenStart() {
    int open = automaton.longestOpenPrefix[state];
    return open == 0 ? fed : fed - open;
  }

  private String stop() {
    stopped = true;
    finished = true;
    long end = candidateStart + (includeStopSequence ? stops.get(candidateStop).length() : 0);
    return emitUpTo(end);
  }

  /** Returns held text before absolute position {@code end} and forgets it. */
  private String emitUpTo(long end) {
    int n = (int) (end - heldStart);
    String out = held.substring(0, n);
    held.delete(0, n);
    heldStart = end;
    return out;
  }

  /**
   * An Aho-Corasick automaton over the stop strings. A state is a trie node: the longest suffix of
   * the text read that is a prefix of some stop string. Per state, precomputed along its failure
   * chain (the shorter such suffixes): the longest stop string ending here, and the longest suffix
   * that a further character can still extend.
   */
  private static final class Automaton {
    private final char[][] edgeChars; // state → sorted characters of its trie children
    private final int[][] edgeTargets; // state → child states, in the same order
    private final int[] fail; // state → state of its longest proper suffix in the trie
    final int[] longestMatch; // state → length of the longest stop string ending here, or 0
    final int[] matchedStop; // state → index of that stop string, or -1
    final int[] longestOpenPrefix; // state → length of the longest suffix with children, or 0

    Automaton(List<String> stops) {
      List<Map<Character, Integer>> children = new ArrayList<>();
      List<Integer> depth = new ArrayList<>();
      List<Integer> terminal = new ArrayList<>();
      children.add(new HashMap<>());
      depth.add(0);
      terminal.add(-1);
      for (int s = 0; s < stops.size(); s++) {
        String stop = stops.get(s);
        int node = 0;
        for (int k = 0; k < stop.length(); k++) {
          Integer child = children.get(node).get(stop.charAt(k));
          if (child == null) {
            child = children.size();
            children.get(node).put(stop.charAt(k), child);
            children.add(new HashMap<>());
            depth.add(k + 1);
            terminal.add(-1);
          }
          node = child;
        }
        if (terminal.get(node) < 0) { // a repeated stop string keeps its first index
          terminal.set(node, s);
        }
      }
      int n = children.size();
      edgeChars = new char[n][];
      edgeTargets = new int[n][];
      for (int v = 0; v < n; v++) {
        Character[] keys = children.get(v).keySet().toArray(new Character[0]);
        Arrays.sort(keys);
        edgeChars[v] = new char[keys.length];
        edgeTargets[v] = new int[keys.length];
        for (int k = 0; k < keys.length; k++) {
          edgeChars[v][k] = keys[k];
          edgeTargets[v][k] = children.get(v).get(keys[k]);
        }
      }
      fail = new int[n];
      longestMatch = new int[n];
      matchedStop = new int[n];
      longestOpenPrefix = new int[n];
      matchedStop[0] = -1;
      ArrayDeque<Integer> queue = new ArrayDeque<>(); // breadth first: a failure is shallower
      queue.add(0);
      while (!queue.isEmpty()) {
        int v = queue.poll();
        if (v != 0) {
          if (terminal.get(v) >= 0) {
            longestMatch[v] = depth.get(v);
            matchedStop[v] = terminal.get(v);
          } else {
            longestMatch[v] = longestMatch[fail[v]];
            matchedStop[v] = matchedStop[fail[v]];
          }
          longestOpenPrefix[v] =
              edgeChars[v].length > 0 ? depth.get(v) : longestOpenPrefix[fail[v]];
        }
        for (int k = 0; k < edgeChars[v].length; k++) {
          int child = edgeTargets[v][k];
          fail[child] = v == 0 ? 0 : next(fail[v], edgeChars[v][k]);
          queue.add(child);
        }
      }
    }

    /** The state after reading {@code c} in {@code state}. */
    int next(int state, char c) {
      while (true) {
        int k = Arrays.binarySearch(edgeChars[state], c);
        if (k >= 0) {
          return edgeTargets[state][k];
        }
        if (state == 0) {
          return 0;
        }
        state = fail[state];
      }
    }
  }
}
