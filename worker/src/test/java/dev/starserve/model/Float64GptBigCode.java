package dev.starserve.model;

import dev.starserve.checkpoint.TensorView;

/**
 * An independent float64 implementation of the whole gpt_bigcode forward pass, written as directly
 * from the HuggingFace definition as possible: whole sequence at once, no cache, no batching, every
 * weight widened to double. The oracle for whole-model logits.
 */
public final class Float64GptBigCode {
  private final GptBigCodeConfig c;
  private final GptBigCodeWeights w;

  public Float64GptBigCode(GptBigCodeConfig config, GptBigCodeWeights weights) {
    this.c = config;
    this.w = weights;
  }

  /** Natural-log softmax of the logits at every position: {@code [T][vocab]}. */
  public double[][] logProbs(int[] ids) {
    double[][] logits = logits(ids);
    for (double[] row : logits) {
      double max = Double.NEGATIVE_INFINITY;
      for (double v : row) {
        max = Math.max(max, v);
      }
      double sum = 0;
      for (double v : row) {
        sum += Math.exp(v - max);
      }
      double lse = max + Math.log(sum);
      for (int i = 0; i < row.length; i++) {
        row[i] -= lse;
      }
    }
    return logits;
  }

  double[][] logits(int[] ids) {
    int n = ids.length;
    int e = c.nEmbd();
    double[][] h = new double[n][e];
    for (int t = 0; t < n; t++) {
      for (int i = 0; i < e; i++) {
        h[t][i] = at(w.wte(), (long) ids[t] * e + i) + at(w.wpe(), (long) t * e + i);
      }
    }
    for (LayerWeights l : w.layers()) {
      double[][] a = layerNorm(h, l.ln1Weight(), l.ln1Bias());
      double[][] qkv = linear(a, l.cAttnWeight(), l.cAttnBias());
      double[][] att = attention(qkv);
      double[][] proj = linear(att, l.attnCProjWeight(), l.attnCProjBias());
      add(h, proj);
      double[][] m = linear(layerNorm(h, l.ln2Weight(), l.ln2Bias()), l.cFcWeight(), l.cFcBias());
      for (double[] row : m) {
        for (int i = 0; i < row.length; i++) {
          row[i] = act(row[i]);
        }
      }
      add(h, linear(m, l.mlpCProjWeight(), l.mlpCProjBias()));
    }
    double[][] f = layerNorm(h, w.lnFWeight(), w.lnFBias());
    return linear(f, w.lmHead(), null);
  }

  private double[][] attention(double[][] qkv) {
    int n = qkv.length;
    int hd = c.headDim();
    int heads = c.nHead();
    double scale = c.scaleAttnWeights() ? 1.0 / Math.sqrt(hd) : 1.0;
    double[][] out = new double[n][heads * hd];
    for (int head = 0; head < heads; head++) {
      // HF layouts: MQA [q(E) | k | v]; MHA per head [q k v].
      int qOff = c.multiQuery() ? head * hd : head * 3 * hd;
      int kOff = c.multiQuery() ? heads * hd : head * 3 * hd + hd;
      int vOff = kOff + hd;
      for (int t = 0; t < n; t++) {
        double[] s = new double[t + 1];
        double max = Double.NEGATIVE_INFINITY;
        for (int j = 0; j <= t; j++) {
          double dot = 0;
          for (int i = 0; i < hd; i++) {
            dot += qkv[t][qOff + i] * qkv[j][kOff + i];
          }
          s[j] = dot * scale;
          max = Math.max(max, s[j]);
        }
        double sum = 0;
        for (int j = 0; j <= t; j++) {
          s[j] = Math.exp(s[j] - max);
          sum += s[j];
        }
        for (int i = 0; i < hd; i++) {
          double acc = 0;
          for (int j = 0; j <= t; j++) {
            acc += s[j] * qkv[j][vOff + i];
          }
          out[t][head * hd + i] = acc / sum;
        }
      }
    }
    return out;
  }

  private double act(double x) {
    return switch (c.activation()) {
      case GELU_TANH ->
          0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
      case GELU_ERF -> 0.5 * x * (1 + erf(x / Math.sqrt(2)));
      case RELU -> Math.max(0, x);
    };
  }

  /** erf by its Maclaurin series (|x| < 3) or continued fraction for erfc, to ~1e-14. */
  static double erf(double x) {
    double ax = Math.abs(x);
    double r;
    if (ax < 3) {
      double term = ax;
      double sum = ax;
      for (int k = 1; k < 200 && Math.abs(term) > 1e-17; k++) {
        term *= -ax * ax / k;
        sum += term / (2 * k + 1);
      }
      r = 2 / Math.sqrt(Math.PI) * sum;
    } else {
      double f = 0;
      for (int k = 60; k >= 1; k--) {
        f = k / 2.0 / (ax + f);
      }
      r = 1 - Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f);
    }
    return x < 0 ? -r : r;
  }

  private double[][] layerNorm(double[][] x, TensorView g, TensorView b) {
    int d = x[0].length;
    double[][] out = new double[x.length][d];
    for (int t = 0; t < x.length; t++) {
      double mean = 0;
      for (double v : x[t]) {
        mean += v;
      }
      mean /= d;
      double var = 0;
      for (double v : x[t]) {
        var += (v - mean) * (v - mean);
      }
      var /= d;
      for (int i = 0; i < d; i++) {
        out[t][i] = (x[t][i] - mean) / Math.sqrt(var + c.layerNormEpsilon()) * at(g, i) + at(b, i);
      }
    }
    return out;
  }

  /** x [n × in] · Wᵀ, W stored [out × in] as in HF nn.Linear. */
  private static double[][] linear(double[][] x, TensorView weight, TensorView bias) {
    int out = (int) weight.dim(0);
    int in = (int) weight.dim(1);
    double[][] y = new double[x.length][out];
    for (int r = 0; r < out; r++) {
      double[] wr = new double[in];
      for (int i = 0; i < in; i++) {
        wr[i] = at(weight, (long) r * in + i);
      }
      double b = bias == null ? 0 : at(bias, r);
      for (int t = 0; t < x.length; t++) {
        double acc = b;
        for (int i = 0; i < in; i++) {
          acc += x[t][i] * wr[i];
        }
        y[t][r] = acc;
      }
    }
    return y;
  }

  private static void add(double[][] x, double[][] y) {
    for (int t = 0; t < x.length; t++) {
      for (int i = 0; i < x[t].length; i++) {
        x[t][i] += y[t][i];
      }
    }
  }

  private static double at(TensorView t, long i) {
    return t.getFloat(i);
  }
}
