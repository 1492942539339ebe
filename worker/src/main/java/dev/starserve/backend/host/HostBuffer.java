package dev.starserve.backend.host;

import dev.starserve.backend.Buffer;

/** An activation buffer on the Java heap: row-major {@code float[rows · cols]}. */
public final class HostBuffer implements Buffer {
  private final float[] data; // [rows × cols]
  private final int rows;
  private final int cols;

  public HostBuffer(int rows, int cols) {
    if (rows <= 0 || cols <= 0) {
      throw new IllegalArgumentException("buffer shape must be positive, got " + rows + "×" + cols);
    }
    this.rows = rows;
    this.cols = cols;
    this.data = new float[Math.multiplyExact(rows, cols)];
  }

  @Override
  public int rows() {
    return rows;
  }

  @Override
  public int cols() {
    return cols;
  }

  /** The backing array (row-major). Host backends and tests read and write it directly. */
  public float[] data() {
    return data;
  }

  /** Casts a buffer that a host backend allocated. */
  public static HostBuffer of(Buffer b) {
    if (b instanceof HostBuffer h) {
      return h;
    }
    throw new IllegalArgumentException("not a host buffer: " + b.getClass().getName());
  }
}
