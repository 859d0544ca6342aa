/// @file linear_regions.h
/// @brief The linear regions a straight path crosses in a piecewise-linear network, for exact
/// path integrals (Integrated Gradients with `-p quadrature=exact`).
///
/// A network of Conv2d, Linear, ReLU and Flatten layers is affine wherever its ReLUs keep their
/// on/off pattern. Along the path p(α) = x' + α (x − x'), α ∈ [0, 1], every pre-activation is
/// then affine in α too, z(α) = z(α₀) + (α − α₀) ż, with the tangent ż computed by the same layers
/// with their biases dropped and the ReLUs masked by the current pattern (forward-mode
/// differentiation). The region that starts at α₀ ends at the first α where an active unit's
/// z reaches 0 from above or an inactive one's from below:
///   α₁ = α₀ + min over units of { z/(−ż) if z > 0 > ż;  −z/ż if z < 0 < ż }.
/// A unit exactly at 0 counts as on when ż > 0 (it is on just after α₀), else off. The network's
/// gradient is constant on each region, so a path integral is a finite sum over them: exact up
/// to floating point, unlike any fixed quadrature, whose nodes can miss a region narrower than
/// their spacing (the designed colour detectors switch on over 1/255 of a path from black).
///
/// Cost: per region, one forward of the primal and one of the tangent (2 evaluations). Samples
/// walk their paths together, one region each per batched network call.
/// Tested in test_gradient_methods.cpp through IG: exact completeness on the lab's networks and
/// a linear model's closed form.
#pragma once

#include <cstdint>
#include <vector>

#include "lab/core/tensor.h"
#include "lab/nn/network.h"

namespace attributions {

/// out = base + t·(x − base) over m values: the point at t on the straight path from base to x.
inline void point_on_path(const float* base, const float* x, float t, float* out, int64_t m) {
  for (int64_t j = 0; j < m; ++j) out[j] = base[j] + t * (x[j] - base[j]);
}

/// One step of the walk for a batch of paths: for each sample n, at α = alpha[n] on the path
/// from `base` to x[n], the end of the linear region starting there (capped at 1) and the
/// tangent of the network output (d output / dα on that region).
struct RegionStep {
  std::vector<double> end;
  lab::Tensor output_tangent;
};

/// `net` must consist of Conv2d, Linear, ReLU and Flatten layers only (throws a parameter error
/// naming the first other layer). `base` is one input (C×H×W, shared by every path), `x` a batch
/// of path ends shaped like the input.
RegionStep next_region(const lab::Network& net, const lab::Tensor& base, const lab::Tensor& x,
                       const std::vector<double>& alpha);

/// Throws a parameter error, naming `what`, unless `net` is piecewise linear as above.
void require_piecewise_linear(const lab::Network& net, const char* what);

}  // namespace attributions
