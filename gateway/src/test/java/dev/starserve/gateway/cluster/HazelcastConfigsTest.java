package dev.starserve.gateway.cluster;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.hazelcast.config.Config;
import com.hazelcast.config.JoinConfig;
import com.hazelcast.config.KubernetesConfig;
import com.hazelcast.core.Hazelcast;
import com.hazelcast.core.HazelcastInstance;
import com.hazelcast.map.IMap;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The Kubernetes configuration, and Hazelcast's DNS lookup discovery run for real on loopback:
 * {@code localhost} stands in for the headless service's name (it resolves to 127.0.0.1, as the
 * service's name resolves to the pods' IPs).
 */
class HazelcastConfigsTest {
  private final List<HazelcastInstance> members = new ArrayList<>();

  @AfterEach
  void stopMembers() {
    for (HazelcastInstance m : members) {
      m.getLifecycleService().terminate();
    }
    members.clear();
  }

  @Test
  void kubernetesUsesDnsLookupOnTheServicePortAndBindsEveryInterfaceByDefault() {
    ClusterSettings s =
        ClusterSettings.tcpIp("k", 0, "")
            .withBindHost(ClusterSettings.ANY_HOST)
            .withKubernetes("starserve-hz.default.svc.cluster.local", 0);
    Config config = HazelcastConfigs.build(s);
    JoinConfig join = config.getNetworkConfig().getJoin();
    assertFalse(join.getTcpIpConfig().isEnabled());
    assertFalse(join.getMulticastConfig().isEnabled());
    assertFalse(join.getAutoDetectionConfig().isEnabled());
    KubernetesConfig k8s = join.getKubernetesConfig();
    assertTrue(k8s.isEnabled());
    // Exactly the DNS lookup mode's properties: a namespace or service-name would select (or
    // conflict with) the API mode.
    assertEquals(
        Map.of("service-dns", "starserve-hz.default.svc.cluster.local", "service-port", "5701"),
        k8s.getProperties());
    // Port 0 means the known port every member listens on, with no auto-increment.
    assertEquals(5701, config.getNetworkConfig().getPort());
    assertFalse(config.getNetworkConfig().isPortAutoIncrement());
    // 0.0.0.0: bind all, announce the picked (pod) address.
    assertFalse(config.getNetworkConfig().getInterfaces().isEnabled());
    assertEquals("true", config.getProperty("hazelcast.socket.bind.any"));

    Config fixed =
        HazelcastConfigs.build(
            ClusterSettings.tcpIp("k", 5800, "")
                .withBindHost("10.1.2.3")
                .withKubernetes("starserve-hz", 0));
    assertEquals(5800, fixed.getNetworkConfig().getPort());
    assertEquals(
        "5800",
        fixed.getNetworkConfig().getJoin().getKubernetesConfig().getProperty("service-port"));
    assertEquals(
        List.of("10.1.2.3"), List.copyOf(fixed.getNetworkConfig().getInterfaces().getInterfaces()));
    assertEquals("false", fixed.getProperty("hazelcast.socket.bind.any"));
  }

  @Test
  void kubernetesCombinationsThatCannotWorkAreRefused() {
    ClusterSettings base = ClusterSettings.tcpIp("k", 0, "");
    var noService = assertThrows(IllegalArgumentException.class, () -> base.withKubernetes(" ", 0));
    assertTrue(noService.getMessage().contains("kubernetesService"), noService.getMessage());
    for (String bad : List.of("http://svc", "svc:5701", "svc name", "-svc")) {
      var e = assertThrows(IllegalArgumentException.class, () -> base.withKubernetes(bad, 0));
      assertTrue(e.getMessage().contains(bad), e.getMessage());
    }
    var members =
        assertThrows(
            IllegalArgumentException.class,
            () -> ClusterSettings.tcpIp("k", 0, "10.0.0.1:5701").withKubernetes("svc", 0));
    assertTrue(members.getMessage().contains("TCP_IP"), members.getMessage());
    assertThrows(IllegalArgumentException.class, () -> base.withKubernetes("svc", 65536));
    // A trailing dot (an absolute name) is a valid DNS name.
    assertEquals(
        "svc.ns.svc.cluster.local.",
        base.withKubernetes("svc.ns.svc.cluster.local.", 0).kubernetesService());
  }

