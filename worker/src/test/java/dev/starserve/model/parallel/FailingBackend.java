package dev.starserve.model.parallel;

import dev.starserve.backend.AttentionShape;
import dev.starserve.backend.BatchLayout;
import dev.starserve.backend.Buffer;
import dev.starserve.backend.KvCache;
import dev.starserve.backend.Matrix;
import dev.starserve.backend.host.HostBackend;
import dev.starserve.backend.ref.ReferenceBackend;
import dev.starserve.model.Activation;

/** The reference backend, except that attention throws: a rank with a bug. */
final class FailingBackend extends HostBackend {
  private final ReferenceBackend ref = new ReferenceBackend();

  @Override
  public String name() {
    return "failing";
  }

  @Override
  public void layerNorm(Buffer x, int n, Matrix gamma, Matrix beta, float eps, Buffer out) {
    ref.layerNorm(x, n, gamma, beta, eps, out);
  }

  @Override
  public void linear(Buffer x, int n, Matrix w, Matrix bias, Buffer out) {
    ref.linear(x, n, w, bias, out);
  }

  @Override
  public void activation(Buffer x, int n, Activation kind) {
    ref.activation(x, n, kind);
  }

  @Override
  public void addInPlace(Buffer x, Buffer y, int n) {
    ref.addInPlace(x, y, n);
  }

  @Override
  public void attention(
      Buffer qkv, BatchLayout batch, AttentionShape shape, KvCache cache, int layer, Buffer out) {
    throw new IllegalStateException("rank 1 breaks in attention");
  }

  @Override
  public void close() {}
}
