package dev.starserve.gateway.api.fmaas;

import dev.starserve.gateway.auth.ApiKeys;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.vertx.core.Context;
import io.vertx.core.Vertx;

/** Checks the {@code authorization: Bearer <key>} metadata; UNAUTHENTICATED otherwise. */
public final class ApiKeyInterceptor implements ServerInterceptor {
  private static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
  private final ApiKeys keys;

  public ApiKeyInterceptor(ApiKeys keys) {
    this.keys = keys;
  }

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(
      ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
    if (keys.allows(headers.get(AUTHORIZATION))) {
      return next.startCall(call, headers);
    }
    Runnable reject =
        () ->
            call.close(
                Status.UNAUTHENTICATED.withDescription(
                    "missing or unknown API key (send authorization: Bearer <key>)"),
                new Metadata());
    // NOTE: the Vert.x bridge still sets the call up after this returns and fails on a call closed
    // inside interceptCall, so the close waits for the next turn of the call's context.
    Context context = Vertx.currentContext();
    if (context != null) {
      context.runOnContext(v -> reject.run());
    } else {
      reject.run();
    }
    return new ServerCall.Listener<>() {};
  }
}
