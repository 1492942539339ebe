package dev.starserve.text;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TokenizerLoaderTest {
  @TempDir Path dir;

  private TokenizerException loadFails(Consumer<ObjectNode> edit) {
    ObjectNode json = TestTokenizers.byteLevel("a b");
    edit.accept(json);
    Path file = TestTokenizers.write(dir, "tokenizer.json", json);
    TokenizerException e = assertThrows(TokenizerException.class, () -> Tokenizer.load(file, null));
    assertTrue(e.getMessage().startsWith(file + ": "), e.getMessage());
    return e;
  }

  @Test
  void malformedJsonNamesTheFile() throws IOException {
    Path file = dir.resolve("tokenizer.json");
    Files.writeString(file, "{\"model\": {\"type\": \"BPE\", \"vocab\": {");

    TokenizerException e = assertThrows(TokenizerException.class, () -> Tokenizer.load(file, null));

    assertTrue(e.getMessage().startsWith(file + ": malformed JSON: "), e.getMessage());
  }

  @Test
  void missingFileIsReported() {
    Path file = dir.resolve("nope.json");
    TokenizerException e = assertThrows(TokenizerException.class, () -> Tokenizer.load(file, null));
    assertEquals(file + ": file not found", e.getMessage());
  }

  @Test
  void unknownModelTypeIsRejected() {
    TokenizerException e = loadFails(j -> ((ObjectNode) j.get("model")).put("type", "WordPiece"));
    assertTrue(
        e.getMessage().endsWith("model.type 'WordPiece' is not supported (only BPE)"),
        e.getMessage());
  }

  @Test
  void unknownPreTokenizerIsRejectedWithItsPath() {
    TokenizerException top =
        loadFails(j -> ((ObjectNode) j.get("pre_tokenizer")).put("type", "Metaspace"));
    assertTrue(
        top.getMessage().contains("pre_tokenizer.type 'Metaspace' is not supported"),
        top.getMessage());

    TokenizerException nested =
        loadFails(
            j -> {
              ObjectNode seq = j.putObject("pre_tokenizer");
              seq.put("type", "Sequence");
              seq.putArray("pretokenizers").addObject().put("type", "Digits");
              seq.withArray("pretokenizers").addObject().put("type", "Whitespace");
            });
    assertTrue(
        nested
            .getMessage()
            .contains("pre_tokenizer.pretokenizers[1].type 'Whitespace' is not supported"),
        nested.getMessage());
  }

  @Test
  void normalizerAndOtherDecodersAreRejected() {
    assertTrue(
        loadFails(j -> j.putObject("normalizer").put("type", "NFC"))
            .getMessage()
            .endsWith("normalizer of type 'NFC' is not supported (only null)"));
    assertTrue(
        loadFails(j -> j.putObject("decoder").put("type", "Metaspace"))
            .getMessage()
            .endsWith("decoder of type 'Metaspace' is not supported (only ByteLevel)"));
  }

  @Test
  void unsupportedBpeFieldsAreRejectedByName() {
    assertTrue(
        loadFails(j -> ((ObjectNode) j.get("model")).put("byte_fallback", true))
            .getMessage()
            .contains("model.byte_fallback"));
    assertTrue(
        loadFails(j -> ((ObjectNode) j.get("model")).put("continuing_subword_prefix", "##"))
            .getMessage()
            .contains("model.continuing_subword_prefix '##'"));
    assertTrue(
        loadFails(j -> ((ObjectNode) j.get("model")).put("end_of_word_suffix", "</w>"))
            .getMessage()
            .contains("model.end_of_word_suffix '</w>'"));
    assertTrue(
        loadFails(j -> ((ObjectNode) j.get("model")).put("dropout", 0.1))
            .getMessage()
            .contains("model.dropout 0.1"));
    assertTrue(
        loadFails(j -> ((ObjectNode) j.get("model")).put("unk_token", "<unk>"))
            .getMessage()
            .contains("model.unk_token '<unk>' is not in model.vocab"));
  }

  @Test
  void badMergesAreRejectedWithTheirIndex() {
    assertTrue(
        loadFails(j -> j.withObject("model").withArray("merges").add("x"))
            .getMessage()
            .contains("model.merges[1] must be \"left right\""));
    assertTrue(
        loadFails(j -> j.withObject("model").withArray("merges").add("a zz"))
            .getMessage()
            .contains("model.merges[1]: token 'zz' is not in model.vocab"));
    assertTrue(
        loadFails(j -> j.withObject("model").withArray("merges").addArray().add("a"))
            .getMessage()
            .contains("model.merges[1] must be \"left right\" or [\"left\", \"right\"]"));
  }

  @Test
  void addedTokenIdCollidingWithAnotherTokenIsRejected() {
    TokenizerException e =
        loadFails(
            j -> {
              ObjectNode t = j.withArray("added_tokens").addObject();
              t.put("id", 97);
              t.put("content", "<x>");
              t.put("special", true);
            });
    assertTrue(
        e.getMessage().endsWith("added_tokens[0]: id 97 of '<x>' is already the id of 'a'"),
        e.getMessage());
  }

  @Test
  void configGivesEosBosAndChatTemplate() throws IOException {
    Path json = TestTokenizers.write(dir, "tokenizer.json", TestTokenizers.byteLevel());
    Path config = dir.resolve("tokenizer_config.json");
    Files.writeString(
        config,
        """
        {"eos_token": {"content": "<|end|>", "__type": "AddedToken"},
         "bos_token": "<s>",
         "chat_template": [{"name": "tool_use", "template": "T"},
                           {"name": "default", "template": "{{ messages }}"}]}
        """);

    Tokenizer tok = Tokenizer.load(json, config);

    assertEquals("<|end|>", tok.eosToken());
    assertEquals("<s>", tok.bosToken());
    assertEquals("{{ messages }}", tok.chatTemplate());
  }

  @Test
  void missingOrNullConfigLeavesTheFieldsNull() {
    Path json = TestTokenizers.write(dir, "tokenizer.json", TestTokenizers.byteLevel());

    Tokenizer noConfig = Tokenizer.load(json, dir.resolve("tokenizer_config.json"));
    Tokenizer nullConfig = Tokenizer.load(json, null);

    assertNull(noConfig.eosToken());
    assertNull(nullConfig.chatTemplate());
  }

  @Test
  void shippedStarCoderTokenizerHasItsSpecialTokensAndConfig() {
    Tokenizer tok = Tokenizer.starCoder();

    assertEquals(49152, tok.vocabSize());
    assertEquals("<|endoftext|>", tok.eosToken());
    assertEquals("<|endoftext|>", tok.bosToken());
    assertNull(tok.chatTemplate());
    assertEquals(0, tok.tokenId("<|endoftext|>"));
    assertEquals("<reponame>", tok.token(18));
    assertTrue(tok.isSpecial(18));
    assertEquals(-1, tok.tokenId("<not a token>"));
    // the two HF text-generation-inference prompts from the tokenizer README
    assertArrayEquals(new int[] {589, 1459, 81, 7656}, tok.encode("def print_hello"));
    assertEquals("Ġprint", tok.token(1459));
    assertArrayEquals(
        " print".getBytes(java.nio.charset.StandardCharsets.UTF_8), tok.tokenBytes(1459));
  }
}
