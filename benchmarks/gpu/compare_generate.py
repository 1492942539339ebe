#!/usr/bin/env python3
"""Compares two `starserve generate --json --logprobs K` outputs of one prompt: the CPU's (the
reference) and the GPU's. Tokens must be equal and their logprobs within TOL, until a step where
the CPU's top two candidates are within TOL of each other (a near tie that float32 sums in another
order may break either way): from there on the sequences may differ and are not compared.

Usage: compare_generate.py CPU.json GPU.json [TOL]     exit 0 when they agree, 1 when not."""
import json
import sys


def main():
    cpu = json.load(open(sys.argv[1]))
    gpu = json.load(open(sys.argv[2]))
    tol = float(sys.argv[3]) if len(sys.argv) > 3 else 2e-2
    worst = 0.0
    for i, (c, g) in enumerate(zip(cpu["tokens"], gpu["tokens"])):
        top = c["top_logprobs"]
        near_tie = len(top) > 1 and top[0]["logprob"] - top[1]["logprob"] <= tol
        if c["id"] != g["id"]:
            if near_tie:
                print(f"  step {i}: near tie on the CPU, the GPU took {g['id']} instead of {c['id']};"
                      f" compared {i} tokens, max |dlogprob| {worst:.2e}")
                return 0
            print(f"  MISMATCH at step {i}: cpu token {c['id']} ({c['logprob']:.5f}),"
                  f" gpu token {g['id']} ({g['logprob']:.5f})")
            return 1
        d = abs(c["logprob"] - g["logprob"])
        worst = max(worst, d)
        if d > tol:
            print(f"  MISMATCH at step {i}: token {c['id']} logprob cpu {c['logprob']:.5f}"
                  f" gpu {g['logprob']:.5f}")
            return 1
        if near_tie:
            print(f"  step {i}: near tie on the CPU; compared {i + 1} tokens, max |dlogprob| {worst:.2e}")
            return 0
    n = min(len(cpu["tokens"]), len(gpu["tokens"]))
    if len(cpu["tokens"]) != len(gpu["tokens"]):
        print(f"  MISMATCH: cpu made {len(cpu['tokens'])} tokens, gpu {len(gpu['tokens'])}")
        return 1
    print(f"  {n} tokens identical, max |dlogprob| {worst:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
