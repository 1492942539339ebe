package dev.starserve.gateway.cluster;

import com.hazelcast.config.Config;
import com.hazelcast.config.JoinConfig;
import com.hazelcast.config.NetworkConfig;

/**
 * Builds the one Hazelcast configuration every StarServe process uses: no multicast, no
 * auto-detection, no phone-home, SLF4J logging, and either a fixed TCP-IP member list or Kubernetes
 * DNS discovery. The registry map needs no configuration (values are plain {@code byte[]}, TTLs are
 * per put).
 */
public final class HazelcastConfigs {
  private HazelcastConfigs() {}

  public static Config build(ClusterSettings settings) {
    Config config = new Config();
    config.setClusterName(settings.clusterName());
    config.setInstanceName(settings.clusterName() + "-" + java.util.UUID.randomUUID());
    config.setProperty("hazelcast.logging.type", "slf4j");
    config.setProperty("hazelcast.phone.home.enabled", "false");
    // A dead worker must leave quickly: shorter than the default 60 s heartbeat timeout.
    config.setProperty("hazelcast.heartbeat.interval.seconds", "1");
    config.setProperty("hazelcast.max.no.heartbeat.seconds", "10");
    config.setProperty("hazelcast.shutdownhook.enabled", "false");
    config.setProperty("hazelcast.socket.bind.any", "false");

    NetworkConfig network = config.getNetworkConfig();
    if (settings.port() == 0) {
      network.setPort(settings.portRangeStart());
      network.setPortCount(settings.portCount());
      network.setPortAutoIncrement(true);
    } else {
      network.setPort(settings.port());
      network.setPortAutoIncrement(false);
    }
    network.getInterfaces().setEnabled(true).addInterface(settings.bindHost());

    JoinConfig join = network.getJoin();
    join.getMulticastConfig().setEnabled(false);
    join.getAutoDetectionConfig().setEnabled(false);
    join.getAwsConfig().setEnabled(false);
    switch (settings.discovery()) {
      case TCP_IP -> {
        join.getTcpIpConfig().setEnabled(true).setConnectionTimeoutSeconds(2);
        for (String member : settings.members()) {
          join.getTcpIpConfig().addMember(member);
        }
        if (settings.members().isEmpty()) {
          // Alone, or the first of several: the others list this member.
          join.getTcpIpConfig().addMember(settings.bindHost());
        }
      }
      case KUBERNETES -> {
        join.getTcpIpConfig().setEnabled(false);
        var k8s = join.getKubernetesConfig().setEnabled(true);
        k8s.setProperty("service-dns", settings.kubernetesService());
        if (!settings.kubernetesNamespace().isBlank()) {
          k8s.setProperty("namespace", settings.kubernetesNamespace());
        }
      }
    }
    return config;
  }
}
