package dev.starserve.bench.serve;

import io.vertx.core.buffer.Buffer;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.function.Consumer;

/**
 * Splits a server-sent event stream, fed in arbitrary pieces, into the data of its events: the
 * {@code data:} lines of an event (one optional space after the colon dropped, several joined with
 * newlines), delivered at the blank line ending it. Comments ({@code :...}) and the other fields
 * ({@code event}, {@code id}, {@code retry}) are skipped; lines may end in LF or CRLF.
 *
 * <p>Lines are cut on the LF byte before decoding, which is safe in UTF-8 (no multi-byte character
 * contains 0x0A).
 */
final class SseParser {
  private final Consumer<String> onData;
  private final ByteArrayOutputStream line = new ByteArrayOutputStream(256);
  private StringBuilder data;

  SseParser(Consumer<String> onData) {
    this.onData = onData;
  }

  void feed(Buffer buffer) {
    byte[] bytes = buffer.getBytes();
    int start = 0;
    for (int i = 0; i < bytes.length; i++) {
      if (bytes[i] == '\n') {
        line.write(bytes, start, i - start);
        line(line.toString(StandardCharsets.UTF_8));
        line.reset();
        start = i + 1;
      }
    }
    line.write(bytes, start, bytes.length - start);
  }

  private void line(String l) {
    if (l.endsWith("\r")) {
      l = l.substring(0, l.length() - 1);
    }
    if (l.isEmpty()) {
      if (data != null) {
        String d = data.toString();
        data = null;
        onData.accept(d);
      }
      return;
    }
    if (!l.startsWith("data:")) {
      return; // a comment or another field
    }
    String value = l.substring(5);
    if (value.startsWith(" ")) {
      value = value.substring(1);
    }
    if (data == null) {
      data = new StringBuilder(value);
    } else {
      data.append('\n').append(value);
    }
  }
}
