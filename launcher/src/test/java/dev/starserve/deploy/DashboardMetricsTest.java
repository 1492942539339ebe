package dev.starserve.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.starserve.backend.KvDType;
import dev.starserve.backend.cpu.CpuBackend;
import dev.starserve.checkpoint.DType;
import dev.starserve.engine.Engine;
import dev.starserve.engine.EngineConfig;
import dev.starserve.engine.sched.SchedulerConfig;
import dev.starserve.gateway.metrics.GatewayMetrics;
import dev.starserve.gateway.metrics.RequestTimer;
import dev.starserve.model.GptBigCodeModel;
import dev.starserve.model.ModelDirectory;
import dev.starserve.model.ModelShape;
import dev.starserve.model.RandomModelWriter;
import dev.starserve.text.Tokenizer;
import dev.starserve.worker.metrics.WorkerMetrics;
import io.prometheus.metrics.model.snapshots.MetricSnapshot;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Grafana dashboard {@code deploy/grafana/starserve-dashboard.json} against the metrics the
 * gateway and the worker really expose: every metric name in every panel query (and variable query)
 * must be a sample name of the Prometheus text exposition of {@link GatewayMetrics} or {@link
 * WorkerMetrics} (JVM metrics included), every label it matches or groups a StarServe metric by
 * must be one of that metric's labels or a target label Prometheus adds, and every {@code
 * starserve_} metric the code registers must be on the dashboard.
 */
class DashboardMetricsTest {
  static final String DASHBOARD = "deploy/grafana/starserve-dashboard.json";

  /** Labels Prometheus attaches at scrape time (static, Kubernetes and Docker configs). */
  static final Set<String> TARGET_LABELS =
      Set.of("job", "instance", "namespace", "pod", "container", "service", "node");

  /** Aggregation operators: {@code sum by (l) (x)} as well as {@code sum(x) by (l)}. */
  static final Set<String> AGGREGATIONS =
      words(
          "sum min max avg group stddev stdvar count count_values bottomk topk quantile limitk"
              + " limit_ratio");

  /** PromQL functions, the aggregation operators and Grafana's variable query functions. */
  static final Set<String> FUNCTIONS =
      words(
          String.join(" ", AGGREGATIONS)
              + " abs absent absent_over_time ceil changes clamp clamp_max clamp_min"
              + " day_of_month day_of_week day_of_year days_in_month delta deriv exp floor"
              + " histogram_avg histogram_count histogram_fraction histogram_quantile"
              + " histogram_stddev histogram_stdvar histogram_sum holt_winters"
              + " double_exponential_smoothing hour idelta increase irate label_join"
              + " label_replace ln log2 log10 minute month predict_linear rate resets round"
              + " scalar sgn sort sort_desc sort_by_label sort_by_label_desc sqrt time timestamp"
              + " vector year avg_over_time min_over_time max_over_time sum_over_time"
              + " count_over_time quantile_over_time stddev_over_time stdvar_over_time"
              + " last_over_time present_over_time mad_over_time acos acosh asin asinh atan"
              + " atanh cos cosh sin sinh tan tanh deg pi rad"
              + " label_values label_names metrics query_result");

  /** Keywords followed by a parenthesized list of label names. */
  static final Set<String> LABEL_LIST_KEYWORDS =
      Set.of("by", "without", "on", "ignoring", "group_left", "group_right");

  static final Set<String> KEYWORDS =
      Set.of("bool", "offset", "and", "or", "unless", "atan2", "inf", "nan", "start", "end");

  static final Pattern TOKEN =
      Pattern.compile(
          "(?<str>\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`)"
              + "|(?<var>\\$\\{[^}]*}|\\$\\w+|\\[\\[[^]]*]])"
              + "|(?<range>\\[[^]]*])"
              + "|(?<num>(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][+-]?\\d+)?(?:(?:ms|[smhdwy])\\d*)*)"
              + "|(?<id>[A-Za-z_:][A-Za-z0-9_:]*)"
              + "|(?<other>\\S)",
          Pattern.DOTALL);

