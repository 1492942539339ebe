package dev.starserve.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.starserve.backend.AttentionShape;
import org.junit.jupiter.api.Test;

/** How attention is cut into blocks for real model shapes and shared-memory limits. */
class AttentionPlanTest {
  private static final int H100 = 227 * 1024; // opt-in shared memory per block, sm_90
  private static final int SMALL = 48 * 1024; // without opting in

  private static AttentionShape shape(int nHead, int kvHeads, int hd) {
    return new AttentionShape(nHead, kvHeads, hd, 1f);
  }

  @Test
  void multiQueryModelsPutEveryQueryHeadInOneBlockSoEachKvRowIsLoadedOnce() {
    // StarCoder-15.5B: 48 heads of 128 share one K/V head; one token per block (48 rows).
    assertEquals(new AttentionPlan(48, 1), AttentionPlan.choose(shape(48, 1, 128), H100));
    assertEquals(4 * (2 * 48 * 128 + 32 * 129 + 48 * 32 + 3 * 48), AttentionPlan.smem(1, 48, 128));
    // tiny_starcoder_py: 12 heads of 64, five tokens of a prefill chunk per block (60 rows).
    assertEquals(new AttentionPlan(12, 5), AttentionPlan.choose(shape(12, 1, 64), H100));
    // starcoderbase-1b: 16 heads of 128, four tokens.
    assertEquals(new AttentionPlan(16, 4), AttentionPlan.choose(shape(16, 1, 128), H100));
  }

  @Test
  void multiHeadModelsTakeOneHeadAndUpTo64TokensPerBlock() {
    assertEquals(new AttentionPlan(1, 64), AttentionPlan.choose(shape(16, 16, 128), H100));
  }

  @Test
  void aSmallerSharedMemorySplitsTheHeadsAndThenTheTokens() {
    // 48 heads need 72 KiB: halved to 24 (43 KiB), and only one token fits.
    assertEquals(new AttentionPlan(24, 1), AttentionPlan.choose(shape(48, 1, 128), SMALL));
    // Multi-head, 128 wide: 64 tokens would need 89 KiB; 29 is the most under 48 KiB.
    AttentionPlan mha = AttentionPlan.choose(shape(16, 16, 128), SMALL);
    assertEquals(1, mha.headsPerBlock());
    assertEquals(true, AttentionPlan.smem(mha.groupMax(), 1, 128) <= SMALL);
    assertEquals(true, AttentionPlan.smem(mha.groupMax() + 1, 1, 128) > SMALL);
  }

  @Test
  void aHeadTooWideForAnyBlockIsRefusedWithTheNumbers() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class, () -> AttentionPlan.choose(shape(1, 1, 4096), SMALL));
    assertEquals(
        "attention: head width 4096 needs "
            + AttentionPlan.smem(1, 1, 4096)
            + " bytes of shared memory per block; the GPU allows "
            + SMALL,
        e.getMessage());
  }

  @Test
  void queryGroupsAreRunsOfOneSequenceCappedAtTheGroupSize() {
    // A prefill chunk of 3 (seq 0), a decode token (seq 1), 2 prompt tokens (seq 2), seq 0 again.
    QueryGroups g = QueryGroups.of(new int[] {0, 0, 0, 1, 2, 2, 0}, 7, 2);
    assertEquals(5, g.groups());
    assertArrayEquals(new int[] {0, 2, 3, 4, 6}, java.util.Arrays.copyOf(g.first(), 5));
    assertArrayEquals(new int[] {2, 1, 1, 2, 1}, java.util.Arrays.copyOf(g.count(), 5));
    assertEquals(2, g.largest());
    QueryGroups decode = QueryGroups.of(new int[] {0, 1, 2}, 3, 64);
    assertEquals(3, decode.groups());
    assertEquals(1, decode.largest());
  }
}
