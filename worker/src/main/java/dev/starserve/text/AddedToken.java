package dev.starserve.text;

/**
 * One entry of {@code added_tokens} in tokenizer.json: a token found in the raw text before
 * pre-tokenization.
 *
 * @param singleWord match only when not inside a word (no {@code \w} on either side)
 * @param lstrip the token swallows the whitespace on its left
 * @param rstrip the token swallows the whitespace on its right
 * @param normalized match in the normalized text (searched after the non-normalized tokens)
 * @param special skipped by {@code decode(ids, skipSpecialTokens = true)}
 */
record AddedToken(
    int id,
    String content,
    boolean singleWord,
    boolean lstrip,
    boolean rstrip,
    boolean normalized,
    boolean special) {}
