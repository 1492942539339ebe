package dev.starserve.model;

import dev.starserve.checkpoint.TensorView;

/**
 * The weights of one transformer block ({@code transformer.h.{i}}), in data-path order. Linear
 * weights are stored [out, in]; any dtype, tensor by tensor.
 *
 * @param ln1Weight ln_1.weight [n_embd]
 * @param ln1Bias ln_1.bias [n_embd]
 * @param cAttnWeight attn.c_attn.weight [qkvDim, n_embd]: rows Q (n_embd), then K, then V (kvDim)
 * @param cAttnBias attn.c_attn.bias [qkvDim]
 * @param attnCProjWeight attn.c_proj.weight [n_embd, n_embd]
 * @param attnCProjBias attn.c_proj.bias [n_embd]
 * @param ln2Weight ln_2.weight [n_embd]
 * @param ln2Bias ln_2.bias [n_embd]
 * @param cFcWeight mlp.c_fc.weight [n_inner, n_embd]
 * @param cFcBias mlp.c_fc.bias [n_inner]
 * @param mlpCProjWeight mlp.c_proj.weight [n_embd, n_inner]
 * @param mlpCProjBias mlp.c_proj.bias [n_embd]
 */
public record LayerWeights(
    TensorView ln1Weight, // [n_embd]
    TensorView ln1Bias, // [n_embd]
    TensorView cAttnWeight, // [qkvDim, n_embd]
    TensorView cAttnBias, // [qkvDim]
    TensorView attnCProjWeight, // [n_embd, n_embd]
    TensorView attnCProjBias, // [n_embd]
    TensorView ln2Weight, // [n_embd]
    TensorView ln2Bias, // [n_embd]
    TensorView cFcWeight, // [n_inner, n_embd]
    TensorView cFcBias, // [n_inner]
    TensorView mlpCProjWeight, // [n_embd, n_inner]
    TensorView mlpCProjBias // [n_embd]
    ) {}