  static final Pattern LABEL_VALUES =
      Pattern.compile("\\s*label_values\\((.*),\\s*([A-Za-z_]\\w*)\\s*\\)\\s*", Pattern.DOTALL);

  static JsonNode dashboard;
  static Exposition gateway;
  static Exposition worker;

  @BeforeAll
  static void scrapeBoth(@TempDir Path tmp) throws IOException {
    dashboard = new ObjectMapper().readTree(Files.readString(repoFile(DASHBOARD)));
    GatewayMetrics g = new GatewayMetrics(true);
    exerciseEveryGatewayMetric(g);
    gateway = Exposition.of(g.registry().scrape(), new String(g.scrape(), StandardCharsets.UTF_8));
    worker = scrapeWorker(tmp);
  }

  /** Gives every labelled gateway metric a series: the exposition leaves out empty families. */
  private static void exerciseEveryGatewayMetric(GatewayMetrics g) {
    RequestTimer t = g.startRequest("openai_completions", "m");
    t.tokens(1);
    t.tokens(1);
    t.finished(3, 2);
    t.end(GatewayMetrics.Outcome.SUCCESS);
    g.retry("m");
    g.failover("m");
    g.queueDepth("m", 1);
    g.workers("ready", 1);
    g.inFlight("m", 1);
  }

  private static Exposition scrapeWorker(Path tmp) throws IOException {
    Path dir = tmp.resolve("tiny");
    RandomModelWriter.write(dir, ModelShape.TINY.config(), DType.F32, 1, 0.1, 1);
    try (ModelDirectory md = ModelDirectory.open(dir);
        CpuBackend backend = new CpuBackend(1)) {
      GptBigCodeModel model = new GptBigCodeModel(md.config(), md.weights(), backend);
      Tokenizer tokenizer = Tokenizer.load(md.tokenizerJson(), md.tokenizerConfigJson());
      EngineConfig config =
          new EngineConfig(16, 32, KvDType.FP32, new SchedulerConfig(2, 64), true);
      try (Engine engine = new Engine(model, tokenizer, md.eosTokenIds(), config)) {
        WorkerMetrics w = new WorkerMetrics(engine, true);
        w.onStep(1, 8, 1_000_000, 1);
        w.requestEnded("length");
        return Exposition.of(w.registry().scrape(), new String(w.scrape(), StandardCharsets.UTF_8));
      }
    }
  }

  @Test
  void isAnImportableDashboardWithADatasourceVariable() {
    assertEquals(39, dashboard.path("schemaVersion").asInt(), "schemaVersion");
    assertFalse(dashboard.path("uid").asText().isEmpty(), "uid");
    assertFalse(dashboard.path("title").asText().isEmpty(), "title");
    JsonNode ds = variable("datasource");
    assertEquals("datasource", ds.path("type").asText());
    assertEquals("prometheus", ds.path("query").asText());
    Set<Integer> ids = new HashSet<>();
    for (JsonNode p : allPanels()) {
      assertTrue(ids.add(p.path("id").asInt(-1)), "duplicate or missing panel id " + p);
      JsonNode pos = p.path("gridPos");
      assertTrue(pos.path("w").asInt() > 0 && pos.path("h").asInt() > 0, "gridPos of " + p);
      assertTrue(pos.path("x").asInt() + pos.path("w").asInt() <= 24, "gridPos of " + p);
    }
  }

