package dev.starserve.cli;

import dev.starserve.gateway.GatewayLimits;
import dev.starserve.gateway.auth.ApiKeys;
import java.io.IOException;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** The public side of a gateway: ports, API keys and the limits checked at the edge. */
final class GatewayOptions {
  @Option(
      names = "--host",
      defaultValue = "127.0.0.1",
      description = "address the public HTTP and gRPC servers bind (default: ${DEFAULT-VALUE})")
  String host;

  @Option(
      names = "--http-port",
      defaultValue = "8000",
      description =
          "OpenAI and TGI HTTP APIs and /metrics; 0 for any free port (default: ${DEFAULT-VALUE})")
  int httpPort;

  @Option(
      names = "--grpc-port",
      defaultValue = "8033",
      description =
          "fmaas (TGIS) gRPC API, health and reflection; 0 for any free port (default:"
              + " ${DEFAULT-VALUE})")
  int grpcPort;

  @Option(
      names = "--api-keys",
      paramLabel = "FILE",
      description =
          "file with one API key per line (# comments); when given, every request but /health,"
              + " /metrics and gRPC health needs one (Authorization: Bearer KEY)")
  Path apiKeys;

  @Option(
      names = "--max-body-bytes",
      defaultValue = "4194304",
      description = "largest HTTP request body (default: ${DEFAULT-VALUE})")
  int maxBodyBytes;

  @Option(
      names = "--max-prompt-chars",
      defaultValue = "400000",
      description = "longest prompt text (default: ${DEFAULT-VALUE})")
  int maxPromptChars;

  @Option(
      names = "--max-prompt-tokens",
      defaultValue = "8192",
      description =
          "most prompt tokens (also capped by each model's context) (default: ${DEFAULT-VALUE})")
  int maxPromptTokens;

  @Option(
      names = "--max-new-tokens",
      defaultValue = "4096",
      description =
          "largest max_new_tokens / max_tokens a request may ask (default: ${DEFAULT-VALUE})")
  int maxNewTokens;

  @Option(
      names = "--max-n",
      defaultValue = "16",
      description = "most samples per request (default: ${DEFAULT-VALUE})")
  int maxN;

  @Option(
      names = "--max-stop-sequences",
      defaultValue = "16",
      description = "most stop sequences per request (default: ${DEFAULT-VALUE})")
  int maxStopSequences;

  @Option(
      names = "--max-stop-sequence-chars",
      defaultValue = "256",
      description = "longest stop sequence (default: ${DEFAULT-VALUE})")
  int maxStopSequenceChars;

  @Option(
      names = "--max-in-flight-per-model",
      defaultValue = "256",
      description =
          "sequences the gateway admits per model at once; beyond it 429 / RESOURCE_EXHAUSTED"
              + " with Retry-After (default: ${DEFAULT-VALUE})")
  int maxInFlightPerModel;

  GatewayLimits limits() {
    GatewayLimits d = GatewayLimits.defaults();
    return new GatewayLimits(
        maxBodyBytes,
        maxPromptChars,
        maxPromptTokens,
        maxNewTokens,
        maxN,
        maxStopSequences,
        maxStopSequenceChars,
        d.maxTopLogprobs(),
        maxInFlightPerModel,
        d.retryAfterSeconds());
  }

  ApiKeys keys() throws IOException {
    return apiKeys == null ? ApiKeys.none() : ApiKeys.load(apiKeys);
  }
}
