package dev.starserve.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code starserve bench serve} as a user runs it, against {@code starserve serve} (gateway, worker
 * and Hazelcast member in this JVM, the tiny random-weight model, ports 0, an API key). The
 * reference for what the bench reports is the gateway's own Prometheus counters, read before and
 * after each run.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class BenchServeCommandTest {
  private static final String KEY = "bench-key";
  private static final int REQUESTS = 6;
  private static final int PROMPT_WORDS = 16;
  private static final int GEN = 4;

  @TempDir static Path tmp;
  private static ServeCommand.Running serving;
  private static final HttpClient HTTP =
      HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

  /** A command line run with stdout and stderr captured, as {@link CommandLineTest} runs them. */
  private static CommandLineTest.Run run(String... args) {
    return CommandLineTest.run(args);
  }

  @BeforeAll
  @Timeout(value = 180, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
  static void serve() throws Exception {
    Path model = tmp.resolve("tiny");
    CommandLineTest.Run made =
        run("make-model", "--shape", "tiny", "--dtype", "float32", "--out", model.toString());
    assertEquals(0, made.code(), made.err());
    Path keys = Files.writeString(tmp.resolve("keys"), KEY + "\n");
    ServeCommand cmd = new ServeCommand();
    new picocli.CommandLine(cmd)
        .parseArgs(
            "--model",
            model.toString(),
            "--host",
            "127.0.0.1",
            "--http-port",
            "0",
            "--grpc-port",
            "0",
            "--api-keys",
            keys.toString(),
            "--threads",
            "1",
            "--kv-cache-blocks",
            "256",
            "--cluster-name",
            "bench-serve-" + UUID.randomUUID(),
            "--cluster-port",
            "0");
    serving = cmd.start(new PrintStream(OutputStream.nullOutputStream()));
  }

  @AfterAll
  static void stop() {
    if (serving != null) {
      serving.close();
    }
  }

  private static String target(String api) {
    return api.equals("fmaas")
        ? "127.0.0.1:" + serving.gateway().grpcPort()
        : "http://127.0.0.1:" + serving.gateway().httpPort();
  }

  private static List<String> bench(String api, String... extra) {
    List<String> args =
        new ArrayList<>(
            List.of(
                "bench",
                "serve",
                "--target",
                target(api),
                "--api",
                api,
                "--concurrency",
                "3",
                "--requests",
                Integer.toString(REQUESTS),
                "--prompt-len",
                Integer.toString(PROMPT_WORDS),
                "--gen-len",
                Integer.toString(GEN)));
    args.addAll(List.of(extra));
    return args;
  }

  /** The one JSON line of stdout. */
  private static JsonNode json(CommandLineTest.Run r) throws Exception {
    String line = r.out().lines().filter(l -> l.startsWith("{")).reduce((a, b) -> b).orElseThrow();
    return Json.MAPPER.readTree(line);
  }

  /** The gateway's /metrics counter {@code name} summed over the series labelled {@code api}. */
  private static double counter(String name, String api, String... labels) throws Exception {
    HttpResponse<String> r =
        HTTP.send(
            HttpRequest.newBuilder(
                    URI.create("http://127.0.0.1:" + serving.gateway().httpPort() + "/metrics"))
                .timeout(Duration.ofSeconds(30))
                .build(),
            HttpResponse.BodyHandlers.ofString());
    assertEquals(200, r.statusCode());
    double sum = 0;
    for (String line : r.body().split("\n")) {
      if (!line.startsWith(name + "{") || !line.contains("api=\"" + api + "\"")) {
        continue;
      }
      String series = line.substring(0, line.indexOf('}') + 1);
      if (Stream.of(labels).allMatch(series::contains)) {
        sum += Double.parseDouble(line.substring(series.length()).trim().split(" ")[0]);
      }
    }
    return sum;
  }

  private static String metricsApi(String api) {
    return api.equals("openai") ? "openai_completions" : api;
  }

  @ParameterizedTest
  @ValueSource(strings = {"openai", "tgi", "fmaas"})
  void everyRequestCompletesWithTheAskedTokensAsTheGatewayCountsThem(String api) throws Exception {
    String m = metricsApi(api);
    double generated = counter("starserve_gateway_generated_tokens_total", m);
    double prompt = counter("starserve_gateway_prompt_tokens_total", m);
    double ok = counter("starserve_gateway_requests_total", m, "outcome=\"success\"");

    CommandLineTest.Run r = run(bench(api, "--api-key", KEY, "--json").toArray(String[]::new));
    assertEquals(0, r.code(), r.err());
    JsonNode j = json(r);
    assertEquals(api, j.get("api").asText());
    assertEquals(REQUESTS, j.get("completed").asInt(), j.toString());
    assertEquals(0, j.get("failed").asInt(), j.toString());
    assertEquals(0, j.get("errors").size(), j.toString());
    assertEquals(0, j.get("not_sent").asInt());
    assertEquals(0, j.get("cancelled_at_limit").asInt());
    // Words are one StarCoder token each, and the tiny model carries the StarCoder tokenizer.
    assertEquals(REQUESTS * PROMPT_WORDS, j.get("prompt_tokens").asInt(), j.toString());
    assertEquals(REQUESTS * GEN, j.get("output_tokens").asInt(), j.toString());
    assertEquals(0, j.get("short_requests").asInt());
    if (api.equals("openai")) {
      assertEquals("tiny", j.get("model").asText(), "the first of /v1/models, with the key");
    }
    for (String s : List.of("ttft_ms", "tpot_ms", "e2e_ms")) {
      JsonNode d = j.get(s);
      assertEquals(REQUESTS, d.get("count").asInt(), s);
      double[] ordered = {
        d.get("min").asDouble(),
        d.get("p50").asDouble(),
        d.get("p90").asDouble(),
        d.get("p99").asDouble(),
        d.get("max").asDouble()
      };
      for (int i = 1; i < ordered.length; i++) {
        assertTrue(ordered[i - 1] <= ordered[i], s + " " + d);
      }
      assertTrue(d.get("min").asDouble() > 0, s + " " + d);
    }
    assertTrue(j.get("ttft_ms").get("max").asDouble() <= j.get("e2e_ms").get("max").asDouble());
    assertTrue(j.get("output_tokens_per_s").asDouble() > 0);
    assertTrue(r.err().contains(REQUESTS + "/" + REQUESTS + " done, 0 failed"), r.err());

    assertEquals(
        REQUESTS * GEN, counter("starserve_gateway_generated_tokens_total", m) - generated, m);
    assertEquals(
        REQUESTS * PROMPT_WORDS, counter("starserve_gateway_prompt_tokens_total", m) - prompt, m);
    assertEquals(
        REQUESTS, counter("starserve_gateway_requests_total", m, "outcome=\"success\"") - ok, m);
  }

  static Stream<Arguments> refusals() {
    return Stream.of(
        Arguments.of("openai", "http_401"),
        Arguments.of("tgi", "http_401"),
        Arguments.of("fmaas", "grpc_UNAUTHENTICATED"));
  }

  @ParameterizedTest
  @MethodSource("refusals")
  void withoutTheKeyEveryRequestFailsCountedByStatusAndTheExitCodeSaysSo(String api, String kind)
      throws Exception {
    CommandLineTest.Run r = run(bench(api, "--model", "tiny", "--json").toArray(String[]::new));
    assertEquals(1, r.code(), "nothing completed: " + r.out() + r.err());
    JsonNode j = json(r);
    assertEquals(0, j.get("completed").asInt());
    assertEquals(1, j.get("errors").size(), j.toString());
    assertEquals(REQUESTS, j.get("errors").get(kind).asInt(), j.toString());
    assertTrue(j.get("error_examples").has(kind), j.toString());
  }

  @Test
  void theTextReportHasTheThroughputTheLatencyTableAndNoErrors() {
    CommandLineTest.Run r = run(bench("tgi", "--api-key", KEY).toArray(String[]::new));
    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().contains("requests:   6 completed, 0 failed"), r.out());
    assertTrue(r.out().contains("output tokens/s"), r.out());
    for (String row : List.of("TTFT", "TPOT", "E2E")) {
      assertTrue(r.out().lines().anyMatch(l -> l.startsWith(row + " ")), row + "\n" + r.out());
    }
    assertTrue(r.out().contains("errors:     none"), r.out());
  }

  static Stream<Arguments> badFlags() {
    String[] base = {"bench", "serve", "--target", "http://127.0.0.1:1", "--requests", "2"};
    return Stream.of(
        Arguments.of(
            concat(base, "--api", "openai", "--concurrency", "0"),
            "error: --concurrency must be in [1, 10000], got 0"),
        Arguments.of(
            concat(base, "--api", "grpc"),
            "error: --api must be one of fmaas, openai, tgi, got 'grpc'"),
        Arguments.of(
            new String[] {
              "bench", "serve", "--target", "http//127.0.0.1", "--api", "tgi", "--requests", "2"
            },
            "error: --target must be a URL such as http://127.0.0.1:8000"),
        Arguments.of(
            concat(base, "--api", "tgi", "--rate", "0"),
            "error: --rate must be a positive number of requests per second, got 0.0"),
        Arguments.of(
            concat(base, "--api", "tgi", "--gen-len", "0"),
            "error: --gen-len must be in [1, 1000000], got 0"),
        Arguments.of(
            concat(base, "--api", "tgi", "--duration-limit", "-1"),
            "error: --duration-limit must be a positive number of seconds, got -1.0"),
        Arguments.of(
            concat(base, "--api", "tgi", "--concurrency", "many"),
            "Invalid value for option '--concurrency'"),
        Arguments.of(
            new String[] {"bench", "serve", "--target", "http://127.0.0.1:1", "--api", "tgi"},
            "Missing required option: '--requests=<requests>'"));
  }

  private static String[] concat(String[] a, String... b) {
    return Stream.concat(Stream.of(a), Stream.of(b)).toArray(String[]::new);
  }

  @ParameterizedTest
  @MethodSource("badFlags")
  void aBadFlagExitsTwoWithAMessageNamingIt(String[] args, String message) {
    CommandLineTest.Run r = run(args);
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains(message), r.err());
    assertTrue(r.out().isEmpty(), r.out());
  }
}
