package dev.starserve.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.gateway.cluster.ClusterSettings;
import dev.starserve.gateway.cluster.ClusterSettings.Discovery;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * The cluster flags of the real commands, from the command line and from the environment (what a
 * Kubernetes manifest sets), parsed as {@link Main#run} parses them.
 */
class ClusterOptionsTest {
  private static ClusterOptions parse(Map<String, String> env, String... args) {
    CommandLine cl = new CommandLine(new Main());
    cl.setDefaultValueProvider(SettingsDefaultProvider.forArgs(List.of(args), env));
    CommandLine.ParseResult r = cl.parseArgs(args);
    Object command = r.subcommand().commandSpec().userObject();
    return switch (command) {
      case WorkerCommand w -> w.cluster;
      case GatewayCommand g -> g.cluster;
      case ServeCommand s -> s.cluster;
      default -> throw new AssertionError(command);
    };
  }

  private static String error(Map<String, String> env, String... args) {
    return assertThrows(IllegalArgumentException.class, () -> parse(env, args).settings())
        .getMessage();
  }

  @Test
  void defaultsAreLoopbackTcpIp() {
    ClusterSettings s = parse(Map.of(), "gateway").settings();
    assertEquals(Discovery.TCP_IP, s.discovery());
    assertEquals("127.0.0.1", s.bindHost());
    assertEquals("starserve", s.clusterName());
    assertEquals(0, s.port());
    assertEquals(List.of(), s.members());
  }

  @Test
  void kubernetesDiscoveryFromFlagsBindsEveryInterfaceUnlessAHostIsGiven() {
    ClusterSettings s =
        parse(
                Map.of(),
                "worker",
                "--model",
                "m",
                "--cluster-discovery",
                "kubernetes",
                "--kubernetes-service",
                "starserve-hz.ns.svc.cluster.local")
            .settings();
    assertEquals(Discovery.KUBERNETES, s.discovery());
    assertEquals("starserve-hz.ns.svc.cluster.local", s.kubernetesService());
    assertEquals(ClusterSettings.ANY_HOST, s.bindHost());
    assertEquals(5701, s.effectiveServicePort());

    ClusterSettings pinned =
        parse(
                Map.of(),
                "serve",
                "--cluster-discovery=kubernetes",
                "--kubernetes-service=svc",
                "--cluster-host=10.2.3.4",
                "--cluster-port=5801")
            .settings();
    assertEquals("10.2.3.4", pinned.bindHost());
    assertEquals(5801, pinned.effectiveServicePort());
  }

  @Test
  void kubernetesDiscoveryFromTheEnvironmentAndFlagsWin() {
    Map<String, String> env =
        Map.of(
            "STARSERVE_CLUSTER_DISCOVERY", "kubernetes",
            "STARSERVE_KUBERNETES_SERVICE", "starserve-hz.prod.svc.cluster.local",
            "STARSERVE_CLUSTER_HOST", "10.9.8.7",
            "STARSERVE_CLUSTER_NAME", "prod",
            "STARSERVE_GATEWAY_CLUSTER_PORT", "5702");
    ClusterSettings g = parse(env, "gateway").settings();
    assertEquals(Discovery.KUBERNETES, g.discovery());
    assertEquals("starserve-hz.prod.svc.cluster.local", g.kubernetesService());
    assertEquals("10.9.8.7", g.bindHost());
    assertEquals("prod", g.clusterName());
    assertEquals(5702, g.port(), "the command-qualified variable applies to its command");

    ClusterSettings w = parse(env, "worker", "--model", "m").settings();
    assertEquals(Discovery.KUBERNETES, w.discovery());
    assertEquals(0, w.port(), "STARSERVE_GATEWAY_CLUSTER_PORT is not the worker's");
    assertEquals(5701, w.effectiveServicePort());

    ClusterSettings local =
        parse(
                env,
                "worker",
                "--model",
                "m",
                "--cluster-discovery",
                "tcp-ip",
                "--kubernetes-service",
                "",
                "--cluster-host",
                "127.0.0.1")
            .settings();
    assertEquals(Discovery.TCP_IP, local.discovery());
  }

  @Test
  void combinationsThatCannotWorkAreRefusedNamingTheFlag() {
    assertTrue(
        error(Map.of(), "gateway", "--cluster-discovery", "kubernetes")
            .startsWith("--cluster-discovery kubernetes needs --kubernetes-service"));
    assertTrue(
        error(Map.of("STARSERVE_CLUSTER_DISCOVERY", "kubernetes"), "gateway")
            .contains("--kubernetes-service"));
    assertTrue(
        error(
                Map.of(),
                "gateway",
                "--cluster-discovery",
                "kubernetes",
                "--kubernetes-service",
                "svc",
                "--kubernetes-namespace",
                "ns")
            .startsWith("--kubernetes-namespace is not supported"));
    assertTrue(
        error(
                Map.of(),
                "gateway",
                "--cluster-discovery",
                "kubernetes",
                "--kubernetes-service",
                "svc",
                "--cluster-members",
                "10.0.0.1:5701")
            .startsWith("--cluster-members is for --cluster-discovery tcp-ip"));
    assertTrue(
        error(Map.of(), "gateway", "--kubernetes-service", "svc")
            .startsWith("--kubernetes-service needs --cluster-discovery kubernetes"));
    assertTrue(
        error(Map.of(), "gateway", "--cluster-discovery", "dns")
            .startsWith("--cluster-discovery must be tcp-ip or kubernetes"));
    assertTrue(
        error(
                Map.of(),
                "gateway",
                "--cluster-discovery",
                "kubernetes",
                "--kubernetes-service",
                "svc:5701")
            .contains("svc:5701"));
  }

  @Test
  void aBadClusterFlagStopsAWorkerBeforeItLoadsItsModel() {
    CommandLineTest.Run r =
        CommandLineTest.run(
            "worker", "--model", "/nonexistent-model", "--cluster-discovery", "kubernetes");
    assertEquals(2, r.code(), r.err());
    assertTrue(
        r.err().startsWith("error: --cluster-discovery kubernetes needs --kubernetes-service"),
        r.err());
  }
}
