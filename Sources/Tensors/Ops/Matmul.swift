// Matrix products over OpenBLAS sgemm: matmul (2-D and batched, with transposes) and the fused
// linear layer y = x·Wᵀ + b. Dimension legend: M rows of the output, N columns, K the
// contracted size. Every product is one or more single-threaded GEMMs: cblas_sgemm in fp32, or
// the bf16 kernel of CKernels when `MatmulPrecision.current` is bf16.
import CBLAS
import CKernels
import Foundation

/// The precision of every matrix product: linear layers, attention, convolutions, codebook search.
/// `bf16` rounds both operands to bf16 (nearest even) and sums in fp32, on CPUs with AVX512-BF16;
/// weights, gradients, optimizer state and every other op stay fp32 (mixed precision).
public enum MatmulPrecision: String, Codable, Sendable, CaseIterable {
    case fp32, bf16

    /// The precision products run in here: bound per thread (a task-local value) by `with`, and
    /// handed by `Parallel` to the threads that run a split loop or GEMM for the caller.
    @TaskLocal public static var current: MatmulPrecision = .fp32

    /// Whether this CPU has the instructions bf16 products need (FUSION_BF16=0 says no, to try a
    /// machine without them).
    public static let bf16Available = fusion_bf16_supported() != 0
        && ProcessInfo.processInfo.environment["FUSION_BF16"] != "0"

    /// Whether this CPU can run products in `precision`.
    public var isAvailable: Bool { self == .fp32 || Self.bf16Available }

    /// Runs `body` with products in `precision`, then restores the one before.
    public static func with<T>(_ precision: MatmulPrecision, _ body: () throws -> T) rethrows -> T {
        precondition(precision.isAvailable, "matmul precision \(precision) needs a CPU with AVX512-BF16")
        return try $current.withValue(precision, operation: body)
    }
}

