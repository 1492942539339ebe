package dev.starserve.backend.host;

import dev.starserve.backend.Quantization;

/**
 * Int8 quantization of one weight row in blocks of {@value #BLOCK} consecutive columns (the last
 * block of a row may be shorter), shared by every backend so that they all hold the same integers.
 *
 * <pre>
 * block b = columns [32·b, min(32·b + 32, cols)) of the row
 *   scale[b] = max |w| / 127            (float32, rounded down; 0 for an all-zero block)
 *   q[c]     = round(w[c] / scale[b])   clamped to [-127, 127]
 *   w[c]    ≈ q[c] · scale[b]           with |w − q·scale| ≤ scale / 2 (plus float rounding)
 * </pre>
 *
 * <p>NOTE: the range is symmetric ({@code -128} is never produced) so that the block maximum maps
 * to ±127 and sign flips are lossless. The scale is rounded down so that {@code 127 · scale} is at
 * most the block maximum: weights near {@code Float.MAX_VALUE} dequantize to finite values.
 */
public final class Int8Quantizer {
  private Int8Quantizer() {}

  /** Columns sharing one scale. */
  public static final int BLOCK = Quantization.INT8_BLOCK;

  /** Blocks in a row of {@code cols} columns. */
  public static int blocks(int cols) {
    return (cols + BLOCK - 1) / BLOCK;
  }

  /**
   * Quantizes {@code w[0..cols)} into {@code q[0..cols)} and {@code scales[0..blocks(cols))}.
   *
   * @throws IllegalArgumentException when a weight is infinite or NaN (naming its column)
   */
  public static void quantizeRow(float[] w, int cols, byte[] q, float[] scales) {
    for (int b = 0, c0 = 0; c0 < cols; b++, c0 += BLOCK) {
      int c1 = Math.min(c0 + BLOCK, cols);
      float max = 0f;
      for (int c = c0; c < c1; c++) {
        float a = Math.abs(w[c]);
        if (!(a <= Float.MAX_VALUE)) {
          throw new IllegalArgumentException(
              "column " + c + " holds " + w[c] + ", which int8 cannot represent");
        }
        max = Math.max(max, a);
      }
      float scale = max / 127f;
      if ((double) scale * 127 > max) {
        scale = Math.nextDown(scale); // so that ±127 · scale never exceeds the block max
      }
      scales[b] = scale;
      for (int c = c0; c < c1; c++) {
        // scale == 0 only when every |w| < 127 · Float.MIN_VALUE: those weights become 0.
        int v = scale == 0f ? 0 : Math.round(w[c] / scale);
        q[c] = (byte) Math.max(-127, Math.min(127, v));
      }
    }
  }

  /** The weight {@code q} stands for in a block of {@code scale} (the scalar path). */
  public static float dequantize(byte q, float scale) {
    return q * scale;
  }
}
