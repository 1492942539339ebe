package dev.starserve.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.starserve.text.Tokenizer;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** Tokenizes text with a model's tokenizer and prints ids and token strings as JSON. */
@Command(
    name = "tokenize",
    mixinStandardHelpOptions = true,
    description =
        "Print {\"ids\":[...],\"tokens\":[...]} for a text, a file, or each line of a JSONL file.")
final class TokenizeCommand implements Callable<Integer> {
  @Option(names = "--model", required = true, description = "model directory")
  Path model;

  @ArgGroup(exclusive = true, multiplicity = "1")
  Input input;

  static final class Input {
    @Option(names = "--text", description = "the text to tokenize")
    String text;

    @Option(names = "--text-file", description = "a UTF-8 file whose whole content is tokenized")
    Path textFile;

    @Option(names = "--jsonl", description = "one JSON object with a \"text\" field per line")
    Path jsonl;
  }

  @Override
  public Integer call() throws IOException {
    Tokenizer tok =
        Tokenizer.load(model.resolve("tokenizer.json"), model.resolve("tokenizer_config.json"));
    PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
    int failures = 0;
    if (input.text != null) {
      out.println(Json.write(result(tok, input.text)));
    } else if (input.textFile != null) {
      out.println(Json.write(result(tok, Files.readString(input.textFile))));
    } else {
      try (BufferedReader r = Files.newBufferedReader(input.jsonl, StandardCharsets.UTF_8)) {
        String line;
        int lineNo = 0;
        while ((line = r.readLine()) != null) {
          lineNo++;
          if (line.isBlank()) {
            continue;
          }
          String error = null;
          JsonNode node = null;
          try {
            node = Json.MAPPER.readTree(line);
          } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            error = "line " + lineNo + ": not valid JSON: " + e.getOriginalMessage();
          }
          if (error == null
              && (node == null || !node.isObject() || !node.path("text").isTextual())) {
            error = "line " + lineNo + ": expected an object with a string field \"text\"";
          }
          if (error != null) {
            failures++;
            out.println(Json.write(Map.of("error", error)));
          } else {
            out.println(Json.write(result(tok, node.get("text").asText())));
          }
        }
      }
    }
    out.flush();
    return failures == 0 ? 0 : 1;
  }

  private static Map<String, Object> result(Tokenizer tok, String text) {
    int[] ids = tok.encode(text);
    List<String> tokens = new ArrayList<>(ids.length);
    for (int id : ids) {
      tokens.add(tok.token(id));
    }
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("ids", ids);
    m.put("tokens", tokens);
    return m;
  }
}
