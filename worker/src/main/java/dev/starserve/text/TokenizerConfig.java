package dev.starserve.text;

/**
 * What the engine needs from {@code tokenizer_config.json}; every field may be null.
 *
 * @param chatTemplate the Jinja chat template (the one named "default" when the file has a list)
 */
record TokenizerConfig(String eosToken, String bosToken, String chatTemplate) {
  static final TokenizerConfig NONE = new TokenizerConfig(null, null, null);
}
