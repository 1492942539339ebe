package dev.starserve.gateway.route;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.proto.worker.v1.Prompt;
import dev.starserve.proto.worker.v1.TokenIds;
import dev.starserve.proto.worker.v1.WorkerInfo;
import dev.starserve.proto.worker.v1.WorkerState;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class RoutePolicyTest {
  private static WorkerInfo worker(String id, int running, int waiting) {
    return WorkerInfo.newBuilder()
        .setWorkerId(id)
        .setModelId("m")
        .setMaxRunningSequences(10)
        .setRunning(running)
        .setWaiting(waiting)
        .setKvBlocksTotal(100)
        .setKvBlocksUsed(running * 5)
        .setState(WorkerState.READY)
        .build();
  }

  private final RoutePolicy policy =
      new RoutePolicy(RoutePolicy.Settings.DEFAULT, new SplittableRandom(42));

  @Test
  void loadCountsBatchOccupancyPlusKvUsage() {
    WorkerInfo w = worker("a", 4, 2); // (4 + 2 + 1) / 10 + 20 / 100
    assertEquals(0.7 + 0.2, RoutePolicy.load(w, 1), 1e-12);
  }

  @Test
  void powerOfTwoChoicesSpreadsOverEqualWorkersAndAvoidsTheBusyOne() {
    List<WorkerInfo> equal = List.of(worker("a", 0, 0), worker("b", 0, 0), worker("c", 0, 0));
    Map<String, Integer> counts = new HashMap<>();
    Map<String, Integer> inFlight = new HashMap<>();
    for (int i = 0; i < 300; i++) {
      WorkerInfo w = policy.choose(equal, "", id -> inFlight.getOrDefault(id, 0), Set.of());
      counts.merge(w.getWorkerId(), 1, Integer::sum);
      inFlight.merge(w.getWorkerId(), 1, Integer::sum);
    }
    // With the in-flight counts feeding back, P2C keeps the three within a few of each other.
    for (String id : List.of("a", "b", "c")) {
      assertTrue(Math.abs(counts.get(id) - 100) <= 5, "balanced: " + counts);
    }

    List<WorkerInfo> oneBusy = List.of(worker("idle", 0, 0), worker("busy", 10, 20));
    for (int i = 0; i < 50; i++) {
      assertEquals("idle", policy.choose(oneBusy, "", id -> 0, Set.of()).getWorkerId());
    }
  }

  @Test
  void aSharedPrefixSticksToOneWorkerWhateverFollowsIt() {
    List<WorkerInfo> workers =
        List.of(worker("a", 1, 0), worker("b", 1, 0), worker("c", 1, 0), worker("d", 1, 0));
    String shared = "def fibonacci(n):\n    ".repeat(20); // longer than the 256-character key
    String first = null;
    for (int i = 0; i < 20; i++) {
      String key = policy.affinityKey(Prompt.newBuilder().setText(shared + "variant " + i).build());
      String chosen = policy.choose(workers, key, id -> 0, Set.of()).getWorkerId();
      first = first == null ? chosen : first;
      assertEquals(first, chosen);
    }
    // Different prefixes land on different workers (rendezvous hashing spreads keys).
    Set<String> targets = new java.util.HashSet<>();
    for (int i = 0; i < 40; i++) {
      String key = policy.affinityKey(Prompt.newBuilder().setText("prompt number " + i).build());
      targets.add(policy.choose(workers, key, id -> 0, Set.of()).getWorkerId());
    }
    assertEquals(4, targets.size(), "40 distinct prefixes use all four workers");
  }

  @Test
  void tokenPromptsKeyOnTheirFirst64Ids() {
    TokenIds.Builder a = TokenIds.newBuilder();
    TokenIds.Builder b = TokenIds.newBuilder();
    for (int i = 0; i < 64; i++) {
      a.addIds(i);
      b.addIds(i);
    }
    a.addIds(1000);
    b.addIds(2000);
    assertEquals(
        policy.affinityKey(Prompt.newBuilder().setTokenIds(a).build()),
        policy.affinityKey(Prompt.newBuilder().setTokenIds(b).build()));
    assertNotEquals(
        policy.affinityKey(
            Prompt.newBuilder().setTokenIds(TokenIds.newBuilder().addIds(1)).build()),
        policy.affinityKey(
            Prompt.newBuilder().setTokenIds(TokenIds.newBuilder().addIds(2)).build()));
    assertEquals("", policy.affinityKey(Prompt.getDefaultInstance()));
  }

  @Test
  void anOverloadedAffinityTargetLosesToLoad() {
    String key = policy.affinityKey(Prompt.newBuilder().setText("shared prefix").build());
    List<WorkerInfo> idle = List.of(worker("a", 0, 0), worker("b", 0, 0));
    String preferred = policy.choose(idle, key, id -> 0, Set.of()).getWorkerId();
    String other = preferred.equals("a") ? "b" : "a";

    // Within the margin (0.5 load units): affinity still wins.
    List<WorkerInfo> slightly = List.of(worker(preferred, 2, 0), worker(other, 0, 0));
    assertEquals(preferred, policy.choose(slightly, key, id -> 0, Set.of()).getWorkerId());
    // Past it: the less loaded worker takes the request.
    List<WorkerInfo> overloaded = List.of(worker(preferred, 8, 4), worker(other, 0, 0));
    for (int i = 0; i < 20; i++) {
      assertEquals(other, policy.choose(overloaded, key, id -> 0, Set.of()).getWorkerId());
    }
    // Gateway-local in-flight requests count too.
    assertEquals(
        other,
        policy.choose(idle, key, id -> id.equals(preferred) ? 20 : 0, Set.of()).getWorkerId());
  }

  @Test
  void exclusionsDrainingWorkersAndEmptySetsAreRespected() {
    WorkerInfo draining = worker("d", 0, 0).toBuilder().setState(WorkerState.DRAINING).build();
    List<WorkerInfo> workers = List.of(worker("a", 5, 5), worker("b", 0, 0), draining);
    for (int i = 0; i < 20; i++) {
      assertEquals("a", policy.choose(workers, "", id -> 0, Set.of("b")).getWorkerId());
    }
    String key = policy.affinityKey(Prompt.newBuilder().setText("x").build());
    assertEquals("a", policy.choose(workers, key, id -> 0, Set.of("b")).getWorkerId());
    assertNull(policy.choose(workers, "", id -> 0, Set.of("a", "b")));
    assertNull(policy.choose(List.of(), "", id -> 0, Set.of()));
  }
}
