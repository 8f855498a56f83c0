// Image: a picture as Float samples in [0, 1], HWC layout, with resize/crop/grid/tensor helpers.
// Not a colour-management or general image-processing library: no gamma handling, no rotation, no filters.
import Tensors

/// A picture of `height` rows × `width` columns × `channels` samples per pixel (1 gray, 2 gray+alpha,
/// 3 RGB, 4 RGBA), stored row-major in HWC order with values in [0, 1].
///
/// ```swift
/// var img = Image(width: 4, height: 2, channels: 3, fill: 0.5)
/// img[x: 1, y: 0, c: 2] = 1           // blue of the second pixel in the top row
/// let t = img.toTensorCHW()          // shape [3, 2, 4], values in [-1, 1]
/// let back = Image(chw: t)           // == img
/// ```
public struct Image: Equatable {
    public var width: Int
    public var height: Int
    public var channels: Int
    /// `height * width * channels` samples, index `(y * width + x) * channels + c`.
    public var pixels: [Float]

    /// An image from its samples in HWC order.
    public init(width: Int, height: Int, channels: Int, pixels: [Float]) {
        precondition(width >= 0 && height >= 0 && (1...4).contains(channels),
                     "Image: bad size \(width)×\(height)×\(channels)")
        precondition(pixels.count == width * height * channels,
                     "Image: \(pixels.count) samples do not fill \(width)×\(height)×\(channels)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// An image with every sample set to `fill`.
    public init(width: Int, height: Int, channels: Int = 3, fill: Float = 0) {
        self.init(width: width, height: height, channels: channels,
                  pixels: [Float](repeating: fill, count: width * height * channels))
    }

    // MARK: - Pixel access

    /// The sample of channel `c` at column `x`, row `y`.
    @inline(__always) public subscript(x x: Int, y y: Int, c c: Int) -> Float {
        get { pixels[(y * width + x) * channels + c] }
        set { pixels[(y * width + x) * channels + c] = newValue }
    }

    /// All channels of the pixel at column `x`, row `y`.
    public func pixel(x: Int, y: Int) -> [Float] {
        let base = (y * width + x) * channels
        return Array(pixels[base..<base + channels])
    }

    /// Sets all channels of the pixel at column `x`, row `y`.
    public mutating func setPixel(x: Int, y: Int, _ values: [Float]) {
        precondition(values.count == channels, "Image.setPixel: \(values.count) values for \(channels) channels")
        let base = (y * width + x) * channels
        for c in 0..<channels { pixels[base + c] = values[c] }
    }

    // MARK: - Tensors

    /// The image as a `[channels, height, width]` tensor with values mapped from [0, 1] to [-1, 1].
    public func toTensorCHW() -> Tensor {
        var out = [Float](repeating: 0, count: pixels.count)
        let plane = width * height
        for i in 0..<plane {
            for c in 0..<channels { out[c * plane + i] = pixels[i * channels + c] * 2 - 1 }
        }
        return Tensor(out, shape: [channels, height, width])
    }

    /// An image from a `[C, H, W]` (or `[1, C, H, W]`) tensor with values in [-1, 1];
    /// values outside are clamped, so a model's raw output can be saved directly.
    public init(chw tensor: Tensor) {
        var shape = tensor.shape
        if shape.count == 4 && shape[0] == 1 { shape.removeFirst() }
        precondition(shape.count == 3, "Image(chw:): expected shape [C, H, W], got \(tensor.shape)")
        let (c, h, w) = (shape[0], shape[1], shape[2])
        let values = tensor.scalars, plane = h * w
        var px = [Float](repeating: 0, count: values.count)
        for i in 0..<plane {
            for ch in 0..<c { px[i * c + ch] = min(max((values[ch * plane + i] + 1) / 2, 0), 1) }
        }
        self.init(width: w, height: h, channels: c, pixels: px)
    }

    // MARK: - Channels

    /// The image with `channels` channels: gray is replicated to RGB, RGB becomes gray by Rec. 601
    /// luma (0.299 R + 0.587 G + 0.114 B), a missing alpha is 1, and a dropped alpha is discarded
    /// (no compositing).
    public func converted(channels target: Int) -> Image {
        precondition((1...4).contains(target), "Image.converted: \(target) channels")
        if target == channels { return self }
        let hasAlpha = channels == 2 || channels == 4
        var out = Image(width: width, height: height, channels: target)
        for i in 0..<(width * height) {
            let s = i * channels
            let (r, g, b): (Float, Float, Float) =
                channels <= 2 ? (pixels[s], pixels[s], pixels[s]) : (pixels[s], pixels[s + 1], pixels[s + 2])
            let a: Float = hasAlpha ? pixels[s + channels - 1] : 1
            let luma = channels <= 2 ? r : 0.299 * r + 0.587 * g + 0.114 * b
            let d = i * target
            switch target {
            case 1: out.pixels[d] = luma
            case 2: out.pixels[d] = luma; out.pixels[d + 1] = a
            case 3: out.pixels[d] = r; out.pixels[d + 1] = g; out.pixels[d + 2] = b
            default: out.pixels[d] = r; out.pixels[d + 1] = g; out.pixels[d + 2] = b; out.pixels[d + 3] = a
            }
        }
        return out
    }

    // MARK: - Geometry

    /// The image resampled to `width` × `height`, separably per axis: an axis that shrinks is
    /// area-averaged (each output pixel is the coverage-weighted mean of the input pixels under it,
    /// so an integer factor gives exact block means), an axis that grows or keeps its size is
    /// bilinear with pixel centres aligned (PyTorch's `align_corners=False`).
    public func resized(width newWidth: Int, height newHeight: Int) -> Image {
        precondition(newWidth > 0 && newHeight > 0, "Image.resized: target \(newWidth)×\(newHeight)")
        precondition(width > 0 && height > 0, "Image.resized: empty image")
        if newWidth == width && newHeight == height { return self }
        let wx = Image.axisWeights(from: width, to: newWidth)
        let wy = Image.axisWeights(from: height, to: newHeight)
        let c = channels
        // 1. Horizontal pass: (height, width, c) -> (height, newWidth, c).
        var mid = [Float](repeating: 0, count: height * newWidth * c)
        for y in 0..<height {
            for x in 0..<newWidth {
                let d = (y * newWidth + x) * c
                for (j, w) in wx[x] {
                    let s = (y * width + j) * c
                    for ch in 0..<c { mid[d + ch] += w * pixels[s + ch] }
                }
            }
        }
        // 2. Vertical pass: (height, newWidth, c) -> (newHeight, newWidth, c).
        var out = [Float](repeating: 0, count: newHeight * newWidth * c)
        let row = newWidth * c
        for y in 0..<newHeight {
            for (j, w) in wy[y] {
                for k in 0..<row { out[y * row + k] += w * mid[j * row + k] }
            }
        }
        return Image(width: newWidth, height: newHeight, channels: c, pixels: out.map { min(max($0, 0), 1) })
    }

    /// For each of `m` output positions along an axis of `n` inputs: the inputs it reads and their
    /// weights (summing to 1).
    static func axisWeights(from n: Int, to m: Int) -> [[(Int, Float)]] {
        let scale = Double(n) / Double(m)
        return (0..<m).map { i in
            if m < n {
                // Area: output i covers input interval [i·scale, (i+1)·scale).
                let lo = Double(i) * scale, hi = Double(i + 1) * scale
                var taps: [(Int, Float)] = []
                var j = Int(lo.rounded(.down))
                while Double(j) < hi && j < n {
                    let overlap = min(hi, Double(j + 1)) - max(lo, Double(j))
                    if overlap > 1e-12 { taps.append((j, Float(overlap / scale))) }
                    j += 1
                }
                return taps
            } else {
                // Bilinear with half-pixel centres, clamped at the borders.
                let src = min(max((Double(i) + 0.5) * scale - 0.5, 0), Double(n - 1))
                let j0 = Int(src.rounded(.down)), f = Float(src - Double(j0))
                return f == 0 || j0 + 1 >= n ? [(j0, Float(1))] : [(j0, 1 - f), (j0 + 1, f)]
            }
        }
    }

    /// The `width` × `height` window at column `x`, row `y`.
    /// Each pixel repeated `factor`×`factor` times (nearest neighbour: crisp pixels for viewing
    /// small samples).
    public func upscaled(_ factor: Int) -> Image {
        precondition(factor >= 1, "upscale factor must be positive")
        guard factor > 1 else { return self }
        var out = Image(width: width * factor, height: height * factor, channels: channels)
        for y in 0..<out.height {
            for x in 0..<out.width {
                let src = ((y / factor) * width + x / factor) * channels, dst = (y * out.width + x) * channels
                for c in 0..<channels { out.pixels[dst + c] = pixels[src + c] }
            }
        }
        return out
    }

    public func cropped(x: Int, y: Int, width w: Int, height h: Int) -> Image {
        precondition(x >= 0 && y >= 0 && w >= 0 && h >= 0 && x + w <= width && y + h <= height,
                     "Image.cropped: window \(w)×\(h) at (\(x), \(y)) outside \(width)×\(height)")
        var out = [Float]()
        out.reserveCapacity(w * h * channels)
        for row in y..<(y + h) {
            let s = (row * width + x) * channels
            out.append(contentsOf: pixels[s..<s + w * channels])
        }
        return Image(width: w, height: h, channels: channels, pixels: out)
    }

    /// The central `size` × `size` square (when the margin is odd, the extra pixel is on the
    /// right/bottom). Resize the short side to `size` first for the usual "resize + center crop".
    public func centerCropped(size: Int) -> Image {
        precondition(size <= width && size <= height, "Image.centerCropped: \(size) larger than \(width)×\(height)")
        return cropped(x: (width - size) / 2, y: (height - size) / 2, width: size, height: size)
    }

    /// Images tiled row by row into one picture, `columns` per row, separated and framed by
    /// `padding` pixels of `background`. Cells have the size of the largest image (smaller ones sit
    /// centred); all images are converted to the largest channel count.
    ///
    /// ```swift
    /// let sheet = Image.grid(samples, columns: 4, padding: 2)
    /// try PNG.write(sheet, to: "runs/x/samples.png")
    /// ```
    public static func grid(_ images: [Image], columns: Int, padding: Int, background: Float = 0) -> Image {
        precondition(!images.isEmpty && columns > 0 && padding >= 0, "Image.grid: no images or bad layout")
        let cellW = images.map(\.width).max()!, cellH = images.map(\.height).max()!
        let c = images.map(\.channels).max()!
        let cols = min(columns, images.count), rows = (images.count + columns - 1) / columns
        let W = cols * cellW + (cols + 1) * padding, H = rows * cellH + (rows + 1) * padding
        var out = Image(width: W, height: H, channels: c, fill: background)
        for (k, img) in images.enumerated() {
            let src = img.converted(channels: c)
            let x0 = padding + (k % columns) * (cellW + padding) + (cellW - img.width) / 2
            let y0 = padding + (k / columns) * (cellH + padding) + (cellH - img.height) / 2
            for y in 0..<img.height {
                let d = ((y0 + y) * W + x0) * c, s = y * img.width * c
                out.pixels.replaceSubrange(d..<d + img.width * c, with: src.pixels[s..<s + img.width * c])
            }
        }
        return out
    }
}
