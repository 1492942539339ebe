package dev.starserve.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

class SettingsDefaultProviderTest {
  @Command(name = "worker")
  static final class Probe implements Runnable {
    @Option(names = "--grpc-port", defaultValue = "8033")
    int grpcPort;

    @Option(names = "--host", defaultValue = "127.0.0.1")
    String host;

    @Option(names = "--worker-id")
    String workerId;

    @CommandLine.Mixin ConfigFileOption config = new ConfigFileOption();

    @Override
    public void run() {}
  }

  private static Probe parse(Map<String, String> env, String... args) {
    Probe p = new Probe();
    CommandLine cl = new CommandLine(p);
    cl.setDefaultValueProvider(SettingsDefaultProvider.forArgs(List.of(args), env));
    cl.parseArgs(args);
    return p;
  }

  @Test
  void flagBeatsEnvironmentBeatsConfigFileBeatsDefault(@TempDir Path dir) throws Exception {
    Path file = dir.resolve("starserve.properties");
    Files.writeString(file, "# test\ngrpc-port = 9000\nhost=0.0.0.0\nworker.worker-id = w-file\n");
    String cfg = file.toString();

    Probe fileOnly = parse(Map.of(), "--config", cfg);
    assertEquals(9000, fileOnly.grpcPort);
    assertEquals("0.0.0.0", fileOnly.host);
    assertEquals("w-file", fileOnly.workerId);

    Probe env = parse(Map.of("STARSERVE_GRPC_PORT", "9100"), "--config=" + cfg);
    assertEquals(9100, env.grpcPort);
    assertEquals("0.0.0.0", env.host);

    Probe commandEnvWins =
        parse(Map.of("STARSERVE_GRPC_PORT", "9100", "STARSERVE_WORKER_GRPC_PORT", "9200"));
    assertEquals(9200, commandEnvWins.grpcPort);

    Probe flag = parse(Map.of("STARSERVE_GRPC_PORT", "9100"), "--config", cfg, "--grpc-port", "1");
    assertEquals(1, flag.grpcPort);

    Probe none = parse(Map.of());
    assertEquals(8033, none.grpcPort);
    assertEquals("127.0.0.1", none.host);
  }

  @Test
  void configFileFromEnvironmentAndAMissingFileIsAClearError(@TempDir Path dir) throws Exception {
    Path file = dir.resolve("s.properties");
    Files.writeString(file, "grpc-port=7000\n");
    assertEquals(7000, parse(Map.of("STARSERVE_CONFIG", file.toString())).grpcPort);

    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                SettingsDefaultProvider.forArgs(
                    List.of("--config", dir.resolve("absent").toString()), Map.of()));
    assertTrue(e.getMessage().contains("absent"), e.getMessage());
  }

  @Test
  void environmentNamesAreUpperSnakeWithThePrefix() {
    assertEquals("STARSERVE_WORKER_GRPC_PORT", SettingsDefaultProvider.envName("worker.grpc-port"));
    assertEquals("STARSERVE_KV_CACHE_MEMORY", SettingsDefaultProvider.envName("kv-cache-memory"));
  }
}