  @Test
  void twoMembersFormOneClusterThroughTheDnsLookupOfAServiceName() throws Exception {
    InetAddress[] resolved = InetAddress.getAllByName("localhost");
    assertTrue(
        List.of(resolved).contains(InetAddress.getByName("127.0.0.1")),
        "this test needs localhost to resolve to 127.0.0.1: " + List.of(resolved));
    String cluster = "dns-test-" + UUID.randomUUID();
    int first = freePort();
    int second = freePort();
    // The first member listens on the service port; the second elsewhere (on one host two
    // members cannot share it; in Kubernetes every pod has its own IP and the same port). The
    // lookup of "localhost" gives 127.0.0.1, dialled on the service port: the first member.
    ClusterSettings one =
        ClusterSettings.tcpIp(cluster, first, "").withKubernetes("localhost", first);
    ClusterSettings two =
        ClusterSettings.tcpIp(cluster, second, "").withKubernetes("localhost", first);

    long t0 = System.nanoTime();
    HazelcastInstance a = start(one);
    long t1 = System.nanoTime();
    HazelcastInstance b = start(two);
    long t2 = System.nanoTime();
    await(
        "two members",
        () -> a.getCluster().getMembers().size() == 2 && b.getCluster().getMembers().size() == 2);
    System.out.printf(
        "DNS discovery: first member up in %d ms, second joined in %d ms%n",
        TimeUnit.NANOSECONDS.toMillis(t1 - t0), TimeUnit.NANOSECONDS.toMillis(t2 - t1));
    assertEquals(first, a.getCluster().getLocalMember().getSocketAddress().getPort());
    assertEquals(second, b.getCluster().getLocalMember().getSocketAddress().getPort());

    // A registry-like record: put with a TTL by one member, read by the other.
    IMap<String, byte[]> onB = b.getMap(WorkerDirectory.MAP_NAME);
    onB.set("w1", new byte[] {1, 2, 3}, 5, TimeUnit.SECONDS);
    IMap<String, byte[]> onA = a.getMap(WorkerDirectory.MAP_NAME);
    await("the record on the first member", () -> onA.get("w1") != null);
    assertArrayEquals(new byte[] {1, 2, 3}, onA.get("w1"));

    // A member of another cluster name answering the same lookup stays out.
    ClusterSettings stranger =
        ClusterSettings.tcpIp(cluster + "-other", freePort(), "")
            .withKubernetes("localhost", first);
    HazelcastInstance c = start(stranger);
    assertEquals(1, c.getCluster().getMembers().size());
    assertEquals(2, a.getCluster().getMembers().size());
  }

  @Test
  void membersBindingEveryInterfaceJoinThroughTheLookupToo() throws Exception {
    // The kubernetes default (no --cluster-host): bind 0.0.0.0 and announce the address Hazelcast
    // picks (here whatever non-loopback address this machine has, in a pod the pod IP). The
    // lookup still dials 127.0.0.1, which reaches the first member through its 0.0.0.0 socket.
    String cluster = "dns-any-test-" + UUID.randomUUID();
    int first = freePort();
    HazelcastInstance a =
        start(
            ClusterSettings.tcpIp(cluster, first, "")
                .withBindHost(ClusterSettings.ANY_HOST)
                .withKubernetes("localhost", first));
    HazelcastInstance b =
        start(
            ClusterSettings.tcpIp(cluster, freePort(), "")
                .withBindHost(ClusterSettings.ANY_HOST)
                .withKubernetes("localhost", first));
    await(
        "two members",
        () -> a.getCluster().getMembers().size() == 2 && b.getCluster().getMembers().size() == 2);
    System.out.println(
        "bound to every interface, announced as " + a.getCluster().getLocalMember().getAddress());
  }

  private HazelcastInstance start(ClusterSettings settings) {
    HazelcastInstance hz = Hazelcast.newHazelcastInstance(HazelcastConfigs.build(settings));
    members.add(hz);
    return hz;
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket()) {
      s.bind(new InetSocketAddress("127.0.0.1", 0));
      return s.getLocalPort();
    }
  }

  private static void await(String what, BooleanSupplier condition) throws InterruptedException {
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > end) {
        throw new AssertionError("timed out after 30 s waiting for " + what);
      }
      Thread.sleep(20);
    }
  }
}
