package dev.starserve.backend.ref;

import dev.starserve.backend.AttentionShape;
import dev.starserve.backend.BatchLayout;
import dev.starserve.backend.Buffer;
import dev.starserve.backend.KvCache;
import dev.starserve.backend.Matrix;
import dev.starserve.backend.Quantization;
import dev.starserve.backend.host.Gelu;
import dev.starserve.backend.host.HostBackend;
import dev.starserve.backend.host.HostBuffer;
import dev.starserve.backend.host.HostKvCache;
import dev.starserve.backend.host.HostMatrix;
import dev.starserve.backend.host.Int8Matrix;
import dev.starserve.checkpoint.TensorView;
import dev.starserve.model.Activation;

/**
 * The oracle: every operation as the plainest scalar loop, one thread, no tricks. Fast backends are
 * tested against it; it is far too slow to serve with.
 */
public final class ReferenceBackend extends HostBackend {

  @Override
  public String name() {
    return "reference";
  }

  @Override
  public void layerNorm(Buffer x, int n, Matrix gamma, Matrix beta, float eps, Buffer out) {
    float[] in = HostBuffer.of(x).data();
    float[] o = HostBuffer.of(out).data();
    HostMatrix g = HostMatrix.of(gamma);
    HostMatrix b = HostMatrix.of(beta);
    int d = x.cols();
    for (int t = 0; t < n; t++) {
      double mean = 0;
      for (int c = 0; c < d; c++) {
        mean += in[t * d + c];
      }
      mean /= d;
      double var = 0;
      for (int c = 0; c < d; c++) {
        double dev = in[t * d + c] - mean;
        var += dev * dev;
      }
      var /= d;
      double inv = 1.0 / Math.sqrt(var + eps);
      for (int c = 0; c < d; c++) {
        o[t * d + c] = (float) ((in[t * d + c] - mean) * inv * g.get(0, c) + b.get(0, c));
      }
    }
  }

  /** INT8 weights are quantized exactly as the CPU backend does, then read dequantized. */
  @Override
  public Matrix uploadLinear(TensorView tensor, Quantization quantization) {
    return switch (quantization) {
      case NONE -> uploadLinear(tensor);
      case INT8 -> {
        try {
          yield Int8Matrix.quantize(HostMatrix.of(tensor));
        } catch (IllegalArgumentException e) {
          throw new IllegalArgumentException(
              "cannot quantize " + tensor.name() + " to int8: " + e.getMessage(), e);
        }
      }
    };
  }

  @Override
  public void linear(Buffer x, int n, Matrix w, Matrix bias, Buffer out) {
    float[] in = HostBuffer.of(x).data();
    float[] o = HostBuffer.of(out).data();
    Int8Matrix qm = w instanceof Int8Matrix q ? q : null;
    HostMatrix wm = qm == null ? HostMatrix.of(w) : null;
    HostMatrix bm = bias == null ? null : HostMatrix.of(bias);
    int din = w.cols();
    int dout = w.rows();
    for (int t = 0; t < n; t++) {
      for (int r = 0; r < dout; r++) {
        float acc = 0;
        for (int c = 0; c < din; c++) {
          acc += in[t * din + c] * (qm != null ? qm.get(r, c) : wm.get(r, c));
        }
        o[t * dout + r] = acc + (bm == null ? 0f : bm.get(0, r));
      }
    }
  }

  @Override
  public void activation(Buffer x, int n, Activation kind) {
    float[] a = HostBuffer.of(x).data();
    int len = n * x.cols();
    for (int i = 0; i < len; i++) {
      a[i] =
          switch (kind) {
            case GELU_TANH -> Gelu.tanh(a[i]);
            case GELU_ERF -> Gelu.erf(a[i]);
            case RELU -> Math.max(0f, a[i]);
          };
    }
  }

  @Override
  public void addInPlace(Buffer x, Buffer y, int n) {
    float[] a = HostBuffer.of(x).data();
    float[] b = HostBuffer.of(y).data();
    int len = n * x.cols();
    for (int i = 0; i < len; i++) {
      a[i] += b[i];
    }
  }

  @Override
  public void attention(
      Buffer qkv, BatchLayout batch, AttentionShape shape, KvCache cache, int layer, Buffer out) {
    float[] in = HostBuffer.of(qkv).data();
    float[] o = HostBuffer.of(out).data();
    HostKvCache kv = HostKvCache.of(cache);
    int hd = shape.headDim();
    int qkvDim = shape.qkvDim();
    int kvDim = shape.kvDim();
    int outDim = shape.outDim();
    int n = batch.numTokens();
    for (int t = 0; t < n; t++) {
      int slot = batch.slotMapping()[t];
      for (int kh = 0; kh < shape.kvHeads(); kh++) {
        kv.storeKey(layer, slot * kvDim + kh * hd, in, t * qkvDim + shape.kOffset(kh), hd);
        kv.storeValue(layer, slot * kvDim + kh * hd, in, t * qkvDim + shape.vOffset(kh), hd);
      }
    }
    for (int t = 0; t < n; t++) {
      int seq = batch.tokenSeq()[t];
      int len = batch.positions()[t] + 1;
      for (int h = 0; h < shape.nHead(); h++) {
        int kh = shape.kvHeadOf(h);
        int q = t * qkvDim + shape.qOffset(h);
        float[] scores = new float[len];
        float max = Float.NEGATIVE_INFINITY;
        for (int j = 0; j < len; j++) {
          int k = batch.slotOf(seq, j) * kvDim + kh * hd;
          float dot = 0;
          for (int c = 0; c < hd; c++) {
            dot += in[q + c] * kv.key(layer, k + c);
          }
          scores[j] = dot * shape.scale();
          max = Math.max(max, scores[j]);
        }
        float sum = 0;
        for (int j = 0; j < len; j++) {
          scores[j] = (float) Math.exp(scores[j] - max);
          sum += scores[j];
        }
        for (int c = 0; c < hd; c++) {
          float acc = 0;
          for (int j = 0; j < len; j++) {
            acc += scores[j] * kv.value(layer, batch.slotOf(seq, j) * kvDim + kh * hd + c);
          }
          o[t * outDim + h * hd + c] = acc / sum;
        }
      }
    }
  }

  @Override
  public void close() {}
}
