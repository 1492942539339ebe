package dev.starserve.backend.host;

/** Scalar activation functions shared by the host backends (the vector kernels use their own). */
public final class Gelu {
  private Gelu() {}

  private static final double SQRT_2_OVER_PI = Math.sqrt(2.0 / Math.PI);

  /** GELU, tanh approximation (gelu_pytorch_tanh / gelu_new / gelu_fast). */
  public static float tanh(float x) {
    double inner = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
    return (float) (0.5 * x * (1.0 + Math.tanh(inner)));
  }

  /** GELU, exact: 0.5·x·(1 + erf(x/√2)). */
  public static float erf(float x) {
    return (float) (0.5 * x * (1.0 + erf(x / Math.sqrt(2.0))));
  }

  /**
   * erf(x) to about 1e-7 absolute (Abramowitz and Stegun 7.1.26), which is below float32 resolution
   * of the GELU output it feeds.
   */
  static double erf(double x) {
    double ax = Math.abs(x);
    double t = 1.0 / (1.0 + 0.3275911 * ax);
    double poly =
        t
            * (0.254829592
                + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    double r = 1.0 - poly * Math.exp(-ax * ax);
    return x >= 0 ? r : -r;
  }
}
