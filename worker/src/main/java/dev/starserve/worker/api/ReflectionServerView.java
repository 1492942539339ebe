package dev.starserve.worker.api;

import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.InternalServer;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerServiceDefinition;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * What grpc-java's reflection service needs from "its server": the list of services. Under
 * grpc-java's own server it finds the server in the call's context; under Vert.x there is none, so
 * {@link #interceptor()} puts this view there. It is never started or stopped.
 */
final class ReflectionServerView extends Server {
  private final List<ServerServiceDefinition> services;

  ReflectionServerView(List<ServerServiceDefinition> services) {
    this.services = List.copyOf(services);
  }

  /** Puts this view into each call's context, where the reflection service looks for it. */
  ServerInterceptor interceptor() {
    Server self = this;
    return new ServerInterceptor() {
      @Override
      public <Q, R> ServerCall.Listener<Q> interceptCall(
          ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
        Context ctx = Context.current().withValue(InternalServer.SERVER_CONTEXT_KEY, self);
        return Contexts.interceptCall(ctx, call, headers, next);
      }
    };
  }

  @Override
  public List<ServerServiceDefinition> getServices() {
    return services;
  }

  @Override
  public List<ServerServiceDefinition> getImmutableServices() {
    return services;
  }

  @Override
  public List<ServerServiceDefinition> getMutableServices() {
    return List.of();
  }

  @Override
  public Server start() {
    throw new UnsupportedOperationException("a view of the Vert.x-served services");
  }

  @Override
  public Server shutdown() {
    return this;
  }

  @Override
  public Server shutdownNow() {
    return this;
  }

  @Override
  public boolean isShutdown() {
    return false;
  }

  @Override
  public boolean isTerminated() {
    return false;
  }

  @Override
  public boolean awaitTermination(long timeout, TimeUnit unit) {
    return false;
  }

  @Override
  public void awaitTermination() {
    throw new UnsupportedOperationException("a view of the Vert.x-served services");
  }
}
