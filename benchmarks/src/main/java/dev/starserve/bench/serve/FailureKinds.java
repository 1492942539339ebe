package dev.starserve.bench.serve;

import java.net.ConnectException;
import java.net.NoRouteToHostException;
import java.net.UnknownHostException;

/**
 * The kinds failures are counted by in the report: {@code connect} (no connection: refused,
 * unreachable, unknown host, connect timeout), {@code http_<status>} (an HTTP answer other than
 * 200), {@code grpc_<STATUS>} (a gRPC status other than OK), {@code stream} (the connection or the
 * stream broke after it was accepted, or it ended without its final message), {@code timeout} (no
 * end within {@code --request-timeout}).
 */
public final class FailureKinds {
  public static final String CONNECT = "connect";
  public static final String STREAM = "stream";
  public static final String TIMEOUT = "timeout";

  private FailureKinds() {}

  public static String http(int status) {
    return "http_" + status;
  }

  public static String grpc(String status) {
    return "grpc_" + status;
  }

  /**
   * {@link #CONNECT} when {@code t} (or a cause) says no connection was made, else {@link #STREAM}.
   * Netty's connect timeout is a {@link ConnectException} too.
   */
  public static String of(Throwable t) {
    for (Throwable c = t; c != null; c = c.getCause()) {
      if (c instanceof ConnectException
          || c instanceof UnknownHostException
          || c instanceof NoRouteToHostException) {
        return CONNECT;
      }
    }
    return STREAM;
  }

  /** A one-line description of {@code t} for the report. */
  public static String describe(Throwable t) {
    String m = t.getMessage();
    return t.getClass().getSimpleName() + (m == null ? "" : ": " + m);
  }
}
