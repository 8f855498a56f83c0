import Foundation
import Testing
import Tensors

@Suite(.serialized) struct ConvTimingTmp {
    @Test func timing() {
        guard ProcessInfo.processInfo.environment["CONV_TIMING"] != nil else { return }
        let cfgs: [(Int, Int, Int, Int, Int, Int, Int)] = [  // n c hw o k stride pad
            (16, 64, 32, 64, 3, 1, 1), (16, 64, 32, 64, 1, 1, 0), (16, 128, 16, 128, 3, 1, 1),
            (16, 64, 32, 128, 3, 2, 1), (4, 64, 32, 64, 3, 1, 1), (1, 64, 64, 64, 3, 1, 1), (16, 3, 64, 64, 3, 1, 1)]
        for (n, c, hw, o, k, s, p) in cfgs {
            let x = RNG(seed: 1).normal([n, c, hw, hw]); x.requiresGrad = true
            let w = RNG(seed: 2).normal([o, c, k, k], std: 0.05); w.requiresGrad = true
            let b = RNG(seed: 3).normal([o]); b.requiresGrad = true
            for mode in [true, false] {
                var fw = [Double](), bw = [Double]()
                for _ in 0..<6 {
                    let t0 = Date()
                    let y = conv2d(x, w, b, stride: s, padding: p, perImage: mode)
                    let t1 = Date()
                    y.backward(y)
                    let t2 = Date()
                    fw.append(t1.timeIntervalSince(t0)); bw.append(t2.timeIntervalSince(t1))
                    x.grad = nil; w.grad = nil; b.grad = nil
                }
                let f = fw.dropFirst().min()! * 1000, bk = bw.dropFirst().min()! * 1000
                let oh = (hw + 2*p - k)/s + 1
                let gf = 2.0 * Double(n*o*oh*oh*c*k*k) / 1e9
                print(String(format: "TIMING n%d c%d %dx%d o%d k%d s%d p%d %@: fwd %.2f ms (%.1f GF/s) bwd %.2f ms (%.1f GF/s)", n, c, hw, hw, o, k, s, p, mode ? "perImage" : "serial  ", f, gf/f*1000, bk, 2*gf/bk*1000))
            }
        }
    }
}
