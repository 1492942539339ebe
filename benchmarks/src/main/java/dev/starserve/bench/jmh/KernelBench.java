package dev.starserve.bench.jmh;

import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The JMH settings every kernel benchmark shares (JMH's annotations are inherited): throughput in
 * calls per second, one fork, short iterations; the command line overrides any of them ({@code -f},
 * {@code -wi}, {@code -i}, {@code -w}, {@code -r}, {@code -bm}, {@code -tu}).
 *
 * <p>The fork always gets the JVM flags the CPU kernels need, appended to whatever else it is given
 * (by default JMH passes the forks the flags of the JVM that runs it; {@code -jvmArgs} replaces
 * those, never these). They are the kernel-relevant part of the parent pom's {@code
 * starserve.jvm.flags}; {@code JmhBenchmarksTest} checks that they stay a part of it.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(
    value = 1,
    jvmArgsAppend = {
      KernelBench.ADD_VECTOR_MODULE,
      KernelBench.ENABLE_NATIVE_ACCESS,
      KernelBench.ALLOW_UNSAFE_MEMORY_ACCESS
    })
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
public abstract class KernelBench {
  static final String ADD_VECTOR_MODULE = "--add-modules=jdk.incubator.vector";
  static final String ENABLE_NATIVE_ACCESS = "--enable-native-access=ALL-UNNAMED";
  static final String ALLOW_UNSAFE_MEMORY_ACCESS = "--sun-misc-unsafe-memory-access=allow";

  /** The {@code threads} parameter: 0 means every core, as the engine's default. */
  static int computeThreads(int threads) {
    if (threads < 0) {
      throw new IllegalArgumentException("threads must be >= 0 (0 = all cores), got " + threads);
    }
    return threads == 0 ? Runtime.getRuntime().availableProcessors() : threads;
  }
}
