package dev.starserve.generate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.backend.Backend;
import dev.starserve.backend.cpu.CpuBackend;
import dev.starserve.checkpoint.DType;
import dev.starserve.model.GptBigCodeModel;
import dev.starserve.model.ModelDirectory;
import dev.starserve.model.ModelShape;
import dev.starserve.model.RandomModelWriter;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TeacherForcedComparisonTest {
  @TempDir Path tmp;

  @Test
  void aModelAgreesWithItselfEverywhereAndAnUnrelatedOneHardlyAnywhere() throws Exception {
    Path a = tmp.resolve("a");
    Path b = tmp.resolve("b");
    RandomModelWriter.write(a, ModelShape.TINY.config(), DType.F32, 1, 0.1, 1);
    RandomModelWriter.write(b, ModelShape.TINY.config(), DType.F32, 2, 0.1, 1);
    List<int[]> prompts = List.of(new int[] {5, 17, 300}, new int[] {9000, 1, 2, 3, 4, 40000});
    try (ModelDirectory ma = ModelDirectory.open(a);
        ModelDirectory mb = ModelDirectory.open(b);
        Backend ba = new CpuBackend(1);
        Backend bb = new CpuBackend(1)) {
      GptBigCodeModel x = new GptBigCodeModel(ma.config(), ma.weights(), ba);
      GptBigCodeModel y = new GptBigCodeModel(mb.config(), mb.weights(), bb);
      TeacherForcedComparison.Result self = TeacherForcedComparison.compare(x, x, prompts, 10);
      assertEquals(2, self.prompts());
      assertEquals(20, self.positions());
      assertEquals(20, self.greedyMatches());
      assertEquals(0.0, self.maxLogprobDiff(), 0.0);
      assertEquals(0.0, self.maxChosenLogprobDiff(), 0.0);
      TeacherForcedComparison.Result other = TeacherForcedComparison.compare(x, y, prompts, 10);
      assertTrue(other.greedyMatches() <= 2, other.toString());
      assertTrue(other.maxChosenLogprobDiff() > 0.1, other.toString());
      assertTrue(other.maxLogprobDiff() >= other.maxChosenLogprobDiff());
      int[] tooLong = new int[ma.config().nPositions() - 5];
      assertThrows(
          IllegalArgumentException.class,
          () -> TeacherForcedComparison.compare(x, x, List.of(tooLong), 10));
    }
  }
}
