package dev.starserve.backend.cuda;

/**
 * A step's tokens as attention blocks take them: runs of consecutive tokens of one sequence, at
 * most {@code groupMax} long ({@code first[g]}, {@code count[g]} for {@code g < groups}). A decode
 * step gives one group per token; a prefill chunk of L tokens ⌈L / groupMax⌉ groups.
 */
record QueryGroups(int[] first, int[] count, int groups, int largest) {

  static QueryGroups of(int[] tokenSeq, int n, int groupMax) {
    int[] first = new int[n];
    int[] count = new int[n];
    int g = 0;
    int largest = 0;
    for (int t = 0; t < n; t++) {
      if (g > 0 && tokenSeq[first[g - 1]] == tokenSeq[t] && count[g - 1] < groupMax) {
        count[g - 1]++;
      } else {
        first[g] = t;
        count[g] = 1;
        g++;
      }
      largest = Math.max(largest, count[g - 1]);
    }
    return new QueryGroups(first, count, g, largest);
  }
}
