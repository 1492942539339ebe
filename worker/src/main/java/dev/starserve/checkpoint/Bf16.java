package dev.starserve.checkpoint;

/**
 * bfloat16 ↔ float32 on bit patterns: the upper half of a float32 (sign, 8-bit exponent, 7 mantissa
 * bits). Used wherever StarServe writes bf16 itself (checkpoints, the bf16 K/V cache).
 *
 * <p>Special values: ±0, ±infinity and subnormals round like any other value (a subnormal may round
 * to zero or up to the smallest normal); finite values that round past the largest bf16 (≥
 * 0x1.fep127 + half an ulp) become infinity, as IEEE round-to-nearest-even requires; NaN stays a
 * quiet NaN with its sign (truncating its mantissa could otherwise turn it into infinity).
 */
public final class Bf16 {
  private Bf16() {}

  /** float32 to bfloat16 bits with round-to-nearest-even, as PyTorch converts. */
  public static short round(float f) {
    int bits = Float.floatToRawIntBits(f);
    if ((bits & 0x7fff_ffff) > 0x7f80_0000) {
      return (short) ((bits >>> 16) | 0x0040);
    }
    int lsb = (bits >>> 16) & 1;
    return (short) ((bits + 0x7fff + lsb) >>> 16);
  }

  /** bfloat16 bits to float32 (exact). */
  public static float widen(short h) {
    return Float.intBitsToFloat((h & 0xffff) << 16);
  }
}
