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
      defaultValue = ClusterSettings.DEFAULT_BIND_HOST,
      description = "interface Hazelcast binds and announces (default: ${DEFAULT-VALUE})")
  String clusterHost;

  @Option(
      names = "--cluster-discovery",
      defaultValue = "tcp-ip",
      description =
          "tcp-ip (the --cluster-members list) or kubernetes (DNS lookup of"
              + " --kubernetes-service) (default: ${DEFAULT-VALUE})")
  String discovery;

  @Option(
      names = "--kubernetes-service",
      defaultValue = "",
      description = "headless service DNS name for kubernetes discovery")
  String kubernetesService;

  @Option(
      names = "--kubernetes-namespace",
      defaultValue = "",
      description = "namespace for kubernetes discovery (default: the pod's own)")
  String kubernetesNamespace;

  /** The validated settings these flags describe. */
  ClusterSettings settings() {
    ClusterSettings s;
    try {
      s = ClusterSettings.tcpIp(clusterName, clusterPort, clusterMembers).withBindHost(clusterHost);
      switch (discovery.strip().toLowerCase(Locale.ROOT)) {
        case "tcp-ip", "tcp_ip" -> {}
        case "kubernetes" -> s = s.withKubernetes(kubernetesService, kubernetesNamespace);
        default ->
            throw new IllegalArgumentException(
                "must be tcp-ip or kubernetes, got '" + discovery + "'");
      }
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("cluster settings: " + e.getMessage(), e);
    }
    return s;
  }

  /** Joins (or starts) the cluster; blocks until this member is up. */
  HazelcastInstance join() {
    ClusterSettings s = settings();
    HazelcastInstance hz = Hazelcast.newHazelcastInstance(HazelcastConfigs.build(s));
    return hz;
  }

  /** This member's own Hazelcast address, as others list it in --cluster-members. */
  static String address(HazelcastInstance hz) {
    InetSocketAddress a = hz.getCluster().getLocalMember().getSocketAddress();
    return a.getHostString() + ":" + a.getPort();
  }
}
