package dev.starserve.backend.host;

import dev.starserve.backend.Backend;
import dev.starserve.backend.BatchLayout;
import dev.starserve.backend.Buffer;
import dev.starserve.backend.KvCache;
import dev.starserve.backend.KvDType;
import dev.starserve.backend.Matrix;
import dev.starserve.checkpoint.TensorView;

/**
 * What every backend on the Java heap shares: weights read in place from the mapped checkpoint,
 * activations as float arrays, the K/V cache as float or bf16 arrays, and the data movement that is
 * not a kernel (embedding lookup, row gathering, reading results back). Subclasses supply the math.
 */
public abstract class HostBackend implements Backend {

  @Override
  public Matrix upload(TensorView tensor) {
    return HostMatrix.of(tensor);
  }

  @Override
  public Buffer allocate(int rows, int cols) {
    return new HostBuffer(rows, cols);
  }

  @Override
  public KvCache allocateKvCache(
      int layers, int numBlocks, int blockSize, int kvDim, KvDType dtype) {
    return HostKvCache.allocate(layers, numBlocks, blockSize, kvDim, dtype);
  }

  @Override
  public void embed(BatchLayout batch, Matrix wte, Matrix wpe, Buffer out) {
    HostMatrix te = HostMatrix.of(wte);
    HostMatrix pe = HostMatrix.of(wpe);
    float[] o = HostBuffer.of(out).data();
    int d = te.cols();
    for (int t = 0; t < batch.numTokens(); t++) {
      int id = batch.tokenIds()[t];
      int pos = batch.positions()[t];
      if (id < 0 || id >= te.rows()) {
        throw new IllegalArgumentException(
            "token id " + id + " is outside the vocabulary [0, " + te.rows() + ")");
      }
      if (pos >= pe.rows()) {
        throw new IllegalArgumentException(
            "position " + pos + " is beyond the model's " + pe.rows() + " positions");
      }
      for (int c = 0; c < d; c++) {
        o[t * d + c] = te.get(id, c) + pe.get(pos, c);
      }
    }
  }

  @Override
  public void gatherRows(Buffer x, int[] rows, Buffer out) {
    float[] in = HostBuffer.of(x).data();
    float[] o = HostBuffer.of(out).data();
    int d = x.cols();
    for (int i = 0; i < rows.length; i++) {
      System.arraycopy(in, rows[i] * d, o, i * d, d);
    }
  }

  @Override
  public void readRows(Buffer x, int rows, float[] dst) {
    System.arraycopy(HostBuffer.of(x).data(), 0, dst, 0, rows * x.cols());
  }
}
