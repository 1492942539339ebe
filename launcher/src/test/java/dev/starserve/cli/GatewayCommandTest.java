package dev.starserve.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.cluster.FailoverProcessTest;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class GatewayCommandTest {
  @TempDir Path tmp;

  private static GatewayCommand parse(Map<String, String> env, String... args) {
    GatewayCommand cmd = new GatewayCommand();
    CommandLine cl = new CommandLine(cmd);
    cl.setDefaultValueProvider(SettingsDefaultProvider.forArgs(List.of(args), env));
    cl.parseArgs(args);
    return cmd;
  }

  @Test
  void drainTimeoutComesFromTheFlagTheEnvironmentOrTheConfigFile() throws Exception {
    assertEquals("30s", parse(Map.of()).drainTimeout);
    assertEquals("5s", parse(Map.of("STARSERVE_GATEWAY_DRAIN_TIMEOUT", "5s")).drainTimeout);
    assertEquals("7s", parse(Map.of("STARSERVE_DRAIN_TIMEOUT", "7s")).drainTimeout);
    Path file = tmp.resolve("starserve.properties");
    Files.writeString(file, "gateway.drain-timeout = 2m\n");
    assertEquals("2m", parse(Map.of(), "--config", file.toString()).drainTimeout);
    assertEquals(
        "500ms",
        parse(Map.of("STARSERVE_DRAIN_TIMEOUT", "7s"), "--drain-timeout", "500ms").drainTimeout);
  }

  /** SIGTERM on a gateway process: it drains (nothing in flight), leaves and exits 0. */
  @Test
  void sigtermDrainsTheGatewayProcessWhichExitsZero() throws Exception {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.addAll(FailoverProcessTest.JVM_FLAGS);
    cmd.addAll(List.of("-Xmx256m", "-XX:+UseSerialGC"));
    cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), Main.class.getName()));
    cmd.addAll(
        List.of(
            "gateway",
            "--http-port",
            "0",
            "--grpc-port",
            "0",
            "--cluster-name",
            "drain-" + UUID.randomUUID(),
            "--drain-timeout",
            "5s"));
    Path log = tmp.resolve("gateway.log");
    ProcessBuilder pb =
        new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
    pb.environment().keySet().removeIf(k -> k.startsWith("STARSERVE_"));
    Process p = pb.start();
    try {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while (!Files.readString(log, StandardCharsets.UTF_8).contains("gateway serving")) {
        assertTrue(p.isAlive(), () -> "the gateway exited: " + read(log));
        assertTrue(System.nanoTime() < deadline, () -> "the gateway did not start: " + read(log));
        Thread.sleep(100);
      }
      p.destroy(); // SIGTERM
      assertTrue(p.waitFor(30, TimeUnit.SECONDS), () -> "still running: " + read(log));
      String out = read(log);
      assertEquals(0, p.exitValue(), out);
      assertTrue(out.contains("gateway draining: 0 sequences in flight"), out);
      assertTrue(out.contains("gateway drained in"), out);
    } finally {
      if (p.isAlive()) {
        p.destroyForcibly();
      }
    }
    assertFalse(p.isAlive());
  }

  private static String read(Path log) {
    try {
      return Files.readString(log, StandardCharsets.UTF_8);
    } catch (java.io.IOException e) {
      return e.toString();
    }
  }
}
