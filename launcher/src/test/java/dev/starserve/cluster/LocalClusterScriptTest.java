package dev.starserve.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.starserve.cli.Main;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code deploy/local/cluster.sh} as a user runs it: {@code start} of a gateway and two worker
 * processes of the tiny model (every port 0, so parallel builds never collide), a completion
 * through the gateway, {@code status}, {@code stop}; and the ways {@code start} refuses or fails.
 *
 * <p>The script launches {@code STARSERVE_CMD}: here this JVM's java with the test classpath and
 * {@link Main}, since {@code ./starserve} would build the jar this build is making.
 */
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class LocalClusterScriptTest {
  static final Path SCRIPT = repoRoot().resolve("deploy/local/cluster.sh");

  @TempDir Path tmp;

  /** Every pid a pid file showed, so that nothing outlives the test, whatever failed. */
  private final Set<Long> pids = new LinkedHashSet<>();

  private Path run;

  record Run(int code, String out, String err) {
    String both() {
      return "exit " + code + "\n--- stdout\n" + out + "--- stderr\n" + err;
    }
  }

  @AfterEach
  void stopEverything() throws Exception {
    if (run != null) {
      pids.addAll(pidFiles(run).values());
      if (pids.stream().anyMatch(LocalClusterScriptTest::alive)) {
        script(60, "stop", "--dir", run.toString(), "--stop-timeout", "10");
      }
    }
    for (long pid : pids) {
      if (alive(pid)) {
        ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
        assertTrue(gone(pid), "pid " + pid + " is gone after SIGKILL");
      }
    }
  }

  @Test
  void startsAGatewayAndTwoWorkersServesACompletionAndStopsEveryProcess() throws Exception {
    Path model = tmp.resolve("tiny");
    assertEquals(
        0, Main.run("make-model", "--shape", "tiny", "--dtype", "float32", "--out", "" + model));
    run = tmp.resolve("run");

    long t0 = System.nanoTime();
    Run started =
        script(
            200,
            "start",
            "--dir",
            run.toString(),
            "--workers",
            "2",
            "--model",
            model.toString(),
            "--http-port",
            "0",
            "--grpc-port",
            "0",
            "--cluster-port",
            "0",
            "--worker-port",
            "0",
            "--threads",
            "1",
            "--kv-cache-memory",
            "16m",
            "--ready-timeout",
            "150");
    Map<String, Long> startedPids = pidFiles(run);
    pids.addAll(startedPids.values());
    System.out.printf("start: %d ms%n", (System.nanoTime() - t0) / 1_000_000);
    assertEquals(0, started.code(), started.both());
    assertTrue(started.out().contains("ready after"), started.both());
    assertEquals(Set.of("gateway", "worker-1", "worker-2"), startedPids.keySet());
    for (long pid : startedPids.values()) {
      assertTrue(alive(pid), "pid " + pid + " runs");
    }
    assertEquals(
        Set.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE),
        Files.getPosixFilePermissions(run.resolve("cluster.secret")),
        "the generated secret is private");

    Map<String, String> state = state(run);
    String base = "http://127.0.0.1:" + state.get("HTTP_PORT");
    HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    String metrics =
        http.send(
                HttpRequest.newBuilder(URI.create(base + "/metrics")).GET().build(),
                HttpResponse.BodyHandlers.ofString())
            .body();
    assertTrue(
        metrics.lines().anyMatch(l -> l.equals("starserve_gateway_workers{state=\"ready\"} 2.0")),
        metrics);

    JsonObject body =
        new JsonObject()
            .put("model", "tiny")
            .put("prompt", "def add(a, b):")
            .put("max_tokens", 8)
            .put("ignore_eos", true)
            .put("temperature", 0);
    HttpResponse<String> completion =
        http.send(
            HttpRequest.newBuilder(URI.create(base + "/v1/completions"))
                .header("content-type", "application/json")
                .timeout(Duration.ofSeconds(60))
                .POST(HttpRequest.BodyPublishers.ofString(body.encode()))
                .build(),
            HttpResponse.BodyHandlers.ofString());
    assertEquals(200, completion.statusCode(), completion.body());
    JsonObject answer = new JsonObject(completion.body());
    assertEquals(8, answer.getJsonObject("usage").getInteger("completion_tokens"));
    assertFalse(
        answer.getJsonArray("choices").getJsonObject(0).getString("text").isEmpty(),
        completion.body());

    Run status = script(30, "status", "--dir", run.toString());
    assertEquals(0, status.code(), status.both());
    for (String name : List.of("gateway", "worker-1", "worker-2")) {
      Pattern line =
          Pattern.compile("(?m)^" + name + " +pid " + startedPids.get(name) + " +running");
      assertTrue(line.matcher(status.out()).find(), name + " in\n" + status.both());
    }
    assertTrue(status.out().contains("ready=2"), status.both());

    Run again = script(30, "start", "--dir", run.toString(), "--model", model.toString());
    assertEquals(1, again.code(), again.both());
    assertTrue(again.err().contains("already running"), again.both());

    long t1 = System.nanoTime();
    Run stopped = script(90, "stop", "--dir", run.toString());
    System.out.printf("stop: %d ms%n", (System.nanoTime() - t1) / 1_000_000);
    assertEquals(0, stopped.code(), stopped.both());
    assertFalse(stopped.err().contains("SIGKILL"), "SIGTERM was enough: " + stopped.both());
    for (var e : startedPids.entrySet()) {
      assertTrue(gone(e.getValue()), e.getKey() + " (pid " + e.getValue() + ") has exited");
    }
    assertEquals(Map.of(), pidFiles(run), "no pid file is left");
    assertTrue(
        Files.readString(run.resolve("worker-1.log")).contains("draining"), "worker drained");

    Run logs = script(30, "logs", "--dir", run.toString());
    assertEquals(0, logs.code(), logs.both());
    for (String name : List.of("gateway", "worker-1", "worker-2")) {
      assertTrue(logs.out().contains("==> " + run.resolve(name + ".log") + " <=="), logs.both());
    }

    Run stoppedAgain = script(30, "stop", "--dir", run.toString());
    assertEquals(0, stoppedAgain.code(), stoppedAgain.both());
    assertTrue(stoppedAgain.out().contains("not running"), stoppedAgain.both());
    assertEquals(3, script(30, "status", "--dir", run.toString()).code(), "status: not running");
  }

  @Test
  void startRefusesBadInputWithAMessageNamingIt() throws Exception {
    run = tmp.resolve("run");
    Path fakeModel = Files.createDirectories(tmp.resolve("fake"));
    Files.writeString(fakeModel.resolve("config.json"), "{}");

    Run zero = script(30, "start", "--dir", "" + run, "--workers", "0", "--model", "" + fakeModel);
    assertEquals(2, zero.code(), zero.both());
    assertTrue(zero.err().contains("--workers must be a positive integer"), zero.both());

    Path missing = tmp.resolve("no-such-model");
    Run noModel = script(30, "start", "--dir", "" + run, "--model", "" + missing);
    assertEquals(2, noModel.code(), noModel.both());
    assertTrue(noModel.err().contains("no such directory: " + missing), noModel.both());

    Run noModelDir = script(30, "start", "--dir", "" + run, "--model", "" + tmp);
    assertEquals(2, noModelDir.code(), noModelDir.both());
    assertTrue(noModelDir.err().contains("has no config.json"), noModelDir.both());

    try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      int port = taken.getLocalPort();
      Run inUse =
          script(
              30,
              "start",
              "--dir",
              "" + run,
              "--model",
              "" + fakeModel,
              "--http-port",
              "" + port,
              "--grpc-port",
              "0",
              "--cluster-port",
              "0",
              "--worker-port",
              "0");
      assertEquals(1, inUse.code(), inUse.both());
      assertTrue(inUse.err().contains("port " + port + " (--http-port) is in use"), inUse.both());
    }
    assertEquals(Map.of(), pidFiles(run), "nothing was started");
  }

  @Test
  void aWorkerThatDiesDuringStartFailsItWithItsLogAndStopsTheGateway() throws Exception {
    run = tmp.resolve("run");
    Path fakeModel = Files.createDirectories(tmp.resolve("fake"));
    Files.writeString(fakeModel.resolve("config.json"), "{}");
    // A worker refuses this flag before it loads anything, so the fake model is never read.
    Run failed =
        script(
            150,
            "start",
            "--dir",
            "" + run,
            "--workers",
            "1",
            "--model",
            "" + fakeModel,
            "--http-port",
            "0",
            "--grpc-port",
            "0",
            "--cluster-port",
            "0",
            "--worker-port",
            "0",
            "--worker-opt=--max-pending-events=1");
    assertEquals(1, failed.code(), failed.both());
    assertTrue(
        Pattern.compile("worker-1 \\(pid \\d+\\) exited with status 2 while waiting")
            .matcher(failed.err())
            .find(),
        failed.both());
    assertTrue(
        failed.err().contains("--max-pending-events must be >= 4"),
        "the tail of the worker's log is shown: " + failed.both());
    Matcher gateway = Pattern.compile("stopped gateway \\(pid (\\d+)\\)").matcher(failed.err());
    assertTrue(gateway.find(), "the gateway it had started is stopped: " + failed.both());
    long gatewayPid = Long.parseLong(gateway.group(1));
    pids.add(gatewayPid);
    assertTrue(gone(gatewayPid), "the gateway has exited");
    assertEquals(Map.of(), pidFiles(run), "no pid file is left");
  }

  /** Runs the script with a launch command for this build's classes and waits for it. */
  private Run script(int timeoutSeconds, String... args) throws IOException, InterruptedException {
    List<String> cmd = new ArrayList<>();
    cmd.add(SCRIPT.toString());
    cmd.addAll(List.of(args));
    Path out = Files.createTempFile(tmp, "script", ".out");
    Path err = Files.createTempFile(tmp, "script", ".err");
    ProcessBuilder pb =
        new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile());
    pb.environment().keySet().removeIf(k -> k.startsWith("STARSERVE_"));
    pb.environment().put("STARSERVE_CMD", launchCommand());
    pb.environment().put("CLASSPATH", System.getProperty("java.class.path"));
    Process p = pb.start();
    if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
      p.descendants().forEach(ProcessHandle::destroyForcibly);
      p.destroyForcibly();
      fail("cluster.sh " + String.join(" ", args) + " ran past " + timeoutSeconds + " s");
    }
    return new Run(p.exitValue(), Files.readString(out), Files.readString(err));
  }

  /**
   * java, the flags ./starserve passes, small heaps and {@link Main}, for STARSERVE_CMD (split at
   * spaces); the classpath travels in $CLASSPATH.
   */
  private static String launchCommand() {
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    // NOTE: the script splits STARSERVE_CMD at spaces; a JDK path with a space could not be named.
    assertFalse(java.contains(" "), "java's path has no space: " + java);
    List<String> cmd = new ArrayList<>();
    cmd.add(java);
    cmd.addAll(FailoverProcessTest.JVM_FLAGS);
    // Three JVMs share the build machine's cores: small heaps and the serial collector.
    cmd.addAll(List.of("-Xmx256m", "-XX:+UseSerialGC", Main.class.getName()));
    return String.join(" ", cmd);
  }

  /** name → pid of every pid file in the run folder. */
  private static Map<String, Long> pidFiles(Path dir) throws IOException {
    Map<String, Long> out = new HashMap<>();
    if (!Files.isDirectory(dir)) {
      return out;
    }
    try (Stream<Path> files = Files.list(dir)) {
      for (Path f : files.filter(f -> f.toString().endsWith(".pid")).toList()) {
        String name = f.getFileName().toString().replaceFirst("\\.pid$", "");
        out.put(name, Long.parseLong(Files.readString(f, StandardCharsets.UTF_8).strip()));
      }
    }
    return out;
  }

  /** The KEY=VALUE lines of the run folder's cluster.env. */
  private static Map<String, String> state(Path dir) throws IOException {
    Map<String, String> out = new HashMap<>();
    for (String line : Files.readAllLines(dir.resolve("cluster.env"))) {
      int eq = line.indexOf('=');
      if (!line.startsWith("#") && eq > 0) {
        out.put(line.substring(0, eq), line.substring(eq + 1));
      }
    }
    return out;
  }

  /**
   * Whether the process runs. A zombie does not: the script's processes outlive it as orphans, and
   * where PID 1 does not reap them (a container whose PID 1 is this build's java) they stay
   * zombies.
   */
  private static boolean alive(long pid) {
    if (!ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)) {
      return false;
    }
    try {
      String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
      return stat.charAt(stat.lastIndexOf(')') + 2) != 'Z';
    } catch (IOException | RuntimeException e) {
      return ProcessHandle.of(pid).isPresent(); // no /proc (macOS) or it just exited
    }
  }

  /** Whether the process is gone within a few seconds. */
  private static boolean gone(long pid) throws InterruptedException {
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (alive(pid)) {
      if (System.nanoTime() > end) {
        return false;
      }
      Thread.sleep(50);
    }
    return true;
  }

  private static Path repoRoot() {
    for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
      if (Files.isRegularFile(p.resolve("deploy/local/cluster.sh"))) {
        return p;
      }
    }
    throw new IllegalStateException(
        "no deploy/local/cluster.sh above " + Path.of("").toAbsolutePath());
  }
}
