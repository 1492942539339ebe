package dev.starserve.bench.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Bad flags fail with a message naming the flag. */
class ServeBenchConfigTest {
  /** The flags of a valid run, changed one at a time by the cases below. */
  private static final class Flags {
    int concurrency = 4;
    int requests = 16;
    double rate;
    int promptLen = 64;
    int genLen = 16;
    String model;
    String apiKey;
    Duration durationLimit;
    Duration requestTimeout = Duration.ofSeconds(60);

    ServeBenchConfig build() {
      return new ServeBenchConfig(
          Api.OPENAI,
          new Target("127.0.0.1", 8000, ""),
          concurrency,
          requests,
          rate,
          promptLen,
          genLen,
          model,
          apiKey,
          durationLimit,
          requestTimeout,
          0);
    }
  }

  private static Arguments bad(Consumer<Flags> change, String message) {
    return Arguments.of(change, message);
  }

  static Stream<Arguments> badConfigs() {
    return Stream.of(
        bad(f -> f.concurrency = 0, "--concurrency must be in [1, 10000], got 0"),
        bad(f -> f.concurrency = 10_001, "--concurrency must be in [1, 10000], got 10001"),
        bad(f -> f.requests = 0, "--requests must be at least 1, got 0"),
        bad(f -> f.rate = -2, "--rate must be a positive number of requests per second, got -2"),
        bad(f -> f.rate = Double.NaN, "--rate must be a positive number"),
        bad(f -> f.promptLen = 0, "--prompt-len must be in [1, 1000000], got 0"),
        bad(f -> f.genLen = -3, "--gen-len must be in [1, 1000000], got -3"),
        bad(f -> f.model = " ", "--model must not be blank"),
        bad(f -> f.apiKey = "two words", "--api-key must be printable ASCII without spaces"),
        bad(
            f -> f.durationLimit = Duration.ZERO,
            "--duration-limit must be a positive number of seconds, got 0.0"),
        bad(f -> f.requestTimeout = null, "--request-timeout must be a positive number"));
  }

  @ParameterizedTest(name = "{1}")
  @MethodSource("badConfigs")
  void aBadValueNamesItsFlagAndTheRange(Consumer<Flags> change, String message) {
    Flags flags = new Flags();
    flags.build(); // the base is valid
    change.accept(flags);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, flags::build);
    assertTrue(e.getMessage().startsWith(message), e.getMessage());
  }

  @Test
  void apiNamesAreTheLowerCaseOnesAndAnUnknownOneListsThem() {
    assertEquals(Api.FMAAS, Api.parse("fmaas"));
    assertEquals(Api.OPENAI, Api.parse("openai"));
    assertEquals(Api.TGI, Api.parse("tgi"));
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> Api.parse("vllm"));
    assertEquals("--api must be one of fmaas, openai, tgi, got 'vllm'", e.getMessage());
  }

  @Test
  void secondsBecomeDurationsAndNonPositiveOnesNameTheFlag() {
    assertEquals(Duration.ofMillis(2500), ServeBenchConfig.seconds("--duration-limit", 2.5));
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> ServeBenchConfig.seconds("--request-timeout", -1));
    assertEquals(
        "--request-timeout must be a positive number of seconds, got -1.0", e.getMessage());
  }

  @Test
  void targetsParseAsUrlsOrHostPort() {
    assertEquals(new Target("127.0.0.1", 8000, ""), Target.parse("http://127.0.0.1:8000", Api.TGI));
    assertEquals(
        new Target("gw.local", 8000, "/serving"),
        Target.parse("http://gw.local:8000/serving/", Api.OPENAI));
    assertEquals(new Target("localhost", 80, ""), Target.parse("http://localhost", Api.OPENAI));
    assertEquals(new Target("127.0.0.1", 8033, ""), Target.parse("127.0.0.1:8033", Api.FMAAS));
    assertEquals(new Target("::1", 8033, ""), Target.parse("[::1]:8033", Api.FMAAS));
    assertEquals("[::1]:8033", Target.parse("[::1]:8033", Api.FMAAS).display(Api.FMAAS));
    assertEquals(
        "http://gw.local:8000/serving",
        Target.parse("http://gw.local:8000/serving", Api.OPENAI).display(Api.OPENAI));
  }

  static Stream<Arguments> badTargets() {
    return Stream.of(
        Arguments.of("http://", Api.OPENAI, "--target must be a URL such as"),
        Arguments.of("not a url", Api.OPENAI, "--target must be a URL such as"),
        Arguments.of("", Api.TGI, "--target must be a URL such as"),
        Arguments.of("ftp://h:21", Api.TGI, "--target must be a URL such as"),
        Arguments.of("https://h:443", Api.OPENAI, "--target: https is not supported"),
        Arguments.of("http://h:99999", Api.OPENAI, "--target port must be in [1, 65535]"),
        Arguments.of("http://h", Api.FMAAS, "--target needs a port for the fmaas gRPC API"),
        Arguments.of("h:8033/x", Api.FMAAS, "--target must be a URL such as"),
        Arguments.of("http//h:8000", Api.OPENAI, "--target must be a URL such as"),
        Arguments.of("http://h:8033/x", Api.FMAAS, "--target for the fmaas gRPC API is host:port"),
        Arguments.of("http://h:1/v1?x=1", Api.OPENAI, "--target must be a URL such as"));
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("badTargets")
  void aMalformedTargetIsRefusedNamingTheFlag(String text, Api api, String message) {
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> Target.parse(text, api));
    assertTrue(e.getMessage().startsWith(message), e.getMessage());
  }
}
