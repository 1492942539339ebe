package dev.starserve.gateway.cluster;

import com.hazelcast.config.Config;
import com.hazelcast.config.JoinConfig;
import com.hazelcast.config.NetworkConfig;

/**
 * Builds the one Hazelcast configuration every StarServe process uses: no multicast, no
 * auto-detection, no phone-home, SLF4J logging, and either a fixed TCP-IP member list or Kubernetes
 * DNS discovery (a lookup of a headless service's name, which needs no Kubernetes API access). The
 * registry map needs no configuration (values are plain {@code byte[]}, TTLs are per put).
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
    // Bind only the chosen interface, unless that is every interface (ANY_HOST): then Hazelcast
    // binds 0.0.0.0 and announces the address its picker finds (the first non-loopback IPv4
    // address; in a pod, the pod IP).
    config.setProperty("hazelcast.socket.bind.any", Boolean.toString(settings.bindsAnyHost()));

    NetworkConfig network = config.getNetworkConfig();
    if (settings.discovery() == ClusterSettings.Discovery.KUBERNETES && settings.port() == 0) {
      // A DNS lookup yields addresses only; the others dial them on the service port, so this
      // member must listen exactly there (a busy port fails the start instead of hiding it).
      network.setPort(settings.effectiveServicePort());
      network.setPortAutoIncrement(false);
    } else if (settings.port() == 0) {
      network.setPort(settings.portRangeStart());
      network.setPortCount(settings.portCount());
      network.setPortAutoIncrement(true);
    } else {
      network.setPort(settings.port());
      network.setPortAutoIncrement(false);
    }
    if (!settings.bindsAnyHost()) {
      network.getInterfaces().setEnabled(true).addInterface(settings.bindHost());
    }

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
        if (settings.members().isEmpty() && !settings.bindsAnyHost()) {
          // Alone, or the first of several: the others list this member.
          join.getTcpIpConfig().addMember(settings.bindHost());
        }
      }
      case KUBERNETES -> {
        // Hazelcast's DNS lookup mode (service-dns): it resolves the name with
        // InetAddress.getAllByName every join round and dials each address on service-port. It
        // needs no Kubernetes API access (no token, no RBAC); namespace, service-name and the
        // label selectors belong to the API mode and are not set.
        join.getTcpIpConfig().setEnabled(false);
        join.getKubernetesConfig()
            .setEnabled(true)
            .setProperty("service-dns", settings.kubernetesService())
            .setProperty("service-port", Integer.toString(settings.effectiveServicePort()));
      }
    }
    return config;
  }
}
