package dev.starserve.bench.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.vertx.core.buffer.Buffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class SseParserTest {
  private static List<String> parse(byte[] stream, int pieceSize) {
    List<String> out = new ArrayList<>();
    SseParser p = new SseParser(out::add);
    for (int i = 0; i < stream.length; i += pieceSize) {
      p.feed(Buffer.buffer().appendBytes(stream, i, Math.min(pieceSize, stream.length - i)));
    }
    return out;
  }

  @Test
  void eventsComeOutWholeHoweverTheBytesAreCut() {
    String body =
        "data: {\"a\":1}\n\n"
            + ": a comment\n"
            + "event: message\n"
            + "data:{\"b\":\"é ✓\"}\r\n\r\n"
            + "data: line one\n"
            + "data: line two\n"
            + "\n"
            + "data: [DONE]\n\n"
            + "data: never terminated\n";
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    List<String> expected = List.of("{\"a\":1}", "{\"b\":\"é ✓\"}", "line one\nline two", "[DONE]");
    for (int piece : new int[] {1, 2, 3, 7, bytes.length}) {
      assertEquals(expected, parse(bytes, piece), "pieces of " + piece + " bytes");
    }
  }

  @Test
  void onlyOneSpaceAfterTheColonIsDropped() {
    byte[] bytes = "data:  two spaces\n\n".getBytes(StandardCharsets.UTF_8);
    assertEquals(List.of(" two spaces"), parse(bytes, bytes.length));
  }
}
