package dev.starserve.text;

import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The BPE model of a HuggingFace {@code tokenizer.json}: a pre-token ("word") starts as one symbol
 * per character and the pair with the lowest merge rank is merged, leftmost first, until no rule
 * applies (the same order as HF's {@code Word::merge_all}). Results are cached per word.
 */
final class BpeModel {
  /** Words cached at most; the cache is emptied when it fills (a bound, not an LRU). */
  static final int CACHE_CAPACITY = 1 << 16;

  /** Longer words are not cached (HF's {@code MAX_LENGTH}). */
  static final int MAX_CACHED_LENGTH = 256;

  private static final int SMALL_CHARS = 0x800;

  private final Map<String, Integer> vocab;
  private final int[] smallCharIds; // code point < SMALL_CHARS → id of that one-character token
  private final MergeTable merges;
  private final boolean ignoreMerges;
  private final int unkId; // -1: unknown characters are dropped, as HF does without unk_token
  private final boolean fuseUnk;
  private final ConcurrentHashMap<String, int[]> cache = new ConcurrentHashMap<>();

  BpeModel(
      Map<String, Integer> vocab,
      MergeTable merges,
      boolean ignoreMerges,
      int unkId,
      boolean fuseUnk) {
    this.vocab = Map.copyOf(vocab);
    this.merges = merges;
    this.ignoreMerges = ignoreMerges;
    this.unkId = unkId;
    this.fuseUnk = fuseUnk;
    this.smallCharIds = new int[SMALL_CHARS];
    Arrays.fill(smallCharIds, -1);
    for (int cp = 0; cp < SMALL_CHARS; cp++) {
      if (cp < Character.MIN_SURROGATE || cp > Character.MAX_SURROGATE) {
        Integer id = vocab.get(String.valueOf((char) cp));
        if (id != null) {
          smallCharIds[cp] = id;
        }
      }
    }
  }

  /** Appends the ids of {@code word} to {@code out}. */
  void encode(String word, IntList out) {
    if (word.length() > MAX_CACHED_LENGTH) {
      out.addAll(tokenize(word));
      return;
    }
    int[] ids = cache.get(word);
    if (ids == null) {
      ids = tokenize(word);
      if (cache.size() >= CACHE_CAPACITY) {
        cache.clear();
      }
      cache.put(word, ids);
    }
    out.addAll(ids);
  }

  /** The ids of one word, without the cache. */
  int[] tokenize(String word) {
    if (ignoreMerges) {
      Integer id = vocab.get(word);
      if (id != null) {
        return new int[] {id};
      }
    }
    int[] ids = new int[word.length()];
    int n = 0;
    boolean unkPending = false;
    for (int i = 0; i < word.length(); ) {
      int cp = word.codePointAt(i);
      i += Character.charCount(cp);
      int id = charId(cp);
      if (id >= 0) {
        if (unkPending) {
          ids[n++] = unkId;
          unkPending = false;
        }
        ids[n++] = id;
      } else if (unkId >= 0) {
        if (unkPending && !fuseUnk) {
          ids[n++] = unkId;
        }
        unkPending = true;
      }
    }
    if (unkPending) {
      ids[n++] = unkId;
    }
    return merge(ids, n);
  }

  private int charId(int cp) {
    if (cp < SMALL_CHARS) {
      return smallCharIds[cp];
    }
    Integer id = vocab.get(Character.toString(cp));
    return id == null ? -1 : id;
  }

  /**
   * Merges the symbols {@code ids[0, n)}. Symbols form a linked list; candidate merges sit in a
   * min-heap keyed {@code (rank << 32) | position}, so the lowest rank wins and ties go to the
   * leftmost pair. An entry whose pair changed since it was pushed is stale and skipped.
   */
  private int[] merge(int[] ids, int n) {
    if (n <= 1) {
      return Arrays.copyOf(ids, n);
    }
    int[] prev = new int[n];
    int[] next = new int[n];
    boolean[] dead = new boolean[n];
    long[] heap = new long[3 * n]; // n - 1 initial pairs + at most 2 per merge
    int heapSize = 0;
    for (int k = 0; k < n; k++) {
      prev[k] = k - 1;
      next[k] = k + 1 < n ? k + 1 : -1;
    }
    for (int k = 0; k + 1 < n; k++) {
      int rank = merges.rank(ids[k], ids[k + 1]);
      if (rank >= 0) {
        heapSize = push(heap, heapSize, ((long) rank << 32) | k);
      }
    }
    int alive = n;
    while (heapSize > 0) {
      long top = heap[0];
      heapSize = pop(heap, heapSize);
      int rank = (int) (top >>> 32);
      int pos = (int) top;
      int right = next[pos];
      if (dead[pos] || right < 0 || merges.rank(ids[pos], ids[right]) != rank) {
        continue;
      }
      ids[pos] = merges.result(rank);
      dead[right] = true;
      alive--;
      int after = next[right];
      next[pos] = after;
      if (after >= 0) {
        prev[after] = pos;
        int r = merges.rank(ids[pos], ids[after]);
        if (r >= 0) {
          heapSize = push(heap, heapSize, ((long) r << 32) | pos);
        }
      }
      int before = prev[pos];
      if (before >= 0) {
        int r = merges.rank(ids[before], ids[pos]);
        if (r >= 0) {
          heapSize = push(heap, heapSize, ((long) r << 32) | before);
        }
      }
    }
    int[] out = new int[alive];
    int o = 0;
    for (int k = 0; k >= 0; k = next[k]) {
      out[o++] = ids[k]; // position 0 is never merged away: merges remove the right symbol
    }
    return out;
  }

  private static int push(long[] heap, int size, long v) {
    int i = size;
    while (i > 0) {
      int parent = (i - 1) >>> 1;
      if (heap[parent] <= v) {
        break;
      }
      heap[i] = heap[parent];
      i = parent;
    }
    heap[i] = v;
    return size + 1;
  }

  private static int pop(long[] heap, int size) {
    long last = heap[--size];
    int i = 0;
    while (true) {
      int child = 2 * i + 1;
      if (child >= size) {
        break;
      }
      if (child + 1 < size && heap[child + 1] < heap[child]) {
        child++;
      }
      if (heap[child] >= last) {
        break;
      }
      heap[i] = heap[child];
      i = child;
    }
    heap[i] = last;
    return size;
  }
}
