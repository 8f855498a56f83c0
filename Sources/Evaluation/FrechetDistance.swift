// The Fréchet distance between two Gaussians fitted to feature sets (FID's formula, here over the
// ShapesClassifier's features), with a cyclic Jacobi eigensolver for the symmetric matrix square
// root. All in Double. Not the feature extractor (ShapesClassifier.swift).
import Foundation

/// Mean and covariance of a set of feature vectors.
public struct FeatureStatistics: Codable, Sendable {
    public var count: Int
    public var mean: [Double]
    /// Row-major d×d, unbiased (divided by n − 1).
    public var covariance: [Double]
    public var dimension: Int { mean.count }

    /// Statistics of `features`: n vectors of one dimension d (n ≥ 2).
    public init(_ features: [[Float]]) {
        precondition(features.count >= 2, "FeatureStatistics: need at least 2 vectors, got \(features.count)")
        let d = features[0].count, n = features.count
        precondition(features.allSatisfy { $0.count == d }, "FeatureStatistics: vectors of different lengths")
        var mean = [Double](repeating: 0, count: d)
        for f in features { for j in 0..<d { mean[j] += Double(f[j]) } }
        for j in 0..<d { mean[j] /= Double(n) }
        var cov = [Double](repeating: 0, count: d * d)
        var centred = [Double](repeating: 0, count: d)
        for f in features {
            for j in 0..<d { centred[j] = Double(f[j]) - mean[j] }
            for i in 0..<d {
                let ci = centred[i]
                for j in i..<d { cov[i * d + j] += ci * centred[j] }
            }
        }
        for i in 0..<d {
            for j in i..<d {
                cov[i * d + j] /= Double(n - 1)
                cov[j * d + i] = cov[i * d + j]
            }
        }
        self.count = n; self.mean = mean; self.covariance = cov
    }
}

/// d²((μ₁, Σ₁), (μ₂, Σ₂)) = |μ₁ − μ₂|² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^½ Σ₂ Σ₁^½)^½ — the Fréchet
/// (2-Wasserstein) distance between Gaussians (Dowson & Landau 1982; FID, Heusel et al. 2017, eq. 6).
/// The symmetric form equals tr (Σ₁Σ₂)^½ and needs only symmetric eigendecompositions.
///
/// ```swift
/// let fd = frechetDistance(FeatureStatistics(real), FeatureStatistics(generated))
/// ```
public func frechetDistance(_ a: FeatureStatistics, _ b: FeatureStatistics) -> Double {
    precondition(a.dimension == b.dimension, "frechetDistance: dimensions \(a.dimension) and \(b.dimension)")
    let d = a.dimension
    var meanTerm = 0.0, traceA = 0.0, traceB = 0.0
    for j in 0..<d {
        meanTerm += (a.mean[j] - b.mean[j]) * (a.mean[j] - b.mean[j])
        traceA += a.covariance[j * d + j]
        traceB += b.covariance[j * d + j]
    }
    // 1. S = Σ₁^½ from Σ₁ = V Λ Vᵀ.
    let s = symmetricSquareRoot(a.covariance, d)
    // 2. M = S Σ₂ S (symmetric PSD); tr M^½ = Σ √λᵢ(M).
    let m = multiply(multiply(s, b.covariance, d), s, d)
    var sym = m
    for i in 0..<d { for j in 0..<d { sym[i * d + j] = (m[i * d + j] + m[j * d + i]) / 2 } }
    let traceRoot = symmetricEigen(sym, d).values.reduce(0) { $0 + max($1, 0).squareRoot() }
    return max(meanTerm + traceA + traceB - 2 * traceRoot, 0)
}

/// The Fréchet distance between two feature sets.
public func frechetDistance(_ a: [[Float]], _ b: [[Float]]) -> Double {
    frechetDistance(FeatureStatistics(a), FeatureStatistics(b))
}

// MARK: - Symmetric linear algebra

/// Eigenvalues and eigenvectors (columns of row-major `vectors`) of a symmetric d×d matrix, by
/// cyclic Jacobi rotations until the off-diagonal mass is below 1e-24 of the total (Golub & Van
/// Loan §8.5). O(d³) per sweep; a 64×64 matrix takes about ten sweeps.
public func symmetricEigen(_ matrix: [Double], _ d: Int) -> (values: [Double], vectors: [Double]) {
    precondition(matrix.count == d * d, "symmetricEigen: \(matrix.count) entries for \(d)×\(d)")
    var a = matrix
    var v = [Double](repeating: 0, count: d * d)
    for i in 0..<d { v[i * d + i] = 1 }
    let total = a.reduce(0) { $0 + $1 * $1 }
    for _ in 0..<100 {
        var off = 0.0
        for p in 0..<d { for q in (p + 1)..<max(d, p + 1) { off += 2 * a[p * d + q] * a[p * d + q] } }
        if off <= 1e-24 * max(total, 1e-300) { break }
        for p in 0..<d {
            for q in (p + 1)..<max(d, p + 1) {
                let apq = a[p * d + q]
                if abs(apq) < 1e-300 { continue }
                // Rotation angle that zeroes a[p][q]: t = tan θ, the smaller root.
                let theta = (a[q * d + q] - a[p * d + p]) / (2 * apq)
                let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                let c = 1 / (t * t + 1).squareRoot(), s = t * c
                for k in 0..<d {   // columns p, q of A
                    let akp = a[k * d + p], akq = a[k * d + q]
                    a[k * d + p] = c * akp - s * akq
                    a[k * d + q] = s * akp + c * akq
                }
                for k in 0..<d {   // rows p, q of A
                    let apk = a[p * d + k], aqk = a[q * d + k]
                    a[p * d + k] = c * apk - s * aqk
                    a[q * d + k] = s * apk + c * aqk
                }
                for k in 0..<d {   // V ← V·J
                    let vkp = v[k * d + p], vkq = v[k * d + q]
                    v[k * d + p] = c * vkp - s * vkq
                    v[k * d + q] = s * vkp + c * vkq
                }
            }
        }
    }
    return ((0..<d).map { a[$0 * d + $0] }, v)
}

/// The PSD square root V √max(Λ, 0) Vᵀ of a symmetric matrix.
func symmetricSquareRoot(_ matrix: [Double], _ d: Int) -> [Double] {
    let (values, v) = symmetricEigen(matrix, d)
    let roots = values.map { max($0, 0).squareRoot() }
    var out = [Double](repeating: 0, count: d * d)
    for i in 0..<d {
        for j in i..<d {
            var sum = 0.0
            for k in 0..<d { sum += v[i * d + k] * roots[k] * v[j * d + k] }
            out[i * d + j] = sum
            out[j * d + i] = sum
        }
    }
    return out
}

/// Row-major d×d product.
func multiply(_ x: [Double], _ y: [Double], _ d: Int) -> [Double] {
    var out = [Double](repeating: 0, count: d * d)
    for i in 0..<d {
        for k in 0..<d {
            let xik = x[i * d + k]
            if xik == 0 { continue }
            for j in 0..<d { out[i * d + j] += xik * y[k * d + j] }
        }
    }
    return out
}
