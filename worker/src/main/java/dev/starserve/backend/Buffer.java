package dev.starserve.backend;

/**
 * An activation matrix {@code [rows × cols]} of float32 owned by a backend (host memory for the CPU
 * backends, device memory for a GPU backend). Row {@code r} is one scheduled token.
 */
public interface Buffer {
  int rows();

  int cols();
}