/// C(M×N) = α·op(A)·op(B) + β·C, row-major, on raw buffers.
@inline(__always)
public func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                  _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int,
                  beta: Float = 0, _ c: UnsafeMutablePointer<Float>, ldc: Int) {
    if m == 0 || n == 0 { return }
    if k == 0 {
        if beta == 0 { for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) } }
        return
    }
    let chunks = Parallel.isSerial || m * n * k < gemmSplitWork ? 1 : Parallel.threads
    if chunks == 1 {
        gemmSerial(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        return
    }
    // A long inner dimension (weight gradients: K = B·T rows of activations) is split along K:
    // each thread packs only its half of op(A) and op(B), where a split of C's rows or columns
    // would make every thread pack all of the other operand. The partial products are summed.
    if chunks == 2 && k >= gemmSplitKRatio * max(m, n) {
        gemmSplitK(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        return
    }
    // One single-threaded GEMM per thread over a share of C's rows (or columns, when C is wide):
    // row i of op(A) starts at a + i·lda (or a + i when A is transposed); column j of op(B) at
    // b + j (or b + j·ldb when B is transposed).
    let byRows = m >= n
    let total = byRows ? m : n
    let unit = 16  // shares are whole multiples of the kernel's register tile
    Parallel.run(chunks) { i in
        let lo = (total / unit) * i / chunks * unit
        let hi = i == chunks - 1 ? total : (total / unit) * (i + 1) / chunks * unit
        if hi <= lo { return }
        if byRows {
            gemmSerial(transA, transB, hi - lo, n, k, alpha, transA ? a + lo : a + lo * lda, lda, b, ldb, beta,
                       c + lo * ldc, ldc)
        } else {
            gemmSerial(transA, transB, m, hi - lo, k, alpha, a, lda, transB ? b + lo * ldb : b + lo, ldb, beta,
                       c + lo, ldc)
        }
    }
}

/// Products with at least this many multiply-adds are split across threads.
let gemmSplitWork = 1 << 18
/// Two-thread products whose K is at least this many times max(M, N) are split along K.
let gemmSplitKRatio = 2

/// C = α·op(A)·op(B) + β·C on two threads, each over half of K: thread 0 accumulates its half into
/// C (with β), thread 1 writes its half into a scratch (M, N) that is then added to C.
func gemmSplitK(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int, _ beta: Float,
                _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
    let half = (k / 2 + 7) & ~7
    let scratch = Storage(count: m * n)
    let partial = scratch.floats
    // Element p of K: column p of op(A) is at a + p·lda when A is transposed, else a + p; row p of
    // op(B) at b + p·ldb, or b + p when B is transposed.
    let a2 = transA ? a + half * lda : a + half, b2 = transB ? b + half : b + half * ldb
    Parallel.run(2) { i in
        if i == 0 {
            gemmSerial(transA, transB, m, n, half, alpha, a, lda, b, ldb, beta, c, ldc)
        } else {
            gemmSerial(transA, transB, m, n, k - half, alpha, a2, lda, b2, ldb, 0, partial, n)
        }
    }
    Parallel.run(2) { i in
        for r in stride(from: i, to: m, by: 2) {
            let dst = c + r * ldc, src = partial + r * n
            for j in 0..<n { dst[j] += src[j] }
        }
    }
    withExtendedLifetime(scratch) {}
}

@inline(__always)
func gemmSerial(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int, _ beta: Float,
                _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
    if MatmulPrecision.current == .bf16 {
        fusion_sgemm_bf16(transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        return
    }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// op(A)·op(B) where A is (…, M, K) (or (…, K, M) with `transposeA`) and B is (K, N) (or
/// (N, K) with `transposeB`), 2-D or with the same leading batch dimensions as A.
///
/// ```swift
/// let y = matmul(x, w, transposeB: true)   // x (B, T, in) · wᵀ, w (out, in) → (B, T, out)
/// ```
public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
    precondition(a.rank >= 2 && b.rank >= 2, "matmul: needs rank ≥ 2, got \(a.shape) and \(b.shape)")
    // A 2-D right operand: fold A's batch dimensions into its rows (one large GEMM).
    if b.rank == 2 && a.rank > 2 && !transposeA {
        let k = a.dim(-1)
        let y = matmul(a.reshaped([-1, k]), b, transposeB: transposeB)
        return y.reshaped(Array(a.shape.dropLast()) + [y.dim(-1)])
    }
    precondition(a.rank == b.rank && a.shape.dropLast(2) == b.shape.dropLast(2),
                 "matmul: batch dimensions of \(a.shape) and \(b.shape) differ")
    let (m, ka) = transposeA ? (a.dim(-1), a.dim(-2)) : (a.dim(-2), a.dim(-1))
    let (kb, n) = transposeB ? (b.dim(-1), b.dim(-2)) : (b.dim(-2), b.dim(-1))
    precondition(ka == kb, "matmul: contracted sizes differ: \(a.shape)\(transposeA ? "ᵀ" : "") · \(b.shape)\(transposeB ? "ᵀ" : "")")
    let batch = a.shape.dropLast(2).reduce(1, *)
    let out = Tensor.empty(Array(a.shape.dropLast(2)) + [m, n])
    let pa = a.data, pb = b.data, pc = out.data
    let sa = a.dim(-2) * a.dim(-1), sb = b.dim(-2) * b.dim(-1), sc = m * n
    let run = { (i: Int) in
        sgemm(transA: transposeA, transB: transposeB, m: m, n: n, k: ka, pa + i * sa, lda: a.dim(-1),
              pb + i * sb, ldb: b.dim(-1), pc + i * sc, ldc: n)
    }
    // Small products: one per thread; large ones: OpenBLAS threads inside each.
    if batch > 1 && m * n * ka < 1 << 21 { Parallel.forEach(batch, run) } else { for i in 0..<batch { run(i) } }

    let ad = a.detached(), bd = b.detached()
    let needA = a.tracksGrad, needB = b.tracksGrad
    return out.recorded([a, b]) { g in
        let ga = !needA ? nil : transposeA
            ? matmul(bd, g, transposeA: transposeB, transposeB: true)
            : matmul(g, bd, transposeB: !transposeB)
        let gb = !needB ? nil : transposeB
            ? matmul(g, ad, transposeA: true, transposeB: transposeA)
            : matmul(ad, g, transposeA: !transposeA)
        return [ga, gb]
    }
}

/// The fused linear layer: y = x·Wᵀ + b with x (…, K), W (N, K) as PyTorch stores it, b (N).
/// Forward is one GEMM with the bias preloaded into the output; backward is two GEMMs and a
/// column sum.
public func linear(_ x: Tensor, _ weight: Tensor, _ bias: Tensor? = nil) -> Tensor {
    precondition(weight.rank == 2, "linear: weight must be (out, in), got \(weight.shape)")
    let k = weight.shape[1], n = weight.shape[0]
    precondition(x.dim(-1) == k, "linear: input \(x.shape) has \(x.dim(-1)) features, weight \(weight.shape) expects \(k)")
    if let bias { precondition(bias.shape == [n], "linear: bias \(bias.shape) must be [\(n)]") }
    let m = x.count / max(k, 1)
    let out = Tensor.empty(Array(x.shape.dropLast()) + [n])
    if let bias {
        let pb = bias.data, po = out.data
        Parallel.forRange(m, grain: max(1, 16384 / max(n, 1))) { r in for i in r { (po + i * n).update(from: pb, count: n) } }
    }
    sgemm(transA: false, transB: true, m: m, n: n, k: k, x.data, lda: k, weight.data, ldb: k,
          beta: bias == nil ? 0 : 1, out.data, ldc: n)

    let xd = x.detached(), wd = weight.detached()
    let needX = x.tracksGrad, needW = weight.tracksGrad, needB = bias?.tracksGrad ?? false
    var inputs = [x, weight]
    if let bias { inputs.append(bias) }
    return out.recorded(inputs) { g in
        var gx: Tensor? = nil, gw: Tensor? = nil, gb: Tensor? = nil
        if needX {
            let t = Tensor.empty(xd.shape)
            sgemm(transA: false, transB: false, m: m, n: k, k: n, g.data, lda: n, wd.data, ldb: k, t.data, ldc: k)
            gx = t
        }
        if needW {
            let t = Tensor.empty([n, k])
            sgemm(transA: true, transB: false, m: n, n: k, k: m, g.data, lda: n, xd.data, ldb: k, t.data, ldc: k)
            gw = t
        }
        if needB { gb = g.reshaped([m, n]).sum(axes: [0]) }
        return bias == nil ? [gx, gw] : [gx, gw, gb]
    }
}
