package dev.starserve.cli;

import picocli.CommandLine.Option;

/**
 * {@code --config FILE}, for the server commands. The file is read before parsing (by {@link
 * SettingsDefaultProvider}); this option only makes the flag legal and documented.
 */
final class ConfigFileOption {
  @Option(
      names = "--config",
      paramLabel = "FILE",
      description =
          "settings file (Java properties: grpc-port = 8033, or worker.grpc-port = 8033); flags"
              + " override environment variables (STARSERVE_GRPC_PORT), which override the file")
  String config;
}
