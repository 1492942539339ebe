package dev.starserve.bench;

import dev.starserve.generate.TeacherForcedComparison;
import dev.starserve.model.LanguageModel;
import dev.starserve.text.Tokenizer;
import java.util.ArrayList;
import java.util.List;

/**
 * A quantized model against the same checkpoint as stored ({@link TeacherForcedComparison}) over
 * sixteen short code prompts in several languages, tokenized with the model's tokenizer.
 */
public final class QuantizeAccuracy {
  private QuantizeAccuracy() {}

  /** Sixteen code prompts (written for this benchmark), each a few dozen tokens. */
  public static final List<String> CODE_PROMPTS =
      List.of(
          """
          def fibonacci(n):
              \"\"\"Return the n-th Fibonacci number.\"\"\"
              a, b = 0, 1
              for _ in range(n):
          """,
          """
          import json

          def load_config(path):
              with open(path) as f:
                  data = json.load(f)
              if "name" not in data:
          """,
          """
          public static int binarySearch(int[] a, int key) {
              int lo = 0, hi = a.length - 1;
              while (lo <= hi) {
                  int mid = (lo + hi) >>> 1;
          """,
          """
          #include <stdio.h>
          #include <stdlib.h>

          int main(int argc, char **argv) {
              if (argc < 2) {
                  fprintf(stderr, "usage: %s FILE\\n", argv[0]);
          """,
          """
          function debounce(fn, ms) {
            let timer = null;
            return function (...args) {
              clearTimeout(timer);
          """,
          """
          func reverse(s string) string {
          \trunes := []rune(s)
          \tfor i, j := 0, len(runes)-1; i < j; i, j = i+1, j-1 {
          """,
          """
          fn main() {
              let words = vec!["apple", "banana", "cherry"];
              let lengths: Vec<usize> = words.iter()
          """,
          """
          SELECT customer_id, COUNT(*) AS orders, SUM(total) AS revenue
          FROM orders
          WHERE created_at >= DATE '2024-01-01'
          """,
          """
          #!/usr/bin/env bash
          set -euo pipefail
          for f in "$@"; do
            if [[ ! -f "$f" ]]; then
          """,
          """
          class Stack:
              def __init__(self):
                  self.items = []

              def push(self, item):
                  self.items.append(item)

              def pop(self):
          """,
          """
          import numpy as np

          def softmax(x, axis=-1):
              x = x - np.max(x, axis=axis, keepdims=True)
          """,
          """
          public record Point(double x, double y) {
              public double distanceTo(Point other) {
                  double dx = x - other.x;
          """,
          """
          <!DOCTYPE html>
          <html>
          <head>
            <title>Login</title>
          </head>
          <body>
            <form method="post" action="/login">
          """,
          """
          def quicksort(xs):
              if len(xs) <= 1:
                  return xs
              pivot = xs[len(xs) // 2]
          """,
          """
          const express = require('express');
          const app = express();

          app.get('/health', (req, res) => {
          """,
          """
          struct node {
              int value;
              struct node *next;
          };

          void list_free(struct node *head) {
          """);

  /** Tokenizes {@link #CODE_PROMPTS} and compares {@code candidate} against {@code baseline}. */
  public static TeacherForcedComparison.Result run(
      LanguageModel baseline, LanguageModel candidate, Tokenizer tokenizer, int newTokens) {
    List<int[]> prompts = new ArrayList<>();
    for (String p : CODE_PROMPTS) {
      prompts.add(tokenizer.encode(p));
    }
    return TeacherForcedComparison.compare(baseline, candidate, prompts, newTokens);
  }
}
