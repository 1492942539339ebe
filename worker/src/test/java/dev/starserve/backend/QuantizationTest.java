package dev.starserve.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class QuantizationTest {

  @Test
  void parsesTheCliNamesAndRejectsOthersNamingTheAllowedValues() {
    assertEquals(Quantization.NONE, Quantization.fromCliName("none"));
    assertEquals(Quantization.INT8, Quantization.fromCliName("int8"));
    for (String bad : new String[] {"INT8", "q8_0", "", "int4"}) {
      IllegalArgumentException e =
          assertThrows(IllegalArgumentException.class, () -> Quantization.fromCliName(bad));
      assertEquals("quantize must be one of none, int8, got '" + bad + "'", e.getMessage());
    }
  }
}
