package dev.starserve.cli;

import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import picocli.CommandLine;
import picocli.CommandLine.Model.ArgSpec;
import picocli.CommandLine.Model.OptionSpec;

/**
 * Where an option's value comes from when the command line does not give it: an environment
 * variable, then a config file, then the option's built-in default. So the precedence is flag &gt;
 * environment &gt; config file &gt; default.
 *
 * <p>Names: option {@code --grpc-port} of command {@code worker} is read from the environment as
 * {@code STARSERVE_WORKER_GRPC_PORT} or {@code STARSERVE_GRPC_PORT}, and from the config file (Java
 * properties: {@code key = value} lines, {@code #} comments) as {@code worker.grpc-port} or {@code
 * grpc-port}; the command-qualified name wins. The config file is {@code --config FILE} or {@code
 * STARSERVE_CONFIG}.
 */
final class SettingsDefaultProvider implements CommandLine.IDefaultValueProvider {
  static final String CONFIG_ENV = "STARSERVE_CONFIG";

  private final Map<String, String> env;
  private final Properties file;

  SettingsDefaultProvider(Map<String, String> env, Properties file) {
    this.env = Map.copyOf(env);
    this.file = file;
  }

  /**
   * The provider for a command line: the config file named by {@code --config} in {@code args} or
   * by {@code STARSERVE_CONFIG} in {@code env}, if any.
   *
   * @throws IllegalArgumentException when the config file cannot be read
   */
  static SettingsDefaultProvider forArgs(List<String> args, Map<String, String> env) {
    String path = env.get(CONFIG_ENV);
    for (int i = 0; i < args.size(); i++) {
      String a = args.get(i);
      if (a.equals("--config") && i + 1 < args.size()) {
        path = args.get(i + 1);
      } else if (a.startsWith("--config=")) {
        path = a.substring("--config=".length());
      }
    }
    Properties props = new Properties();
    if (path != null && !path.isBlank()) {
      Path p = Path.of(path);
      try (Reader r = Files.newBufferedReader(p, StandardCharsets.UTF_8)) {
        props.load(r);
      } catch (IOException e) {
        throw new IllegalArgumentException(
            "cannot read the config file " + p + " (--config / " + CONFIG_ENV + "): " + e, e);
      }
    }
    return new SettingsDefaultProvider(env, props);
  }

  @Override
  public String defaultValue(ArgSpec arg) {
    if (!(arg instanceof OptionSpec option) || option.usageHelp() || option.versionHelp()) {
      return null;
    }
    String key = option.longestName().replaceFirst("^-+", "");
    if (key.equals("config")) {
      return null;
    }
    String command = option.command() == null ? null : option.command().name();
    for (String k : command == null ? List.of(key) : List.of(command + "." + key, key)) {
      String fromEnv = env.get(envName(k));
      if (fromEnv != null) {
        return fromEnv;
      }
    }
    for (String k : command == null ? List.of(key) : List.of(command + "." + key, key)) {
      String fromFile = file.getProperty(k);
      if (fromFile != null) {
        return fromFile.strip();
      }
    }
    return null;
  }

  /** {@code worker.grpc-port} → {@code STARSERVE_WORKER_GRPC_PORT}. */
  static String envName(String key) {
    return "STARSERVE_" + key.toUpperCase(Locale.ROOT).replace('-', '_').replace('.', '_');
  }
}
