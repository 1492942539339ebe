package dev.starserve.cli;

import dev.starserve.checkpoint.DType;
import dev.starserve.model.ModelShape;
import dev.starserve.model.RandomModelWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** Writes a random-weight model directory in the exact HuggingFace layout. */
@Command(
    name = "make-model",
    mixinStandardHelpOptions = true,
    description = "Write a gpt_bigcode model directory with random weights (HuggingFace layout).")
final class MakeModelCommand implements Callable<Integer> {
  @Option(
      names = "--shape",
      required = true,
      description = "tiny, tiny_starcoder_py, starcoderbase-1b, santacoder or starcoder")
  String shape;

  @Option(
      names = "--dtype",
      defaultValue = "bfloat16",
      description = "float32, bfloat16 or float16 (default: ${DEFAULT-VALUE})")
  String dtype;

  @Option(names = "--seed", defaultValue = "0", description = "random seed (default: 0)")
  long seed;

  @Option(names = "--std", defaultValue = "0.02", description = "weight std (default: 0.02)")
  double std;

  @Option(names = "--shards", defaultValue = "1", description = "safetensors files (default: 1)")
  int shards;

  @Option(names = "--out", required = true, description = "output directory (new or empty)")
  Path out;

  @Override
  public Integer call() throws java.io.IOException {
    DType dt =
        switch (dtype) {
          case "float32" -> DType.F32;
          case "bfloat16" -> DType.BF16;
          case "float16" -> DType.F16;
          default ->
              throw new IllegalArgumentException(
                  "--dtype must be float32, bfloat16 or float16, got '" + dtype + "'");
        };
    if (shards < 1) {
      throw new IllegalArgumentException("--shards must be >= 1, got " + shards);
    }
    if (!(std > 0)) {
      throw new IllegalArgumentException("--std must be > 0, got " + std);
    }
    ModelShape s = ModelShape.fromCliName(shape);
    long t0 = System.nanoTime();
    RandomModelWriter.write(out, s.config(), dt, seed, std, shards);
    System.err.printf(
        "wrote %s (%s, %s, seed %d) to %s in %.1f s%n",
        s.cliName(),
        dtype,
        shards == 1 ? "1 file" : shards + " shards",
        seed,
        out,
        (System.nanoTime() - t0) / 1e9);
    return 0;
  }
}