  @Test
  void everyPanelHasAQueryOnTheDatasourceVariableAndAUnit() {
    List<JsonNode> panels = queryPanels();
    assertTrue(panels.size() >= 20, "panels: " + panels.size());
    for (JsonNode p : panels) {
      String title = p.path("title").asText();
      assertFalse(title.isEmpty(), "a panel without title: " + p);
      assertTrue(Set.of("timeseries", "stat").contains(p.path("type").asText()), title + ": type");
      assertEquals("${datasource}", p.path("datasource").path("uid").asText(), title);
      assertFalse(
          p.path("fieldConfig").path("defaults").path("unit").asText().isEmpty(),
          title + ": no unit");
      int queries = 0;
      Set<String> refIds = new HashSet<>();
      for (JsonNode t : p.path("targets")) {
        assertTrue(refIds.add(t.path("refId").asText()), title + ": refId twice");
        assertEquals("${datasource}", t.path("datasource").path("uid").asText(), title);
        if (!t.path("expr").asText().isBlank()) {
          queries++;
        }
      }
      assertTrue(queries > 0, title + ": no target with an expr");
    }
  }

  @Test
  void everyMetricAndLabelInTheQueriesIsExposed() {
    List<String> problems = new ArrayList<>();
    for (Map.Entry<String, String> q : queries()) {
      Query query = parse(q.getValue(), problems, q.getKey());
      Set<String> labelsOfAll = new HashSet<>(TARGET_LABELS);
      for (Use use : query.uses()) {
        Exposition e = exposing(use.name());
        if (e == null) {
          problems.add(q.getKey() + ": unknown metric " + use.name());
          continue;
        }
        Set<String> labels = e.labels(e.family(use.name()));
        labelsOfAll.addAll(labels);
        if (!use.name().startsWith("starserve_")) {
          continue; // a JVM metric: its name is checked, its labels are the client's business
        }
        for (String label : use.labels()) {
          if (!TARGET_LABELS.contains(label) && !labels.contains(label)) {
            problems.add(q.getKey() + ": " + use.name() + " has no label " + label + " " + labels);
          }
        }
      }
      for (String label : query.grouping()) {
        if (!labelsOfAll.contains(label)) {
          problems.add(q.getKey() + ": no metric of the query has the label " + label);
        }
      }
    }
    assertTrue(
        problems.isEmpty(),
        "the dashboard queries what the code does not expose:\n "
            + String.join("\n  ", problems)
            + "\nexposed:"
            + gateway.samples()
            + ""
            + worker.samples());
  }

  private static Exposition exposing(String sample) {
    for (Exposition e : List.of(gateway, worker)) {
      if (e.family(sample) != null) {
        return e;
      }
    }
    return null;
  }

  @Test
  void everyStarServeMetricIsOnTheDashboard() {
    Set<String> used = new TreeSet<>();
    List<String> ignored = new ArrayList<>();
    for (Map.Entry<String, String> q : queries()) {
      for (Use u : parse(q.getValue(), ignored, q.getKey()).uses()) {
        Exposition e = exposing(u.name());
        if (e != null) {
          used.add(e.family(u.name()));
        }
      }
    }
    Set<String> missing = new TreeSet<>();
    for (Exposition e : List.of(gateway, worker)) {
      for (String family : e.families().keySet()) {
        if (family.startsWith("starserve_") && !used.contains(family)) {
          missing.add(family);
        }
      }
    }
    assertTrue(missing.isEmpty(), "metrics no panel shows: " + missing);
  }

  @Test
  void theParserFindsMetricsAndLabelsAndRejectsUnknownFunctions() {
    List<String> problems = new ArrayList<>();
    Query q =
        parse(
            "histogram_quantile(0.9, sum by (le, api) (rate(a_bucket{api=~\"x|y\","
                + " model=\"b{c} d\"}[$__rate_interval] offset 1h30m))) / on(instance)"
                + " group_left b_total{} > bool 1e3 unless sum(c) without (job) * $v",
            problems,
            "q");
    assertEquals(List.of(), problems);
    assertEquals(List.of("a_bucket", "b_total", "c"), q.uses().stream().map(Use::name).toList());
    assertEquals(Set.of("api", "model"), q.uses().get(0).labels());
    assertEquals(Set.of(), q.uses().get(1).labels());
    assertEquals(Set.of("le", "api", "instance", "job"), q.grouping());
    parse("sum(rat(a[5m]))", problems, "q");
    assertEquals(List.of("q: unknown function rat"), problems);
  }

