package dev.starserve.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class Bf16Test {

  private static short bf16(float f) {
    return Bf16.round(f);
  }

  private static float bits(int b) {
    return Float.intBitsToFloat(b);
  }

  @Test
  void roundsToNearestEvenOnKnownBitPatterns() {
    assertEquals((short) 0x3f80, bf16(1f)); // exact
    assertEquals((short) 0x3f80, bf16(bits(0x3f80_7fff))); // below half: down
    assertEquals((short) 0x3f81, bf16(bits(0x3f80_8001))); // above half: up
    assertEquals((short) 0x3f80, bf16(bits(0x3f80_8000))); // tie, even below: stays
    assertEquals((short) 0x3f82, bf16(bits(0x3f81_8000))); // tie, odd below: up to even
    assertEquals((short) 0xbf82, bf16(bits(0xbf81_8000))); // same for negatives
    assertEquals((short) 0x4000, bf16(bits(0x3fff_8000))); // carry into the exponent
    assertEquals((short) 0x8000, bf16(-0f));
    assertEquals((short) 0x0001, bf16(bits(0x0000_8001))); // subnormal rounds up
    assertEquals((short) 0x0000, bf16(bits(0x0000_8000))); // subnormal tie to even zero
  }

  @Test
  void infinitiesStayAndFiniteValuesPastTheLargestBf16BecomeInfinity() {
    assertEquals((short) 0x7f80, bf16(Float.POSITIVE_INFINITY));
    assertEquals((short) 0xff80, bf16(Float.NEGATIVE_INFINITY));
    assertEquals((short) 0x7f80, bf16(bits(0x7f7f_ffff))); // max float rounds to +inf
    assertEquals((short) 0xff80, bf16(-Float.MAX_VALUE));
    assertEquals((short) 0x7f7f, bf16(bits(0x7f7f_7fff))); // just below the tie: largest bf16
    assertEquals(Float.POSITIVE_INFINITY, Bf16.widen(bf16(Float.POSITIVE_INFINITY)));
    assertEquals(Float.NEGATIVE_INFINITY, Bf16.widen(bf16(Float.NEGATIVE_INFINITY)));
  }

  @Test
  void nanStaysAQuietNanWithItsSignEvenWhenOnlyLowMantissaBitsAreSet() {
    short h = bf16(bits(0x7f80_0001)); // truncation alone would give +inf
    assertTrue(Float.isNaN(Bf16.widen(h)));
    assertEquals(0x0040, h & 0x0040, "quiet bit set");
    assertTrue(Float.isNaN(Bf16.widen(bf16(Float.NaN))));
    assertTrue(Float.isNaN(Bf16.widen(bf16(bits(0xffc0_0000)))));
    assertTrue(bf16(bits(0xffc0_0000)) < 0); // sign kept
  }

  @Test
  void widenIsExactAndInvertsRoundOnEveryBf16Value() {
    for (int h = 0; h < 0x1_0000; h++) {
      float f = Bf16.widen((short) h);
      if ((h & 0x7fff) > 0x7f80) {
        // NOTE: no bit-exact check for NaN: the JVM need not keep a signalling NaN's payload.
        assertTrue(Float.isNaN(f));
        continue;
      }
      assertEquals(h << 16, Float.floatToRawIntBits(f));
      assertEquals((short) h, bf16(f));
    }
  }

  @Test
  void errorIsAtMostHalfAnUlpOnRandomValues() {
    SplittableRandom r = new SplittableRandom(7);
    for (int i = 0; i < 100_000; i++) {
      float x = (float) (r.nextGaussian() * Math.pow(10, r.nextInt(-20, 20)));
      float y = Bf16.widen(bf16(x));
      float ulp = Math.ulp(y) * (1 << 16); // bf16 keeps 7 of float's 23 mantissa bits
      assertTrue(Math.abs(x - y) <= ulp / 2, x + " -> " + y);
    }
  }
}
