package dev.starserve.backend.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.backend.KvDType;
import dev.starserve.backend.TestTensors;
import dev.starserve.checkpoint.Bf16;
import org.junit.jupiter.api.Test;

class HostKvCacheTest {

  @Test
  void bf16CacheStoresRoundedBitsAndReadsThemBackWidened() {
    HostKvCache kv = HostKvCache.allocate(2, 3, 4, 5, KvDType.BF16);
    HostKvCache.Bf16Cache b = assertInstanceOf(HostKvCache.Bf16Cache.class, kv);
    assertEquals(KvDType.BF16, kv.dtype());
    assertEquals(3 * 4 * 5, b.keys(1).length);
    float[] src = TestTensors.randomArray(3, 12, 1.0);
    src[7] = Float.intBitsToFloat(0x3f81_8000); // a tie: rounds up to the even 0x3f82
    kv.storeKey(1, 20, src, 2, 10);
    kv.storeValue(1, 40, src, 0, 12);
    int changed = 0;
    for (int c = 0; c < 10; c++) {
      assertEquals(Bf16.round(src[2 + c]), b.keys(1)[20 + c]);
      assertEquals(Bf16.widen(Bf16.round(src[2 + c])), kv.key(1, 20 + c));
      changed += kv.key(1, 20 + c) != src[2 + c] ? 1 : 0;
    }
    assertEquals((short) 0x3f82, b.keys(1)[25]);
    for (int c = 0; c < 12; c++) {
      assertEquals(Bf16.widen(Bf16.round(src[c])), kv.value(1, 40 + c));
    }
    assertTrue(changed > 0, "random floats must lose bits in bf16");
    assertEquals(0, b.keys(0)[20], "other layers untouched");
    assertEquals(0f, kv.key(1, 19));
    assertEquals(0f, kv.key(1, 30));
  }

  @Test
  void fp32CacheStoresValuesExactly() {
    HostKvCache kv = HostKvCache.allocate(1, 2, 4, 3, KvDType.FP32);
    HostKvCache.F32Cache f = assertInstanceOf(HostKvCache.F32Cache.class, kv);
    assertEquals(KvDType.FP32, kv.dtype());
    float[] src = TestTensors.randomArray(9, 6, 1.0);
    kv.storeKey(0, 3, src, 0, 6);
    kv.storeValue(0, 0, src, 3, 3);
    for (int c = 0; c < 6; c++) {
      assertEquals(src[c], f.keys(0)[3 + c]);
      assertEquals(src[c], kv.key(0, 3 + c));
    }
    assertEquals(src[4], kv.value(0, 1));
    assertNotEquals(0f, src[4]);
  }

  @Test
  void rejectsNonPositiveAndOversizedShapesForEitherDtype() {
    for (KvDType dt : KvDType.values()) {
      IllegalArgumentException e =
          assertThrows(IllegalArgumentException.class, () -> HostKvCache.allocate(1, 0, 16, 8, dt));
      assertTrue(e.getMessage().contains("blocks=0"), e.getMessage());
      e =
          assertThrows(
              IllegalArgumentException.class, () -> HostKvCache.allocate(1, 1 << 20, 256, 64, dt));
      assertTrue(e.getMessage().contains("too large"), e.getMessage());
    }
  }
}
