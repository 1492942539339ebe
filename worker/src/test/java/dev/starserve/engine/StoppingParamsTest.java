package dev.starserve.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

class StoppingParamsTest {
  static StoppingParams of(int[] ids, List<String> stops) {
    return new StoppingParams(10, 2, true, ids, stops, true, 500);
  }

  @Test
  void formatStopsAddToTheClientsWithoutDuplicatesAndKeepEverythingElse() {
    StoppingParams p =
        of(new int[] {7, 49155}, List.of("x", "\nHuman:"))
            .withFormatStops(new int[] {49155, 0}, List.of("\nHuman:", "\n-----"));

    assertArrayEquals(new int[] {7, 49155, 0}, p.stopTokenIds());
    assertEquals(List.of("x", "\nHuman:", "\n-----"), p.stopSequences());
    assertEquals(10, p.maxNewTokens());
    assertEquals(2, p.minNewTokens());
    assertTrue(p.ignoreEos());
    assertTrue(p.includeStopSequence());
    assertEquals(500, p.timeLimitMillis());
  }

  @Test
  void tooManyStopsWithTheFormatsSayHowManyTheFormatTakes() {
    List<String> stops = new ArrayList<>();
    for (int i = 0; i < 15; i++) {
      stops.add("s" + i);
    }
    StoppingParams fifteen = of(null, stops);
    assertEquals(
        "stop may hold at most 14 sequences with this prompt format, which adds 2, got 15",
        assertThrows(
                IllegalArgumentException.class,
                () -> fifteen.withFormatStops(new int[0], List.of("\nHuman:", "\n-----")))
            .getMessage());

    StoppingParams ids = of(IntStream.range(100, 132).toArray(), null);
    assertEquals(
        "stop_token_ids may hold at most 31 ids with this prompt format, which adds 1, got 32",
        assertThrows(
                IllegalArgumentException.class,
                () -> ids.withFormatStops(new int[] {49155}, List.of()))
            .getMessage());
  }

  @Test
  void timeLimitIsBoundedSoThatADeadlineCannotOverflow() {
    assertEquals(
        "time_limit_ms must be in [0, 604800000] (0 = no limit), got 604800001",
        assertThrows(
                IllegalArgumentException.class,
                () -> new StoppingParams(1, 0, false, null, null, false, 604_800_001L))
            .getMessage());
    assertEquals(
        "time_limit_ms must be in [0, 604800000] (0 = no limit), got -1",
        assertThrows(
                IllegalArgumentException.class,
                () -> new StoppingParams(1, 0, false, null, null, false, -1))
            .getMessage());
  }
}
