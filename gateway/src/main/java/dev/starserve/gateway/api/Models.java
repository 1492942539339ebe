package dev.starserve.gateway.api;

import dev.starserve.gateway.generate.GenerationException;
import dev.starserve.gateway.generate.Generator;
import dev.starserve.proto.worker.v1.WorkerInfo;
import java.util.List;

/** Resolves the model a request names against the models the cluster serves now. */
public final class Models {
  private Models() {}

  /**
   * The served model named {@code requested}. When {@code lenient} (TGI and TGIS clients, which
   * often send no or a placeholder model id) and exactly one model is served, that one is used.
   */
  public static WorkerInfo resolve(Generator generator, String requested, boolean lenient) {
    List<WorkerInfo> models = generator.models();
    if (models.isEmpty()) {
      throw new GenerationException(
          GenerationException.Kind.UNAVAILABLE, "no worker is ready to serve requests");
    }
    if (requested != null && !requested.isEmpty()) {
      for (WorkerInfo info : models) {
        if (info.getModelId().equals(requested)) {
          return info;
        }
      }
    }
    if (lenient && (models.size() == 1 || requested == null || requested.isEmpty())) {
      return models.getFirst();
    }
    throw new GenerationException(
        GenerationException.Kind.MODEL_NOT_FOUND,
        requested == null || requested.isEmpty()
            ? "model is required"
            : "The model '" + requested + "' does not exist");
  }

  /** A logprob JSON can carry: -inf (an impossible token) becomes the most negative float. */
  public static float finite(float logprob) {
    if (Float.isNaN(logprob)) {
      return -Float.MAX_VALUE;
    }
    return Math.max(logprob, -Float.MAX_VALUE);
  }
}
