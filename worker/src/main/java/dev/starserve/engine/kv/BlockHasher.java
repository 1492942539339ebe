package dev.starserve.engine.kv;

/**
 * The chained 64-bit hash of one full block: a function of the previous block's hash and this
 * block's token ids, so equal hashes (almost always) mean equal prefixes. It only narrows the
 * search: {@link PrefixCache} confirms every hit by comparing token ids and parent entries, so a
 * collision costs a comparison, never wrong K/V. Package-private so tests can force collisions.
 */
@FunctionalInterface
interface BlockHasher {
  /** The parent hash of a sequence's first block. */
  long ROOT = 0x6a09e667f3bcc908L;

  /** Hash of {@code tokens[from..to)} chained onto {@code parentHash}. */
  long hash(long parentHash, int[] tokens, int from, int to);

  /** A multiply-rotate mix per token and a murmur3 finaliser; not cryptographic. */
  BlockHasher DEFAULT =
      (parentHash, tokens, from, to) -> {
        long h = parentHash ^ ((to - from) * 0x9e3779b97f4a7c15L);
        for (int i = from; i < to; i++) {
          h ^= (tokens[i] & 0xffffffffL) * 0xc2b2ae3d27d4eb4fL;
          h = Long.rotateLeft(h, 31) * 0x9e3779b97f4a7c15L + 0x165667b19e3779f9L;
        }
        h ^= h >>> 33;
        h *= 0xff51afd7ed558ccdL;
        h ^= h >>> 33;
        h *= 0xc4ceb9fe1a85ec53L;
        return h ^ (h >>> 33);
      };
}
