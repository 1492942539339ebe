package dev.starserve.gateway.auth;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.gateway.GatewayLimits;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ApiKeysTest {
  @Test
  void acceptsOnlyListedBearerKeys(@TempDir Path dir) throws Exception {
    Path file = dir.resolve("keys");
    Files.writeString(file, "# comment\nsk-one\n\n   sk-two   \n#sk-three\n");
    ApiKeys keys = ApiKeys.load(file);
    assertTrue(keys.enabled());
    assertTrue(keys.allows("Bearer sk-one"));
    assertTrue(keys.allows("bearer sk-two"), "the scheme is case-insensitive");
    assertFalse(keys.allows("Bearer sk-three"), "commented out");
    assertFalse(keys.allows("Bearer sk-on"), "a prefix is not the key");
    assertFalse(keys.allows("sk-one"), "the Bearer scheme is required");
    assertFalse(keys.allows("Basic sk-one"));
    assertFalse(keys.allows(null));
    assertFalse(keys.allows("Bearer "));
  }

  @Test
  void noKeysMeansAuthenticationIsOff() {
    assertFalse(ApiKeys.none().enabled());
    assertTrue(ApiKeys.none().allows(null));
    assertThrows(IllegalArgumentException.class, () -> ApiKeys.of(Set.of(" ")));
  }

  @Test
  void limitsNameTheFieldAndRange() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> GatewayLimits.defaults().withMaxInFlightPerModel(0));
    assertEquals("maxInFlightPerModel must be >= 1, got 0", e.getMessage());
    assertEquals(256, GatewayLimits.defaults().maxInFlightPerModel());
    assertEquals(4 << 20, GatewayLimits.defaults().maxBodyBytes());
  }
}
