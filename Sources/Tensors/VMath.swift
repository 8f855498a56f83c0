// Vectorised loops and transcendentals over SIMD8<Float> (AVX2 width).
// libm's scalar expf runs ~0.25 G elements/s here; these run at memory speed.
// Not libm: exp is accurate to ~2 ulp on its clamped range, tanh/sigmoid follow from it.

public typealias V8 = SIMD8<Float>

@inline(__always) func load8(_ p: UnsafePointer<Float>) -> V8 {
    UnsafeRawPointer(p).loadUnaligned(as: V8.self)
}
@inline(__always) func store8(_ v: V8, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: V8.self)
}
/// Loads the `n < 8` elements at `p`, padding with `pad`.
@inline(__always) func loadPartial(_ p: UnsafePointer<Float>, _ n: Int, pad: Float = 0) -> V8 {
    var v = V8(repeating: pad)
    for i in 0..<n { v[i] = p[i] }
    return v
}
@inline(__always) func storePartial(_ v: V8, _ p: UnsafeMutablePointer<Float>, _ n: Int) {
    for i in 0..<n { p[i] = v[i] }
}

// MARK: - Transcendentals

/// Lane-wise min/max as compare + blend. The standard library's generic `pointwiseMin/Max` run
/// as out-of-line per-lane loops here (perf: ~2% of a training step inside `vexp` alone).
@inline(__always) public func vmin(_ a: V8, _ b: V8) -> V8 { a.replacing(with: b, where: b .< a) }
@inline(__always) public func vmax(_ a: V8, _ b: V8) -> V8 { a.replacing(with: b, where: b .> a) }

/// e^x, Cephes-style: x = n·ln2 + r, |r| ≤ ln2/2, e^r by a degree-7 minimax polynomial, 2^n by
/// building the exponent bits. Inputs are clamped to [-87.3, 88] (results stay finite and normal).
@inline(__always) public func vexp(_ x0: V8) -> V8 {
    let x = vmax(vmin(x0, V8(repeating: 88)), V8(repeating: -87.3))
    let magic = V8(repeating: 12_582_912)  // 1.5·2^23: adding it rounds to an integer in the mantissa
    let t = magic.addingProduct(x, V8(repeating: 1.44269504088896341))
    let n = t - magic
    let r = x - n * 0.693359375 + n * 2.12194440e-4
    let z = r * r
    var p = V8(repeating: 1.9875691500e-4)
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    let er = p * z + r + 1
    // 2^n: t's bits are 0x4B400000 + n; move n + 127 into the exponent field.
    let bits = (unsafeBitCast(t, to: SIMD8<Int32>.self) &- 0x4B3F_FF81) &<< 23
    return er * unsafeBitCast(bits, to: V8.self)
}

@inline(__always) public func vsigmoid(_ x: V8) -> V8 { 1 / (1 + vexp(-x)) }

/// tanh via e^(2|x|); the odd Taylor series near 0 keeps relative accuracy for tiny inputs.
@inline(__always) public func vtanh(_ x: V8) -> V8 {
    let a = vmin(abs(x), V8(repeating: 20))
    let e = vexp(a + a)
    let t = 1 - 2 / (e + 1)
    let x2 = x * x
    let small = x * (1 - x2 * (1.0 / 3.0) + x2 * x2 * (2.0 / 15.0))
    let res = t.replacing(with: -t, where: x .< 0)
    return res.replacing(with: small, where: a .< 0.02)
}

@inline(__always) func abs(_ x: V8) -> V8 {
    unsafeBitCast(unsafeBitCast(x, to: SIMD8<UInt32>.self) & 0x7FFF_FFFF, to: V8.self)
}

@inline(__always) public func sexp(_ x: Float) -> Float { vexp(V8(repeating: x))[0] }

// MARK: - Loops

/// y[i] = f(x[i]) over `n` elements, vectorised and split across cores for large `n`.
@inline(__always)
func vmap(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, _ f: (V8) -> V8) {
    Parallel.forRange(n, grain: 1 << 16) { r in
        var i = r.lowerBound
        let end = r.upperBound
        while i + 8 <= end { store8(f(load8(x + i)), y + i); i += 8 }
        if i < end { storePartial(f(loadPartial(x + i, end - i)), y + i, end - i) }
    }
}

/// y[i] = f(a[i], b[i]).
@inline(__always)
func vmap2(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
           _ n: Int, _ f: (V8, V8) -> V8) {
    Parallel.forRange(n, grain: 1 << 16) { r in
        var i = r.lowerBound
        let end = r.upperBound
        while i + 8 <= end { store8(f(load8(a + i), load8(b + i)), y + i); i += 8 }
        if i < end { storePartial(f(loadPartial(a + i, end - i), loadPartial(b + i, end - i)), y + i, end - i) }
    }
}

/// y[i] = f(a[i], b[i], c[i]).
@inline(__always)
func vmap3(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafePointer<Float>,
           _ y: UnsafeMutablePointer<Float>, _ n: Int, _ f: (V8, V8, V8) -> V8) {
    Parallel.forRange(n, grain: 1 << 16) { r in
        var i = r.lowerBound
        let end = r.upperBound
        while i + 8 <= end { store8(f(load8(a + i), load8(b + i), load8(c + i)), y + i); i += 8 }
        if i < end {
            let k = end - i
            storePartial(f(loadPartial(a + i, k), loadPartial(b + i, k), loadPartial(c + i, k)), y + i, k)
        }
    }
}

/// Sum of `n` floats with 8 (×2) independent accumulators; accumulates in Float32 lanes.
@inline(__always)
func vsum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var a0 = V8(), a1 = V8()
    var i = 0
    while i + 16 <= n { a0 += load8(x + i); a1 += load8(x + i + 8); i += 16 }
    var s = (a0 + a1).sum()
    while i < n { s += x[i]; i += 1 }
    return s
}

/// Dot product of two float runs.
@inline(__always)
func vdot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) -> Float {
    var a0 = V8(), a1 = V8()
    var i = 0
    while i + 16 <= n {
        a0 = a0.addingProduct(load8(x + i), load8(y + i))
        a1 = a1.addingProduct(load8(x + i + 8), load8(y + i + 8))
        i += 16
    }
    var s = (a0 + a1).sum()
    while i < n { s += x[i] * y[i]; i += 1 }
    return s
}
