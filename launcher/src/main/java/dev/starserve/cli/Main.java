package dev.starserve.cli;

import java.util.List;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code starserve} command line. */
@Command(
    name = "starserve",
    mixinStandardHelpOptions = true,
    version = "StarServe 0.1.0",
    description = "Serves StarCoder-family (gpt_bigcode) models.",
    subcommands = {
      ServeCommand.class,
      WorkerCommand.class,
      GatewayCommand.class,
      MakeModelCommand.class,
      TokenizeCommand.class,
      GenerateCommand.class,
      BenchCommand.class,
      CommandLine.HelpCommand.class
    })
public final class Main implements Runnable {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(System.err);
  }

  public static void main(String[] args) {
    System.exit(run(args));
  }

  /** Runs a command line and returns its exit code (tests call this). */
  public static int run(String... args) {
    CommandLine cl = new CommandLine(new Main());
    try {
      cl.setDefaultValueProvider(SettingsDefaultProvider.forArgs(List.of(args), System.getenv()));
    } catch (IllegalArgumentException e) {
      cl.getErr().println("error: " + e.getMessage());
      return 2;
    }
    cl.setExecutionExceptionHandler(
        (ex, cmd, parsed) -> {
          // A user error (bad model directory, bad prompt) is a message, not a stack trace.
          if (ex instanceof IllegalArgumentException
              || ex instanceof dev.starserve.checkpoint.CheckpointException
              || ex instanceof dev.starserve.text.TokenizerException
              || ex instanceof java.io.IOException) {
            cmd.getErr().println("error: " + ex.getMessage());
            return 2;
          }
          throw ex;
        });
    return cl.execute(args);
  }
}
