package dev.starserve.gateway.route;

import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpcio.client.GrpcIoClient;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One Vert.x gRPC client (its own HTTP/2 connection pool) per worker address, created on first use
 * and closed when the address leaves the registry.
 */
final class WorkerClients implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(WorkerClients.class);

  /** A worker's client and the socket address it calls. */
  record Client(GrpcIoClient grpc, SocketAddress address) {}

  private final Vertx vertx;
  private final int connectTimeoutMillis;
  private final Map<String, Client> clients = new ConcurrentHashMap<>();

  WorkerClients(Vertx vertx, int connectTimeoutMillis) {
    this.vertx = vertx;
    this.connectTimeoutMillis = connectTimeoutMillis;
  }

  Client get(String address) {
    return clients.computeIfAbsent(address, this::create);
  }

  /** Closes the clients of addresses not in {@code live}. */
  void retain(Set<String> live) {
    for (String address : clients.keySet()) {
      if (!live.contains(address)) {
        Client c = clients.remove(address);
        if (c != null) {
          LOG.debug("closing the client of {}", address);
          c.grpc().close();
        }
      }
    }
  }

  int size() {
    return clients.size();
  }

  @Override
  public void close() {
    retain(Set.of());
  }

  private Client create(String address) {
    int colon = address.lastIndexOf(':');
    if (colon <= 0 || colon == address.length() - 1) {
      throw new IllegalArgumentException("worker address must be host:port, got '" + address + "'");
    }
    String host = address.substring(0, colon);
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
    }
    int port = Integer.parseInt(address.substring(colon + 1));
    HttpClientOptions options =
        new HttpClientOptions()
            .setProtocolVersion(HttpVersion.HTTP_2)
            .setHttp2ClearTextUpgrade(false)
            .setConnectTimeout(connectTimeoutMillis);
    return new Client(
        GrpcIoClient.client(vertx, options), SocketAddress.inetSocketAddress(port, host));
  }
}
