package dev.starserve.bench.serve;

import java.net.URI;
import java.net.URISyntaxException;

/**
 * Where the gateway listens: plain HTTP (OpenAI, TGI) or cleartext HTTP/2 (fmaas gRPC) on {@code
 * host:port}, with an optional path prefix for the HTTP APIs.
 *
 * @param basePath "" or a path starting with "/" and not ending with one, put before {@code
 *     /v1/completions} and {@code /generate_stream}
 */
public record Target(String host, int port, String basePath) {
  public Target {
    if (host == null || host.isEmpty()) {
      throw new IllegalArgumentException("--target needs a host");
    }
    if (port < 1 || port > 65535) {
      throw new IllegalArgumentException("--target port must be in [1, 65535], got " + port);
    }
    if (!basePath.isEmpty() && (!basePath.startsWith("/") || basePath.endsWith("/"))) {
      throw new IllegalArgumentException("--target path must start with / and not end with one");
    }
  }

  /**
   * Parses {@code http://host:port[/path]} or {@code host:port} (the usual way to write a gRPC
   * target). HTTPS is refused rather than silently spoken in clear text.
   */
  public static Target parse(String text, Api api) {
    String shape =
        "--target must be a URL such as http://127.0.0.1:8000 (or host:port such as"
            + " 127.0.0.1:8033), got '"
            + text
            + "'";
    if (text == null || text.isBlank()) {
      throw new IllegalArgumentException(shape);
    }
    if (!text.contains("://") && text.contains("/")) {
      throw new IllegalArgumentException(shape + " (without a scheme it must be host:port)");
    }
    String url = text.contains("://") ? text : "http://" + text;
    URI uri;
    try {
      uri = new URI(url);
    } catch (URISyntaxException e) {
      throw new IllegalArgumentException(shape + " (" + e.getReason() + ")");
    }
    String scheme = uri.getScheme();
    if ("https".equalsIgnoreCase(scheme)) {
      throw new IllegalArgumentException(
          "--target: https is not supported (plain http and cleartext gRPC only), got '"
              + text
              + "'");
    }
    if (!"http".equalsIgnoreCase(scheme)) {
      throw new IllegalArgumentException(shape + " (the scheme must be http)");
    }
    if (uri.getHost() == null || uri.getRawQuery() != null || uri.getRawFragment() != null) {
      throw new IllegalArgumentException(shape);
    }
    int port = uri.getPort();
    if (port < 0) {
      if (api == Api.FMAAS) {
        throw new IllegalArgumentException(
            "--target needs a port for the fmaas gRPC API (e.g. 127.0.0.1:8033), got '"
                + text
                + "'");
      }
      port = 80;
    }
    String path = uri.getRawPath() == null ? "" : uri.getRawPath();
    while (path.endsWith("/")) {
      path = path.substring(0, path.length() - 1);
    }
    if (api == Api.FMAAS && !path.isEmpty()) {
      throw new IllegalArgumentException(
          "--target for the fmaas gRPC API is host:port without a path, got '" + text + "'");
    }
    String host = uri.getHost();
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
    }
    return new Target(host, port, path);
  }

  /** How the report prints it. */
  public String display(Api api) {
    String hostPort = (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
    return api == Api.FMAAS ? hostPort : "http://" + hostPort + basePath;
  }
}
