package dev.starserve.worker.api;

import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;

/**
 * Lets a call through only when its {@code x-starserve-secret} metadata equals the cluster's shared
 * secret (compared in constant time); otherwise UNAUTHENTICATED.
 */
final class SecretInterceptor implements ServerInterceptor {
  static final Metadata.Key<String> HEADER =
      Metadata.Key.of("x-starserve-secret", Metadata.ASCII_STRING_MARSHALLER);

  private final byte[] secret;

  SecretInterceptor(String secret) {
    this.secret = secret.getBytes(StandardCharsets.UTF_8);
  }

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(
      ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
    String given = headers.get(HEADER);
    if (given == null || !MessageDigest.isEqual(secret, given.getBytes(StandardCharsets.UTF_8))) {
      Status status =
          Status.UNAUTHENTICATED.withDescription(
              given == null
                  ? "missing x-starserve-secret metadata (the cluster secret)"
                  : "wrong x-starserve-secret (the cluster secret)");
      // NOTE: the Vert.x bridge still sets the call up after this returns, and a call closed
      // inside interceptCall makes that fail (an ERROR log per refused call); close it on the next
      // turn of the call's context instead.
      Context context = Vertx.currentContext();
      if (context != null) {
        context.runOnContext(v -> call.close(status, new Metadata()));
      } else {
        call.close(status, new Metadata());
      }
      return new ServerCall.Listener<>() {};
    }
    return next.startCall(call, headers);
  }
}
