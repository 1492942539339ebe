package dev.starserve.gateway.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.hazelcast.config.Config;
import com.hazelcast.config.JoinConfig;
import java.util.List;
import org.junit.jupiter.api.Test;

class ClusterSettingsTest {
  @Test
  void membersAreParsedAndValidated() {
    ClusterSettings s = ClusterSettings.tcpIp("c", 0, " 127.0.0.1:5701, host-b ,,10.0.0.3:6000");
    assertEquals(List.of("127.0.0.1:5701", "host-b", "10.0.0.3:6000"), s.members());
    assertEquals("127.0.0.1", s.bindHost());
    assertEquals(ClusterSettings.Discovery.TCP_IP, s.discovery());

    var range =
        assertThrows(
            IllegalArgumentException.class,
            () -> ClusterSettings.tcpIp("c", 0, "127.0.0.1:5701-5710"));
    assertTrue(range.getMessage().contains("127.0.0.1:5701-5710"), range.getMessage());
    var port =
        assertThrows(IllegalArgumentException.class, () -> ClusterSettings.tcpIp("c", 70000, ""));
    assertEquals("port must be in [0, 65535], got 70000", port.getMessage());
    var name =
        assertThrows(IllegalArgumentException.class, () -> ClusterSettings.tcpIp(" ", 0, ""));
    assertEquals("clusterName must not be empty", name.getMessage());
    assertThrows(
        IllegalArgumentException.class,
        () -> ClusterSettings.tcpIp("c", 0, "").withKubernetes("", 0));
  }

  @Test
  void tcpIpConfigJoinsOnlyTheListedMembersOnLoopback() {
    Config config =
        HazelcastConfigs.build(
            ClusterSettings.tcpIp("unit", 0, "127.0.0.1:5801").withPortRange(30000, 10));
    assertEquals("unit", config.getClusterName());
    assertEquals("false", config.getProperty("hazelcast.phone.home.enabled"));
    assertEquals("slf4j", config.getProperty("hazelcast.logging.type"));
    assertEquals(30000, config.getNetworkConfig().getPort());
    assertEquals(10, config.getNetworkConfig().getPortCount());
    assertTrue(config.getNetworkConfig().isPortAutoIncrement());
    JoinConfig join = config.getNetworkConfig().getJoin();
    assertFalse(join.getMulticastConfig().isEnabled());
    assertFalse(join.getAutoDetectionConfig().isEnabled());
    assertTrue(join.getTcpIpConfig().isEnabled());
    assertEquals(List.of("127.0.0.1:5801"), join.getTcpIpConfig().getMembers());
    assertEquals(
        List.of("127.0.0.1"),
        List.copyOf(config.getNetworkConfig().getInterfaces().getInterfaces()));

    Config fixed = HazelcastConfigs.build(ClusterSettings.tcpIp("unit", 5999, ""));
    assertEquals(5999, fixed.getNetworkConfig().getPort());
    assertFalse(fixed.getNetworkConfig().isPortAutoIncrement());
  }
}
