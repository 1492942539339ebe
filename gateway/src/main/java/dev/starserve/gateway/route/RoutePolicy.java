package dev.starserve.gateway.route;

import dev.starserve.proto.worker.v1.ChatMessage;
import dev.starserve.proto.worker.v1.Prompt;
import dev.starserve.proto.worker.v1.WorkerInfo;
import dev.starserve.proto.worker.v1.WorkerState;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.function.ToIntFunction;
import java.util.random.RandomGenerator;

/**
 * Picks a worker for a request: pure, no I/O, no clock.
 *
 * <pre>
 * candidates = READY workers of the model, minus the exclusions (workers this request already tried)
 * if the prompt has an affinity key:
 *     preferred = argmax over candidates of hash(key, worker_id)          (rendezvous hashing)
 *     use it unless load(preferred) &gt; min load + overloadMargin
 * else / overloaded: power of two choices on load
 * load(w) = (running + waiting + gateway in-flight) / max_running_sequences + kv_used / kv_total
 * </pre>
 *
 * Rendezvous hashing moves only the keys of a worker that leaves or joins, so prompts that share a
 * prefix keep hitting the same worker's prefix cache while the set of workers changes.
 */
public final class RoutePolicy {

  /**
   * @param overloadMargin how much more loaded (in load units: one unit is a full batch) than the
   *     least-loaded candidate the affinity target may be before load wins
   * @param keyChars how many leading characters of a text prompt form the affinity key
   * @param keyTokens how many leading token ids of a token prompt form the affinity key
   */
  public record Settings(double overloadMargin, int keyChars, int keyTokens) {
    public static final Settings DEFAULT = new Settings(0.5, 256, 64);

    public Settings {
      if (!(overloadMargin >= 0) || Double.isInfinite(overloadMargin)) {
        throw new IllegalArgumentException(
            "overloadMargin must be a finite number >= 0, got " + overloadMargin);
      }
      if (keyChars < 1) {
        throw new IllegalArgumentException("keyChars must be >= 1, got " + keyChars);
      }
      if (keyTokens < 1) {
        throw new IllegalArgumentException("keyTokens must be >= 1, got " + keyTokens);
      }
    }
  }

  private final Settings settings;
  private final RandomGenerator random;

  public RoutePolicy(Settings settings, RandomGenerator random) {
    this.settings = settings;
    this.random = random;
  }

  public RoutePolicy() {
    this(Settings.DEFAULT, RandomGenerator.getDefault());
  }

  public Settings settings() {
    return settings;
  }

  /** The load figure routing compares; lower is better. */
  public static double load(WorkerInfo w, int inFlight) {
    double batch =
        (double) (w.getRunning() + w.getWaiting() + Math.max(0, inFlight))
            / Math.max(1, w.getMaxRunningSequences());
    double kv = w.getKvBlocksTotal() == 0 ? 0 : (double) w.getKvBlocksUsed() / w.getKvBlocksTotal();
    return batch + kv;
  }

  /**
   * The affinity key of a prompt: its first {@code keyChars} characters (text, FIM prefix, or the
   * chat messages as rendered roles and contents) or first {@code keyTokens} token ids; empty when
   * the prompt is empty.
   */
  public String affinityKey(Prompt prompt) {
    StringBuilder key = new StringBuilder();
    switch (prompt.getKindCase()) {
      case TEXT -> key.append("t:").append(prefix(prompt.getText()));
      case FIM -> key.append("f:").append(prefix(prompt.getFim().getPrefix()));
      case TOKEN_IDS -> {
        key.append("i:");
        var ids = prompt.getTokenIds().getIdsList();
        for (int i = 0; i < Math.min(ids.size(), settings.keyTokens()); i++) {
          key.append(Integer.toUnsignedString(ids.get(i))).append(',');
        }
      }
      case CHAT -> {
        key.append("c:");
        for (ChatMessage m : prompt.getChat().getMessagesList()) {
          key.append(m.getRole()).append('\n').append(m.getContent()).append('\n');
          if (key.length() >= settings.keyChars() + 2) {
            break;
          }
        }
        key.setLength(Math.min(key.length(), settings.keyChars() + 2));
      }
      case KIND_NOT_SET -> {
        return "";
      }
    }
    return key.length() <= 2 ? "" : key.toString();
  }

  /**
   * Chooses among {@code workers} (any states; only READY ones not in {@code excluded} count).
   *
   * @param key the affinity key, or empty for none
   * @param inFlight the gateway's own open requests per worker id
   * @return the worker, or null when no candidate is left
   */
  public WorkerInfo choose(
      List<WorkerInfo> workers, String key, ToIntFunction<String> inFlight, Set<String> excluded) {
    List<WorkerInfo> candidates = new ArrayList<>(workers.size());
    for (WorkerInfo w : workers) {
      if (w.getState() == WorkerState.READY && !excluded.contains(w.getWorkerId())) {
        candidates.add(w);
      }
    }
    if (candidates.isEmpty()) {
      return null;
    }
    if (candidates.size() == 1) {
      return candidates.getFirst();
    }
    if (!key.isEmpty()) {
      WorkerInfo preferred = rendezvous(candidates, key);
      double min = Double.MAX_VALUE;
      for (WorkerInfo w : candidates) {
        min = Math.min(min, load(w, inFlight.applyAsInt(w.getWorkerId())));
      }
      double preferredLoad = load(preferred, inFlight.applyAsInt(preferred.getWorkerId()));
      if (preferredLoad <= min + settings.overloadMargin()) {
        return preferred;
      }
    }
    int a = random.nextInt(candidates.size());
    int b = random.nextInt(candidates.size() - 1);
    if (b >= a) {
      b++;
    }
    WorkerInfo wa = candidates.get(a);
    WorkerInfo wb = candidates.get(b);
    double la = load(wa, inFlight.applyAsInt(wa.getWorkerId()));
    double lb = load(wb, inFlight.applyAsInt(wb.getWorkerId()));
    return la <= lb ? wa : wb;
  }

  /** The candidate with the highest hash of (key, worker id): stable while candidates change. */
  static WorkerInfo rendezvous(List<WorkerInfo> candidates, String key) {
    long keyHash = fnv1a(key);
    WorkerInfo best = null;
    long bestScore = 0;
    for (WorkerInfo w : candidates) {
      long score = mix(keyHash ^ mix(fnv1a(w.getWorkerId())));
      if (best == null
          || Long.compareUnsigned(score, bestScore) > 0
          || score == bestScore && w.getWorkerId().compareTo(best.getWorkerId()) < 0) {
        best = w;
        bestScore = score;
      }
    }
    return best;
  }

  private String prefix(String s) {
    return s.length() <= settings.keyChars() ? s : s.substring(0, settings.keyChars());
  }

  private static long fnv1a(String s) {
    long h = 0xcbf29ce484222325L;
    for (byte b : s.getBytes(StandardCharsets.UTF_8)) {
      h ^= b & 0xff;
      h *= 0x100000001b3L;
    }
    return h;
  }

  // SplitMix64's finalizer: spreads FNV's weak low bits over the whole word.
  private static long mix(long z) {
    z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
    z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
    return z ^ (z >>> 31);
  }
}
