package dev.starserve.engine;

/**
 * The logits one step produced, and which rows belong to which scheduled sequence.
 *
 * @param logits {@code [rows × vocab]} raw logits
 * @param sampleRow per scheduled sequence: the row to sample its next token from, or -1
 * @param promptRow per scheduled sequence: the first row of its prompt-logprob rows, or -1; row
 *     {@code promptRow + k} holds the logits at position {@code promptPos + k}, which score the
 *     token at position {@code promptPos + k + 1}
 * @param promptPos per scheduled sequence: the position of its first prompt-logprob row
 * @param promptCount per scheduled sequence: the number of prompt-logprob rows
 */
record StepLogits(
    float[] logits,
    int vocab,
    int[] sampleRow,
    int[] promptRow,
    int[] promptPos,
    int[] promptCount) {}
