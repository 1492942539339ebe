package dev.starserve.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class KvDTypeTest {

  @Test
  void parsesTheCliNamesAndRejectsOthersNamingTheAllowedValues() {
    assertEquals(KvDType.FP32, KvDType.fromCliName("fp32"));
    assertEquals(KvDType.BF16, KvDType.fromCliName("bf16"));
    assertEquals(4, KvDType.FP32.byteSize());
    assertEquals(2, KvDType.BF16.byteSize());
    for (String bad : new String[] {"fp16", "BF16", "", "float32"}) {
      IllegalArgumentException e =
          assertThrows(IllegalArgumentException.class, () -> KvDType.fromCliName(bad));
      assertEquals("kv_cache_dtype must be one of fp32, bf16, got '" + bad + "'", e.getMessage());
    }
  }
}
