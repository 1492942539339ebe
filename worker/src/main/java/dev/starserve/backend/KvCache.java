package dev.starserve.backend;

/**
 * Paged key/value storage for every layer, created by (and living with) a backend.
 *
 * <pre>
 * slot s = block · blockSize + offset        (one token position of one sequence)
 * per layer:  K[slot][kvDim], V[slot][kvDim]  kvDim = kvHeads · headDim (one K/V head for MQA)
 * </pre>
 *
 * A sequence owns an ordered list of blocks (its block table); position p of the sequence lives in
 * slot {@code table[p / blockSize] · blockSize + p % blockSize}.
 */
public interface KvCache {
  int layers();

  int numBlocks();

  int blockSize();

  int kvDim();

  /** How the values are stored. */
  KvDType dtype();
}
