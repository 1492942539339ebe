package dev.starserve.bench.serve;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/** The public API a benchmark run calls, each always streaming. */
public enum Api {
  /** TGIS {@code fmaas.GenerationService/GenerateStream} over gRPC. */
  FMAAS,
  /** OpenAI {@code POST /v1/completions} with {@code stream: true} (server-sent events). */
  OPENAI,
  /** TGI {@code POST /generate_stream} (server-sent events). */
  TGI;

  /** The name on the command line. */
  public String cliName() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** The API named {@code text}; the message names the flag and the allowed values. */
  public static Api parse(String text) {
    for (Api a : values()) {
      if (a.cliName().equals(text)) {
        return a;
      }
    }
    throw new IllegalArgumentException(
        "--api must be one of "
            + Arrays.stream(values()).map(Api::cliName).collect(Collectors.joining(", "))
            + ", got '"
            + text
            + "'");
  }
}
