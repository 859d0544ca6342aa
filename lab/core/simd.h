/// @file simd.h
/// @brief Vectorised builds of hot elementwise loops: a function marked LAB_VECTOR_CLONES is
/// compiled for AVX-512, AVX2 and the plain target (SSE2, a quarter of an AVX-512 register) and
/// the widest one the machine has is picked at load time. Used for memory- or arithmetic-bound
/// loops over contiguous arrays; the clones compute the same IEEE operations in the same order
/// (no reassociation, -ffp-contract=off), so they give the same bytes.
#pragma once

#define LAB_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
