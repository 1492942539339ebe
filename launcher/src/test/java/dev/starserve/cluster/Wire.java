package dev.starserve.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;

/** Readers for what the servers write: server-sent events and the Prometheus text format. */
final class Wire {
  private Wire() {}

  /**
   * The payloads of a server-sent event body, checking the framing: every event is a single {@code
   * prefix} line followed by a blank line, and the body ends with that blank line.
   */
  static List<String> sse(String body, String prefix) {
    String[] events = body.split("\n\n", -1);
    assertEquals("", events[events.length - 1], "the stream ends with a blank line: " + body);
    List<String> out = new ArrayList<>();
    for (int i = 0; i < events.length - 1; i++) {
      assertTrue(
          events[i].startsWith(prefix) && !events[i].contains("\n"),
          "not a single '" + prefix + "' line: " + events[i]);
      out.add(events[i].substring(prefix.length()));
    }
    assertFalse(out.isEmpty(), "no events");
    return out;
  }

  /**
   * The sum of the samples of {@code name} (exactly that name) whose labels include every one of
   * {@code labels} (each written {@code key="value"}); fails when there is none.
   */
  static double metric(String text, String name, String... labels) {
    double[] found = samples(text, name, labels);
    if (found[1] == 0) {
      throw new AssertionError("no " + name + " with " + List.of(labels) + " in\n" + text);
    }
    return found[0];
  }

  /** Like {@link #metric} but 0 when no sample matches (a labelled counter not yet counted). */
  static double metricOrZero(String text, String name, String... labels) {
    return samples(text, name, labels)[0];
  }

  private static double[] samples(String text, String name, String... labels) {
    double sum = 0;
    int count = 0;
    for (String line : text.split("\n")) {
      String series;
      if (line.startsWith(name + "{")) {
        series = line.substring(0, line.indexOf('}') + 1);
      } else if (line.startsWith(name + " ")) {
        series = name;
      } else {
        continue;
      }
      boolean all = true;
      for (String l : labels) {
        all &= series.contains(l);
      }
      if (all) {
        count++;
        sum += Double.parseDouble(line.substring(series.length()).trim().split(" ")[0]);
      }
    }
    return new double[] {sum, count};
  }
}
