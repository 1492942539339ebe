package dev.starserve.text;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import java.util.Random;
import org.junit.jupiter.api.Test;

class Utf8Test {

  private static String decode(String hex) {
    byte[] b = HexFormat.of().parseHex(hex);
    return Utf8.decode(b, b.length);
  }

  @Test
  void replacesMaximalSubpartsAsInTheUnicodeStandardExample() {
    // Unicode 16 §3.9, table 3-8: 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64
    assertEquals("a\uFFFD\uFFFD\uFFFDb\uFFFDc\uFFFD\uFFFDd", decode("61F18080E180C262806380BF64"));
  }

  @Test
  void rejectsSurrogatesOverlongsAndOutOfRangeOneByteAtATimeLikeRust() {
    // Rust's from_utf8 reports error_len 1 when the second byte is out of range for the lead
    assertEquals("\uFFFD\uFFFD\uFFFD", decode("EDA080")); // encoded surrogate U+D800
    assertEquals("\uFFFD\uFFFD", decode("C0AF")); // overlong '/'
    assertEquals("\uFFFD\uFFFD\uFFFD", decode("E08080")); // overlong
    assertEquals("\uFFFD\uFFFD\uFFFD\uFFFD", decode("F4908080")); // above U+10FFFF
    assertEquals("\uFFFD", decode("F09F98")); // truncated at the end: one replacement
    assertEquals("\uFFFDx", decode("F09F9878"));
    assertEquals("\uD7FF\uE000", decode("ED9FBFEE8080"));
  }

  @Test
  void agreesWithTheJdkDecoderOnRandomBytesWithoutSurrogateLeads() {
    // The JDK replaces "ED A0..BF" as one unit where Rust (and Unicode) replace ED alone, so
    // 0xED is left out of this comparison and covered by the explicit cases above.
    Random random = new Random(7);
    for (int trial = 0; trial < 100_000; trial++) {
      byte[] b = new byte[1 + random.nextInt(10)];
      for (int i = 0; i < b.length; i++) {
        int kind = random.nextInt(4);
        int v =
            kind == 0
                ? random.nextInt(0x80)
                : kind == 1 ? 0x80 + random.nextInt(0x40) : 0xC0 + random.nextInt(0x40);
        b[i] = (byte) (v == 0xED ? 0xEE : v);
      }
      assertEquals(
          new String(b, StandardCharsets.UTF_8),
          Utf8.decode(b, b.length),
          HexFormat.of().formatHex(b));
    }
  }

  @Test
  void stopsBeforeAnIncompleteButValidTailWhenMoreMayCome() {
    byte[] b = HexFormat.of().parseHex("61E4BD");
    StringBuilder out = new StringBuilder();

    int done = Utf8.decode(b, 0, b.length, false, out);

    assertEquals(1, done);
    assertEquals("a", out.toString());
  }

  @Test
  void encodesLoneSurrogatesAsReplacementCharacter() {
    byte[] dst = new byte[4];
    assertEquals(3, Utf8.encode(0xD800, dst, 0));
    assertEquals("efbfbd", HexFormat.of().formatHex(dst, 0, 3));
    assertEquals(4, Utf8.encode(0x1F600, dst, 0));
    assertEquals("f09f9880", HexFormat.of().formatHex(dst));
  }
}
