package dev.starserve.gateway.auth;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * The API keys clients must present ({@code Authorization: Bearer <key>} over HTTP, the {@code
 * authorization} metadata over gRPC). {@link #none()} accepts every request.
 */
public final class ApiKeys {
  private static final String BEARER = "bearer ";
  private final List<byte[]> keys;

  private ApiKeys(List<byte[]> keys) {
    this.keys = keys;
  }

  /** No keys configured: authentication is off. */
  public static ApiKeys none() {
    return new ApiKeys(List.of());
  }

  public static ApiKeys of(Set<String> keys) {
    List<byte[]> bytes = new ArrayList<>();
    for (String key : keys) {
      if (key.isBlank()) {
        throw new IllegalArgumentException("an API key must not be blank");
      }
      bytes.add(key.getBytes(StandardCharsets.UTF_8));
    }
    return new ApiKeys(List.copyOf(bytes));
  }

  /**
   * Reads one key per line; blank lines and lines starting with {@code #} are skipped, surrounding
   * whitespace is trimmed. A file without keys is an error (it would silently turn auth off).
   */
  public static ApiKeys load(Path file) throws IOException {
    List<byte[]> bytes = new ArrayList<>();
    for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
      String key = line.strip();
      if (!key.isEmpty() && !key.startsWith("#")) {
        bytes.add(key.getBytes(StandardCharsets.UTF_8));
      }
    }
    if (bytes.isEmpty()) {
      throw new IOException("no API keys in " + file + " (one key per line, # for comments)");
    }
    return new ApiKeys(List.copyOf(bytes));
  }

  public boolean enabled() {
    return !keys.isEmpty();
  }

  /** Whether an {@code Authorization} header value (may be null) carries an accepted key. */
  public boolean allows(String authorization) {
    if (keys.isEmpty()) {
      return true;
    }
    if (authorization == null
        || authorization.length() <= BEARER.length()
        || !authorization.regionMatches(true, 0, BEARER, 0, BEARER.length())) {
      return false;
    }
    byte[] given =
        authorization.substring(BEARER.length()).strip().getBytes(StandardCharsets.UTF_8);
    boolean ok = false;
    // NOTE: compare against every key in constant time so timing does not reveal a prefix.
    for (byte[] key : keys) {
      ok |= MessageDigest.isEqual(key, given);
    }
    return ok;
  }
}
