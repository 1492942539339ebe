package dev.starserve.gateway.cluster;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * How a process joins the Hazelcast cluster that holds the worker registry.
 *
 * @param clusterName keeps separate clusters apart on one network
 * @param port this member's Hazelcast port; 0 picks the first free port of {@code portRangeStart}
 *     .. {@code portRangeStart + portCount - 1}
 * @param portRangeStart where the search for a free port starts when {@code port} is 0
 * @param portCount how many ports the search tries
 * @param members the other members, {@code host} or {@code host:port}; with TCP_IP an empty list
 *     means this member starts alone (the others join it)
 * @param bindHost the interface this member binds and announces; {@value #ANY_HOST} binds every
 *     interface and announces the address Hazelcast picks (the first non-loopback IPv4 address: in
 *     a Kubernetes pod, the pod's IP)
 * @param discovery TCP_IP (fixed member list) or KUBERNETES (DNS lookup of a headless service)
 * @param kubernetesService the headless service's DNS name (KUBERNETES only), resolved as given
 *     (Hazelcast's {@code service-dns}); a name without dots resolves through the pod's DNS search
 *     path, so only in the pod's own namespace
 * @param kubernetesServicePort the Hazelcast port of the addresses the DNS lookup returns
 *     (Hazelcast's {@code service-port}; KUBERNETES only); 0 means this member's own {@code port},
 *     or {@value #KUBERNETES_DEFAULT_PORT} when that is 0
 */
public record ClusterSettings(
    String clusterName,
    int port,
    int portRangeStart,
    int portCount,
    List<String> members,
    String bindHost,
    Discovery discovery,
    String kubernetesService,
    int kubernetesServicePort) {

  public static final String DEFAULT_CLUSTER_NAME = "starserve";
  public static final int DEFAULT_PORT_RANGE_START = 5701;
  public static final int DEFAULT_PORT_COUNT = 100;
  public static final String DEFAULT_BIND_HOST = "127.0.0.1";

  /** {@code bindHost} that binds every interface and announces the address Hazelcast picks. */
  public static final String ANY_HOST = "0.0.0.0";

  /**
   * The Hazelcast port of every member with KUBERNETES discovery when none is given: a DNS lookup
   * returns addresses only, so all members must listen on the same, known port.
   */
  public static final int KUBERNETES_DEFAULT_PORT = 5701;

  /** How members find each other. */
  public enum Discovery {
    TCP_IP,
    KUBERNETES
  }

  public ClusterSettings {
    if (clusterName == null || clusterName.isBlank()) {
      throw new IllegalArgumentException("clusterName must not be empty");
    }
    if (port < 0 || port > 65535) {
      throw new IllegalArgumentException("port must be in [0, 65535], got " + port);
    }
    if (portRangeStart < 1 || portRangeStart > 65535) {
      throw new IllegalArgumentException(
          "portRangeStart must be in [1, 65535], got " + portRangeStart);
    }
    if (portCount < 1 || portRangeStart + portCount - 1 > 65535) {
      throw new IllegalArgumentException(
          "portCount must be in [1, " + (65536 - portRangeStart) + "], got " + portCount);
    }
    members = List.copyOf(members == null ? List.of() : members);
    for (String m : members) {
      validateMember(m);
    }
    if (bindHost == null || bindHost.isBlank()) {
      throw new IllegalArgumentException("bindHost must not be empty");
    }
    if (discovery == null) {
      throw new IllegalArgumentException("discovery must be TCP_IP or KUBERNETES, got null");
    }
    kubernetesService = kubernetesService == null ? "" : kubernetesService.strip();
    if (kubernetesServicePort < 0 || kubernetesServicePort > 65535) {
      throw new IllegalArgumentException(
          "kubernetesServicePort must be in [0, 65535], got " + kubernetesServicePort);
    }
    if (discovery == Discovery.KUBERNETES) {
      if (kubernetesService.isEmpty()) {
        throw new IllegalArgumentException(
            "kubernetesService (the headless service's DNS name) must be set for KUBERNETES"
                + " discovery");
      }
      if (!HOST_NAME.matcher(kubernetesService).matches()) {
        throw new IllegalArgumentException(
            "kubernetesService must be a DNS name such as"
                + " starserve-hz.default.svc.cluster.local (no scheme, no port), got '"
                + kubernetesService
                + "'");
      }
      if (!members.isEmpty()) {
        throw new IllegalArgumentException(
            "members are for TCP_IP discovery; KUBERNETES discovery finds them by a DNS lookup of "
                + kubernetesService
                + ", got "
                + members);
      }
    } else if (!kubernetesService.isEmpty() || kubernetesServicePort != 0) {
      throw new IllegalArgumentException(
          "kubernetesService and kubernetesServicePort are for KUBERNETES discovery only");
    }
  }

  private static final Pattern HOST_NAME =
      Pattern.compile("[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?\\.?");

  /** Whether this member binds every interface ({@link #ANY_HOST}). */
  public boolean bindsAnyHost() {
    return ANY_HOST.equals(bindHost);
  }

  /**
   * The Hazelcast port the DNS lookup's addresses are dialled on (KUBERNETES): {@code
   * kubernetesServicePort}, else this member's fixed {@code port}, else {@value
   * #KUBERNETES_DEFAULT_PORT}.
   */
  public int effectiveServicePort() {
    if (kubernetesServicePort != 0) {
      return kubernetesServicePort;
    }
    return port != 0 ? port : KUBERNETES_DEFAULT_PORT;
  }

  /** TCP-IP on loopback, a free port from 5701, the given members ("host:port,..." or empty). */
  public static ClusterSettings tcpIp(String clusterName, int port, String members) {
    return new ClusterSettings(
        clusterName,
        port,
        DEFAULT_PORT_RANGE_START,
        DEFAULT_PORT_COUNT,
        parseMembers(members),
        DEFAULT_BIND_HOST,
        Discovery.TCP_IP,
        "",
        0);
  }

  /** Splits {@code "host:port,host"} into its entries, dropping blanks. */
  public static List<String> parseMembers(String members) {
    List<String> out = new ArrayList<>();
    if (members == null) {
      return out;
    }
    for (String part : members.split(",")) {
      String m = part.strip();
      if (!m.isEmpty()) {
        out.add(m);
      }
    }
    return out;
  }

  public ClusterSettings withPortRange(int start, int count) {
    return new ClusterSettings(
        clusterName,
        port,
        start,
        count,
        members,
        bindHost,
        discovery,
        kubernetesService,
        kubernetesServicePort);
  }

  public ClusterSettings withBindHost(String host) {
    return new ClusterSettings(
        clusterName,
        port,
        portRangeStart,
        portCount,
        members,
        host,
        discovery,
        kubernetesService,
        kubernetesServicePort);
  }

  /**
   * KUBERNETES discovery through a DNS lookup of {@code service}; the addresses it returns are
   * dialled on {@code servicePort} (0: see {@link #effectiveServicePort()}).
   */
  public ClusterSettings withKubernetes(String service, int servicePort) {
    return new ClusterSettings(
        clusterName,
        port,
        portRangeStart,
        portCount,
        members,
        bindHost,
        Discovery.KUBERNETES,
        service,
        servicePort);
  }

  // NOTE: Hazelcast throws on "host:5701-5710" member strings (STACK.md trap 6), so ranges are
  // refused here with a message instead of later inside Hazelcast.
  private static void validateMember(String m) {
    if (m == null || m.isBlank()) {
      throw new IllegalArgumentException("members must not contain empty entries");
    }
    int colon = m.lastIndexOf(':');
    if (colon < 0 || m.startsWith("[") && m.endsWith("]")) {
      return;
    }
    String portText = m.substring(colon + 1);
    int p;
    try {
      p = Integer.parseInt(portText);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(
          "members entry must be host or host:port with port in [1, 65535], got '" + m + "'");
    }
    if (p < 1 || p > 65535) {
      throw new IllegalArgumentException(
          "members entry port must be in [1, 65535], got '" + m + "'");
    }
  }
}