  // ---- the dashboard

  private static JsonNode variable(String name) {
    for (JsonNode v : dashboard.path("templating").path("list")) {
      if (v.path("name").asText().equals(name)) {
        return v;
      }
    }
    return fail("no variable " + name);
  }

  private static List<JsonNode> allPanels() {
    List<JsonNode> out = new ArrayList<>();
    collect(dashboard.path("panels"), out);
    return out;
  }

  private static void collect(JsonNode panels, List<JsonNode> out) {
    for (JsonNode p : panels) {
      out.add(p);
      collect(p.path("panels"), out); // collapsed rows carry their panels
    }
  }

  private static List<JsonNode> queryPanels() {
    return allPanels().stream().filter(p -> !p.path("type").asText().equals("row")).toList();
  }

  /** Every PromQL of the dashboard, keyed by where it is: panel targets and variable queries. */
  private static List<Map.Entry<String, String>> queries() {
    List<Map.Entry<String, String>> out = new ArrayList<>();
    for (JsonNode p : queryPanels()) {
      for (JsonNode t : p.path("targets")) {
        out.add(
            Map.entry(
                "panel "
                    + p.path("id").asInt()
                    + " '"
                    + p.path("title").asText()
                    + "' "
                    + t.path("refId").asText(),
                t.path("expr").asText()));
      }
    }
    for (JsonNode v : dashboard.path("templating").path("list")) {
      if (v.path("type").asText().equals("query")) {
        JsonNode q = v.path("query");
        String text = q.isTextual() ? q.asText() : q.path("query").asText();
        if (v.has("definition")) {
          assertEquals(text, v.path("definition").asText(), "definition of " + v.path("name"));
        }
        Matcher lv = LABEL_VALUES.matcher(text);
        // label_values(X, l) asks for the values of l among the series of X
        out.add(
            Map.entry(
                "variable " + v.path("name").asText(),
                lv.matches() ? "count by (" + lv.group(2) + ") (" + lv.group(1) + ")" : text));
      }
    }
    return out;
  }

  // ---- PromQL

  /** A metric selector in a query and the label names of its matcher. */
  record Use(String name, Set<String> labels) {}

  /** The metrics of a query and the labels of its by/without/on/ignoring/group_x lists. */
  record Query(List<Use> uses, Set<String> grouping) {}

  /**
   * The metrics of a PromQL expression: identifiers that are no function, keyword or label. An
   * identifier followed by {@code (} that is no known function is reported in {@code problems}.
   */
  static Query parse(String expr, List<String> problems, String where) {
    List<String[]> tokens = new ArrayList<>(); // {kind, text}
    Matcher m = TOKEN.matcher(expr);
    while (m.find()) {
      for (String kind : new String[] {"str", "var", "range", "num", "id", "other"}) {
        if (m.group(kind) != null) {
          tokens.add(new String[] {kind, m.group(kind)});
          break;
        }
      }
    }
    List<Use> uses = new ArrayList<>();
    Set<String> grouping = new TreeSet<>();
    for (int i = 0; i < tokens.size(); i++) {
      if (!tokens.get(i)[0].equals("id")) {
        continue;
      }
      String text = tokens.get(i)[1];
      String lower = text.toLowerCase(Locale.ROOT);
      String next = i + 1 < tokens.size() ? tokens.get(i + 1)[1] : "";
      boolean call =
          next.equals("(")
              || (AGGREGATIONS.contains(text) && Set.of("by", "without").contains(next));
      if (LABEL_LIST_KEYWORDS.contains(lower)) {
        if (call) {
          i = labelList(tokens, i + 1, grouping);
        }
      } else if (KEYWORDS.contains(lower)) {
        continue;
      } else if (call) {
        if (!FUNCTIONS.contains(text)) {
          problems.add(where + ": unknown function " + text);
        }
      } else {
        Set<String> labels = new TreeSet<>();
        if (i + 1 < tokens.size() && tokens.get(i + 1)[1].equals("{")) {
          i = matcher(tokens, i + 1, labels);
        }
        uses.add(new Use(text, labels));
      }
    }
    return new Query(uses, grouping);
  }

