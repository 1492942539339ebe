package dev.starserve.cli;

import com.hazelcast.core.Hazelcast;
import com.hazelcast.core.HazelcastInstance;
import dev.starserve.gateway.cluster.ClusterSettings;
import dev.starserve.gateway.cluster.HazelcastConfigs;
import java.net.InetSocketAddress;
import java.util.Locale;
import picocli.CommandLine.Option;

/** The flags of every process that joins the Hazelcast cluster (worker, gateway, serve). */
final class ClusterOptions {
  @Option(
      names = "--cluster-name",
      defaultValue = ClusterSettings.DEFAULT_CLUSTER_NAME,
      description = "keeps separate clusters apart (default: ${DEFAULT-VALUE})")
  String clusterName;

  @Option(
      names = "--cluster-port",
      defaultValue = "0",
      description =
          "this process's Hazelcast port; 0 takes the first free one from 5701 (default:"
              + " ${DEFAULT-VALUE})")
  int clusterPort;

  @Option(
      names = "--cluster-members",
      defaultValue = "",
      description =
          "Hazelcast addresses of the other members, host:port,... (empty: start alone; the"
              + " others list this one)")
  String clusterMembers;

  @Option(
      names = "--cluster-host",
      defaultValue = "",
      description =
          "interface Hazelcast binds and announces; in a pod give the pod IP. 0.0.0.0 binds every"
              + " interface and announces the first non-loopback IPv4 address (default: "
              + ClusterSettings.DEFAULT_BIND_HOST
              + " with tcp-ip, 0.0.0.0 with kubernetes)")
  String clusterHost;

  @Option(
      names = "--cluster-discovery",
      defaultValue = "tcp-ip",
      description =
          "tcp-ip (the --cluster-members list) or kubernetes (DNS lookup of"
              + " --kubernetes-service; every member listens on --cluster-port, default "
              + ClusterSettings.KUBERNETES_DEFAULT_PORT
              + ") (default: ${DEFAULT-VALUE})")
  String discovery;

  @Option(
      names = "--kubernetes-service",
      defaultValue = "",
      description =
          "DNS name of the headless service selecting the cluster's pods (kubernetes discovery),"
              + " e.g. starserve-hz.NAMESPACE.svc.cluster.local")
  String kubernetesService;

  // NOTE: Hazelcast's DNS lookup mode ignores a namespace (only its Kubernetes API mode reads one),
  // so the flag is refused rather than silently dropped; the namespace goes into the DNS name.
  @Option(names = "--kubernetes-namespace", defaultValue = "", hidden = true)
  String kubernetesNamespace;

  /**
   * The validated settings these flags describe.
   *
   * @throws IllegalArgumentException naming the flag, for a value or combination that cannot work
   */
  ClusterSettings settings() {
    boolean kubernetes =
        switch (discovery.strip().toLowerCase(Locale.ROOT)) {
          case "tcp-ip", "tcp_ip" -> false;
          case "kubernetes" -> true;
          default ->
              throw new IllegalArgumentException(
                  "--cluster-discovery must be tcp-ip or kubernetes, got '" + discovery + "'");
        };
    if (!kubernetesNamespace.isBlank()) {
      throw new IllegalArgumentException(
          "--kubernetes-namespace is not supported: kubernetes discovery resolves"
              + " --kubernetes-service as a DNS name, so put the namespace there"
              + " (NAME.NAMESPACE.svc.cluster.local)");
    }
    if (kubernetes) {
      if (kubernetesService.isBlank()) {
        throw new IllegalArgumentException(
            "--cluster-discovery kubernetes needs --kubernetes-service, the DNS name of the headless"
                + " service selecting the cluster's pods (e.g."
                + " starserve-hz.NAMESPACE.svc.cluster.local)");
      }
      if (!clusterMembers.isBlank()) {
        throw new IllegalArgumentException(
            "--cluster-members is for --cluster-discovery tcp-ip; kubernetes discovery finds the"
                + " members by a DNS lookup of --kubernetes-service");
      }
    } else if (!kubernetesService.isBlank()) {
      throw new IllegalArgumentException(
          "--kubernetes-service needs --cluster-discovery kubernetes (got --cluster-discovery "
              + discovery
              + ")");
    }
    String host =
        !clusterHost.isBlank()
            ? clusterHost.strip()
            : kubernetes ? ClusterSettings.ANY_HOST : ClusterSettings.DEFAULT_BIND_HOST;
    try {
      ClusterSettings s =
          ClusterSettings.tcpIp(clusterName, clusterPort, clusterMembers).withBindHost(host);
      return kubernetes ? s.withKubernetes(kubernetesService, 0) : s;
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("cluster settings: " + e.getMessage(), e);
    }
  }

  /** Joins (or starts) the cluster; blocks until this member is up. */
  HazelcastInstance join() {
    return join(settings());
  }

  /** Joins (or starts) the cluster that {@code settings} describe; blocks until up. */
  static HazelcastInstance join(ClusterSettings settings) {
    return Hazelcast.newHazelcastInstance(HazelcastConfigs.build(settings));
  }

  /** This member's own Hazelcast address, as others list it in --cluster-members. */
  static String address(HazelcastInstance hz) {
    InetSocketAddress a = hz.getCluster().getLocalMember().getSocketAddress();
    return a.getHostString() + ":" + a.getPort();
  }
}
