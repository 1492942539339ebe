package dev.starserve.gateway.api;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.ArrayList;
import java.util.List;

/**
 * Typed, range-checked reads of a JSON request object. Every failure is an {@link InvalidRequest}
 * whose message names the field (with its prefix, e.g. {@code parameters.top_p}) and the range.
 */
public final class Params {
  private final JsonObject json;
  private final String prefix;

  public Params(JsonObject json, String prefix) {
    this.json = json == null ? new JsonObject() : json;
    this.prefix = prefix;
  }

  public String name(String field) {
    return prefix + field;
  }

  public boolean has(String field) {
    return json.getValue(field) != null;
  }

  public Object raw(String field) {
    return json.getValue(field);
  }

  public String string(String field, String fallback) {
    Object v = json.getValue(field);
    if (v == null) {
      return fallback;
    }
    if (!(v instanceof String s)) {
      throw new InvalidRequest(name(field), name(field) + " must be a string");
    }
    return s;
  }

  public String requiredString(String field) {
    String s = string(field, null);
    if (s == null) {
      throw new InvalidRequest(name(field), name(field) + " is required");
    }
    return s;
  }

  public boolean bool(String field, boolean fallback) {
    Object v = json.getValue(field);
    if (v == null) {
      return fallback;
    }
    if (!(v instanceof Boolean b)) {
      throw new InvalidRequest(name(field), name(field) + " must be true or false");
    }
    return b;
  }

  /** An integer in [min, max], or fallback when absent or null. */
  public Long integer(String field, Long fallback, long min, long max) {
    Object v = json.getValue(field);
    if (v == null) {
      return fallback;
    }
    long value = asLong(field, v);
    if (value < min || value > max) {
      throw new InvalidRequest(
          name(field), name(field) + " must be in [" + min + ", " + max + "], got " + value);
    }
    return value;
  }

  /**
   * A number in the range given by min/max and whether each end is open; fallback when absent or
   * null.
   */
  public Double number(
      String field, Double fallback, double min, boolean minOpen, double max, boolean maxOpen) {
    Object v = json.getValue(field);
    if (v == null) {
      return fallback;
    }
    if (!(v instanceof Number n)) {
      throw new InvalidRequest(name(field), name(field) + " must be a number");
    }
    double d = n.doubleValue();
    boolean ok =
        !Double.isNaN(d) && (minOpen ? d > min : d >= min) && (maxOpen ? d < max : d <= max);
    if (!ok) {
      throw new InvalidRequest(
          name(field),
          name(field)
              + " must be in "
              + (minOpen ? "(" : "[")
              + fmt(min)
              + ", "
              + fmt(max)
              + (maxOpen ? ")" : "]")
              + ", got "
              + fmt(d));
    }
    return d;
  }

  /** A string or an array of strings; each non-empty and at most maxChars, at most maxCount. */
  public List<String> stringOrList(String field, int maxCount, int maxChars) {
    Object v = json.getValue(field);
    List<String> out = new ArrayList<>();
    if (v == null) {
      return out;
    }
    if (v instanceof String s) {
      out.add(s);
    } else if (v instanceof JsonArray a) {
      for (Object o : a) {
        if (!(o instanceof String s)) {
          throw new InvalidRequest(
              name(field), name(field) + " must be a string or an array of strings");
        }
        out.add(s);
      }
    } else {
      throw new InvalidRequest(
          name(field), name(field) + " must be a string or an array of strings");
    }
    if (out.size() > maxCount) {
      throw new InvalidRequest(
          name(field),
          name(field) + " may hold at most " + maxCount + " sequences, got " + out.size());
    }
    for (String s : out) {
      if (s.isEmpty() || s.length() > maxChars) {
        throw new InvalidRequest(
            name(field),
            name(field)
                + " sequences must be 1 to "
                + maxChars
                + " characters long, got "
                + s.length());
      }
    }
    return out;
  }

  public JsonObject object(String field) {
    Object v = json.getValue(field);
    if (v == null) {
      return null;
    }
    if (!(v instanceof JsonObject o)) {
      throw new InvalidRequest(name(field), name(field) + " must be an object");
    }
    return o;
  }

  private long asLong(String field, Object v) {
    if (v instanceof Integer || v instanceof Long || v instanceof Short || v instanceof Byte) {
      return ((Number) v).longValue();
    }
    if (v instanceof Number n) {
      double d = n.doubleValue();
      if (d == Math.rint(d) && Math.abs(d) < 1e15) {
        return (long) d;
      }
    }
    throw new InvalidRequest(name(field), name(field) + " must be an integer");
  }

  private static String fmt(double d) {
    return d == Math.rint(d) && Math.abs(d) < 1e15 ? Long.toString((long) d) : Double.toString(d);
  }
}