  /** Reads {@code ( a, b )} from {@code open}; returns the index of {@code )}. */
  private static int labelList(List<String[]> tokens, int open, Set<String> labels) {
    int i = open + 1;
    while (i < tokens.size() && !tokens.get(i)[1].equals(")")) {
      if (tokens.get(i)[0].equals("id")) {
        labels.add(tokens.get(i)[1]);
      }
      i++;
    }
    return i;
  }

  /** Reads {@code { a="x", b!~"y" }} from {@code open}; returns the index of <code>}</code>. */
  private static int matcher(List<String[]> tokens, int open, Set<String> labels) {
    int i = open + 1;
    while (i < tokens.size() && !tokens.get(i)[1].equals("}")) {
      if (tokens.get(i)[0].equals("id")) {
        labels.add(tokens.get(i)[1]);
      }
      i++;
    }
    return i;
  }

  // ---- the exposition

  /** The sample names of a text exposition, their families and the families' label names. */
  record Exposition(
      Set<String> samples, Map<String, String> sampleFamily, Map<String, Set<String>> families) {
    static Exposition of(Iterable<MetricSnapshot> snapshots, String text) {
      Map<String, String> typeOf = new HashMap<>();
      Set<String> samples = new TreeSet<>();
      for (String line : text.split("\n")) {
        if (line.startsWith("# TYPE ")) {
          String[] f = line.split(" ");
          typeOf.put(f[2], f[3]);
        } else if (!line.isBlank() && !line.startsWith("#")) {
          samples.add(line.split("[{ ]", 2)[0]);
        }
      }
      Map<String, String> sampleFamily = new HashMap<>();
      for (String s : samples) {
        String family = typeOf.containsKey(s) ? s : null;
        for (String suffix : List.of("_bucket", "_count", "_sum", "_created")) {
          String base = s.substring(0, Math.max(0, s.length() - suffix.length()));
          if (family == null && s.endsWith(suffix) && typeOf.containsKey(base)) {
            family = base;
          }
        }
        assertTrue(family != null, "no # TYPE line for " + s + " in\n" + text);
        sampleFamily.put(s, family);
      }
      Map<String, Set<String>> families = new TreeMap<>();
      for (MetricSnapshot snap : snapshots) {
        String name = snap.getMetadata().getPrometheusName();
        String family =
            typeOf.containsKey(name)
                ? name
                : typeOf.containsKey(name + "_total") ? name + "_total" : null;
        if (name.startsWith("starserve_")) {
          assertTrue(
              family != null && !snap.getDataPoints().isEmpty(),
              name + " is registered but has no sample in the exposition (exercise it)");
        }
        if (family != null) {
          Set<String> labels = new TreeSet<>();
          snap.getDataPoints().forEach(d -> d.getLabels().forEach(l -> labels.add(l.getName())));
          if (typeOf.get(family).equals("histogram")) {
            labels.add("le");
          }
          families.put(family, labels);
        }
      }
      return new Exposition(samples, sampleFamily, families);
    }

    String family(String sample) {
      return sampleFamily.get(sample);
    }

    Set<String> labels(String family) {
      return families.getOrDefault(family, Set.of());
    }
  }

  private static Set<String> words(String spaced) {
    return Set.copyOf(List.of(spaced.trim().split("\\s+")));
  }

  /** A file of the repository, found from the working directory up (Maven runs in launcher/). */
  static Path repoFile(String relative) {
    for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
      if (Files.isRegularFile(d.resolve(relative))) {
        return d.resolve(relative);
      }
    }
    return fail(relative + " not found above " + Path.of("").toAbsolutePath());
  }
}
