package dev.starserve.model;

import dev.starserve.checkpoint.Checkpoint;
import dev.starserve.checkpoint.CheckpointException;
import dev.starserve.checkpoint.TensorView;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Every weight of a gpt_bigcode model, bound by HuggingFace name and checked against the config.
 * Views into the mapped checkpoint: nothing is copied, and the checkpoint must stay open.
 *
 * <p>Tensors may mix dtypes (say F32 LayerNorms with BF16 matrices): each view carries its own.
 *
 * @param wte token embeddings [vocab, n_embd]
 * @param wpe position embeddings [n_positions, n_embd]
 * @param layers the n_layer transformer blocks
 * @param lnFWeight final LayerNorm weight [n_embd]
 * @param lnFBias final LayerNorm bias [n_embd]
 * @param lmHead output projection [vocab, n_embd]; the same view as wte when tied
 * @param tiedLmHead true when the checkpoint has no lm_head.weight and wte serves as lm_head
 */
public record GptBigCodeWeights(
    TensorView wte, // [vocab, n_embd]
    TensorView wpe, // [n_positions, n_embd]
    List<LayerWeights> layers,
    TensorView lnFWeight, // [n_embd]
    TensorView lnFBias, // [n_embd]
    TensorView lmHead, // [vocab, n_embd]; == wte when tied
    boolean tiedLmHead) {

  static final String PREFIX = "transformer.";
  static final String LM_HEAD = "lm_head.weight";

  /** Buffers old checkpoints saved next to the weights: causal masks, not parameters. */
  private static final Pattern IGNORED =
      Pattern.compile("^(transformer\\.)?h\\.\\d+\\.attn\\.(masked_bias|bias)$");

  private static final Pattern LAYER = Pattern.compile("^(?:transformer\\.)?h\\.(\\d+)\\.");

  public GptBigCodeWeights {
    layers = List.copyOf(layers);
  }

  /**
   * Names (without the {@code transformer.} prefix) and shapes of every tensor a model with this
   * config has, in HuggingFace's order; lm_head is not among them (tied).
   */
  static Map<String, long[]> tensorShapes(GptBigCodeConfig cfg) {
    long e = cfg.nEmbd();
    long qkv = cfg.qkvDim();
    long inner = cfg.nInner();
    Map<String, long[]> m = new LinkedHashMap<>();
    m.put("wte.weight", new long[] {cfg.vocabSize(), e});
    m.put("wpe.weight", new long[] {cfg.nPositions(), e});
    for (int i = 0; i < cfg.nLayer(); i++) {
      String h = "h." + i + ".";
      m.put(h + "ln_1.weight", new long[] {e});
      m.put(h + "ln_1.bias", new long[] {e});
      m.put(h + "attn.c_attn.weight", new long[] {qkv, e});
      m.put(h + "attn.c_attn.bias", new long[] {qkv});
      m.put(h + "attn.c_proj.weight", new long[] {e, e});
      m.put(h + "attn.c_proj.bias", new long[] {e});
      m.put(h + "ln_2.weight", new long[] {e});
      m.put(h + "ln_2.bias", new long[] {e});
      m.put(h + "mlp.c_fc.weight", new long[] {inner, e});
      m.put(h + "mlp.c_fc.bias", new long[] {inner});
      m.put(h + "mlp.c_proj.weight", new long[] {e, inner});
      m.put(h + "mlp.c_proj.bias", new long[] {e});
    }
    m.put("ln_f.weight", new long[] {e});
    m.put("ln_f.bias", new long[] {e});
    return m;
  }

  /**
   * Binds the tensors of {@code ck} to the shapes {@code cfg} implies.
   *
   * <p>NOTE: names may all carry the {@code transformer.} prefix (as GPTBigCodeForCausalLM saves
   * them) or all lack it (as GPTBigCodeModel does). A checkpoint that mixes both is rejected:
   * transformers would leave the odd ones out as missing and initialise them randomly, which is
   * never what a server should do. {@code h.N.attn.masked_bias} and {@code h.N.attn.bias} (causal
   * masks saved by old versions) are ignored. Any other tensor that the config does not explain is
   * an error, so that a config.json that does not match its weights is caught at load.
   */
  public static GptBigCodeWeights bind(Checkpoint ck, GptBigCodeConfig cfg) {
    Map<String, long[]> shapes = tensorShapes(cfg);
    String prefix = prefix(ck, shapes.keySet());
    Set<String> used = new HashSet<>();
    Binder b = new Binder(ck, cfg, prefix, shapes, used);
    TensorView wte = b.take("wte.weight");
    TensorView wpe = b.take("wpe.weight");
    List<LayerWeights> layers = new ArrayList<>(cfg.nLayer());
    for (int i = 0; i < cfg.nLayer(); i++) {
      String h = "h." + i + ".";
      layers.add(
          new LayerWeights(
              b.take(h + "ln_1.weight"),
              b.take(h + "ln_1.bias"),
              b.take(h + "attn.c_attn.weight"),
              b.take(h + "attn.c_attn.bias"),
              b.take(h + "attn.c_proj.weight"),
              b.take(h + "attn.c_proj.bias"),
              b.take(h + "ln_2.weight"),
              b.take(h + "ln_2.bias"),
              b.take(h + "mlp.c_fc.weight"),
              b.take(h + "mlp.c_fc.bias"),
              b.take(h + "mlp.c_proj.weight"),
              b.take(h + "mlp.c_proj.bias")));
    }
    TensorView lnFWeight = b.take("ln_f.weight");
    TensorView lnFBias = b.take("ln_f.bias");
    TensorView lmHead = ck.tensor(LM_HEAD);
    if (lmHead != null) {
      b.check(lmHead, shapes.get("wte.weight"));
      used.add(LM_HEAD);
    }
    rejectUnexpected(ck, cfg, used);
    return new GptBigCodeWeights(
        wte, wpe, layers, lnFWeight, lnFBias, lmHead == null ? wte : lmHead, lmHead == null);
  }

  private static String prefix(Checkpoint ck, Set<String> expected) {
    String with = null;
    String without = null;
    for (String name : ck.names()) {
      if (name.startsWith(PREFIX)) {
        with = with == null ? name : with;
      } else if (expected.contains(name) || IGNORED.matcher(name).matches()) {
        without = without == null ? name : without;
      }
    }
    if (with != null && without != null) {
      throw new CheckpointException(
          ck.tensor(without).file(),
          without,
          "checkpoint mixes names with and without the 'transformer.' prefix (e.g. '"
              + with
              + "' and '"
              + without
              + "'); all names must be one way or the other");
    }
    return without != null ? "" : PREFIX;
  }

  private static void rejectUnexpected(Checkpoint ck, GptBigCodeConfig cfg, Set<String> used) {
    List<String> extra = new ArrayList<>();
    for (String name : ck.names()) {
      if (!used.contains(name) && !IGNORED.matcher(name).matches()) {
        extra.add(name);
      }
    }
    if (extra.isEmpty()) {
      return;
    }
    String first = extra.getFirst();
    String more = extra.size() == 1 ? "" : " (" + extra.size() + " unexpected tensors in all)";
    Matcher m = LAYER.matcher(first);
    String why;
    if (m.find()) {
      why =
          "unexpected tensor: layer "
              + m.group(1)
              + " but config.json has n_layer="
              + cfg.nLayer()
              + " (layers 0.."
              + (cfg.nLayer() - 1)
              + ")";
    } else {
      why = "unexpected tensor: not part of a gpt_bigcode model";
    }
    throw new CheckpointException(ck.tensor(first).file(), first, why + more);
  }

  /** Takes tensors by unprefixed name, checking presence and shape. */
  private record Binder(
      Checkpoint ck,
      GptBigCodeConfig cfg,
      String prefix,
      Map<String, long[]> shapes,
      Set<String> used) {

    TensorView take(String name) {
      String full = prefix + name;
      TensorView t = ck.tensor(full);
      if (t == null) {
        throw new CheckpointException(ck.source(), full, "missing tensor" + where(name));
      }
      check(t, shapes.get(name));
      used.add(full);
      return t;
    }

    void check(TensorView t, long[] expected) {
      if (!t.hasShape(expected)) {
        throw new CheckpointException(
            t.file(),
            t.name(),
            "has shape "
                + shapeString(t.shape())
                + ", expected "
                + shapeString(expected)
                + " from config.json (vocab_size="
                + cfg.vocabSize()
                + ", n_positions="
                + cfg.nPositions()
                + ", n_embd="
                + cfg.nEmbd()
                + ", n_head="
                + cfg.nHead()
                + ", multi_query="
                + cfg.multiQuery()
                + ", n_inner="
                + cfg.nInner()
                + ")");
      }
    }

    private String where(String name) {
      Matcher m = LAYER.matcher(name);
      if (!m.find()) {
        return "";
      }
      int layer = Integer.parseInt(m.group(1));
      int present = -1;
      for (String n : ck.names()) {
        Matcher o = LAYER.matcher(n);
        if (o.find() && o.group(1).length() < 10) {
          present = Math.max(present, Integer.parseInt(o.group(1)));
        }
      }
      String hint =
          layer > present
              ? "; the checkpoint has "
                  + (present < 0 ? "no layers" : "layers 0.." + present)
                  + ": does n_layer in config.json match?"
              : "";
      return " (layer " + layer + " of " + cfg.nLayer() + hint + ")";
    }

    private static String shapeString(long[] shape) {
      return Arrays.toString(shape).replace(" ", "");
    }
  }
}
