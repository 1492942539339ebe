package dev.starserve.engine;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;

/** A nanosecond clock that moves only when told to, for time limits that tests control exactly. */
final class ManualClock implements LongSupplier {
  private final AtomicLong now = new AtomicLong(1_000_000_000L);

  @Override
  public long getAsLong() {
    return now.get();
  }

  void advance(Duration d) {
    now.addAndGet(d.toNanos());
  }
}
