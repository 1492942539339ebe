package dev.starserve.gateway.api.fmaas;

import dev.starserve.gateway.admission.AdmissionControl;
import dev.starserve.gateway.metrics.GatewayMetrics;
import dev.starserve.gateway.metrics.GatewayMetrics.Outcome;
import dev.starserve.proto.fmaas.GenerationServiceGrpc;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import java.util.Set;
import java.util.function.BooleanSupplier;

/**
 * While the gateway drains, refuses new generation calls (Generate, GenerateStream) with
 * UNAVAILABLE "gateway is draining" before they are parsed, so a client retries on another gateway;
 * Tokenize and ModelInfo still answer.
 */
public final class DrainingInterceptor implements ServerInterceptor {
  private static final Set<String> GENERATION_METHODS =
      Set.of(
          GenerationServiceGrpc.getGenerateMethod().getFullMethodName(),
          GenerationServiceGrpc.getGenerateStreamMethod().getFullMethodName());

  private final BooleanSupplier draining;
  private final GatewayMetrics metrics;

  public DrainingInterceptor(BooleanSupplier draining, GatewayMetrics metrics) {
    this.draining = draining;
    this.metrics = metrics;
  }

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(
      ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
    if (!draining.getAsBoolean()
        || !GENERATION_METHODS.contains(call.getMethodDescriptor().getFullMethodName())) {
      return next.startCall(call, headers);
    }
    metrics.startRequest("fmaas", "").end(Outcome.UNAVAILABLE);
    Runnable reject =
        () ->
            call.close(
                Status.UNAVAILABLE.withDescription(AdmissionControl.DRAINING_MESSAGE),
                new Metadata());
    // NOTE: as in ApiKeyInterceptor, the Vert.x bridge fails on a call closed inside
    // interceptCall, so the close waits for the next turn of the call's context.
    Context context = Vertx.currentContext();
    if (context != null) {
      context.runOnContext(v -> reject.run());
    } else {
      reject.run();
    }
    return new ServerCall.Listener<>() {};
  }
}
