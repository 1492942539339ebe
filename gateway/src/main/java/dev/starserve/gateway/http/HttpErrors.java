package dev.starserve.gateway.http;

import dev.starserve.gateway.generate.GenerationException;
import dev.starserve.gateway.metrics.GatewayMetrics.Outcome;

/** The HTTP status and metrics outcome of each failure kind, shared by the HTTP APIs. */
public final class HttpErrors {
  private HttpErrors() {}

  public static int status(GenerationException.Kind kind) {
    return switch (kind) {
      case INVALID_ARGUMENT -> 400;
      case MODEL_NOT_FOUND -> 404;
      case OVERLOADED -> 429;
      case UNAVAILABLE -> 503;
      case GENERATION_FAILED -> 500;
      case DEADLINE_EXCEEDED -> 504;
    };
  }

  public static Outcome outcome(GenerationException.Kind kind) {
    return switch (kind) {
      case INVALID_ARGUMENT -> Outcome.INVALID;
      case MODEL_NOT_FOUND -> Outcome.NOT_FOUND;
      case OVERLOADED -> Outcome.OVERLOADED;
      case UNAVAILABLE -> Outcome.UNAVAILABLE;
      case GENERATION_FAILED -> Outcome.ERROR;
      case DEADLINE_EXCEEDED -> Outcome.TIMEOUT;
    };
  }
}
