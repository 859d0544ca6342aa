/// @file canonize.h
/// @brief Canonizers: equivalent networks in the form the propagation rules expect (Zennit's
/// canonizers, e.g. its MergeBatchNorm), returned as new networks; the input is never modified.
///
/// merge_batch_norm folds every batch-norm node into the convolution or linear layer feeding it:
/// with the batch-norm's per-channel y = a z + b (layers.h) after z = W x + c,
///   W'[o, …] = a[o] · W[o, …],   c'[o] = a[o] · c[o] + b[o]
/// (c = 0 without bias), computed in double and rounded once, so outputs agree to float rounding
/// (tested to 1e-5). The merged layer keeps the convolution's name and is a new layer object;
/// nodes that read the batch-norm read it instead, and the batch-norm's name disappears. A
/// batch-norm is merged only if its input is a Conv2d or Linear node whose output nothing else
/// reads; others stay (every rule still runs on them: rules.h). Gradients are those of the same
/// function; LRP-ε gives the same relevance on either form as ε → 0 (R/z passes through the
/// per-channel scale), while z⁺ and αβ differ (the sign of a enters W⁺), as Zennit documents.
/// Tested in test_graph.cpp.
#pragma once

#include "lab/nn/network.h"

namespace lab {

/// The network with every mergeable batch-norm folded into the affine layer before it.
Network merge_batch_norm(const Network& net);

}  // namespace lab
