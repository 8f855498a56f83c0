// ShapesWorld: determinism by seed and index, scene invariants, and exact rendering.
import Testing
@testable import Data

@Suite("ShapesWorld scenes and rendering")
struct ShapesWorldTests {
    /// Every float's bit pattern, so "byte-identical" means exactly that.
    func bits(_ pixels: [Float]) -> [UInt32] { pixels.map(\.bitPattern) }

    @Test func sameSeedIsByteIdentical() {
        let a = ShapesWorld(seed: 7), b = ShapesWorld(seed: 7)
        for i in 0..<300 {
            let x = a.example(i), y = b.example(i)
            #expect(x.scene == y.scene)
            #expect(x.caption == y.caption)
            #expect(x.questions == y.questions)
            #expect(bits(x.pixels) == bits(y.pixels))
            #expect(a.edit(i) == b.edit(i))
        }
    }

    @Test func exampleDoesNotDependOnOrder() {
        let world = ShapesWorld(seed: 11)
        let forward = (0..<50).map { world.example($0).caption }
        let backward = (0..<50).reversed().map { world.example($0).caption }.reversed()
        #expect(forward == Array(backward))
        #expect(world.example(1234).caption == ShapesWorld.example(1234, seed: 11).caption)
        #expect(world.scene(99) == world.example(99).scene)
    }

    @Test func otherSeedDiffers() {
        let a = ShapesWorld(seed: 1), b = ShapesWorld(seed: 2)
        let differentScenes = (0..<200).filter { a.scene($0) != b.scene($0) }.count
        #expect(differentScenes > 180)
        #expect((0..<50).map { a.example($0).caption } != (0..<50).map { b.example($0).caption })
    }

    @Test func sceneInvariants() {
        let world = ShapesWorld(seed: 3)
        var objectCounts = [0, 0, 0, 0]
        var shapes = Set<ShapeKind>(), colours = Set<Colour>(), cells = Set<GridCell>(), backgrounds = Set<Background>()
        for i in 0..<3000 {
            let scene = world.scene(i)
            #expect((1...3).contains(scene.objects.count))
            #expect(Set(scene.objects.map(\.cell)).count == scene.objects.count)
            #expect(scene.objects.map(\.cell) == scene.objects.map(\.cell).sorted())
            objectCounts[scene.objects.count] += 1
            for o in scene.objects {
                shapes.insert(o.shape)
                colours.insert(o.colour)
                cells.insert(o.cell)
            }
            backgrounds.insert(scene.background)
        }
        #expect(objectCounts[1] > 500 && objectCounts[2] > 500 && objectCounts[3] > 500)
        #expect(shapes.count == ShapeKind.allCases.count && colours.count == 8 && cells.count == 9 && backgrounds.count == 2)
    }

    @Test func coloursAreDistinct() {
        let all = Colour.allCases.map { $0.rgb8 }.map { [$0.r, $0.g, $0.b] } + Background.allCases.map { [UInt8](repeating: $0.rgb8, count: 3) }
        #expect(Set(all).count == all.count)
    }

    @Test(arguments: [32, 64])
    func everyObjectPixelHasItsColour(imageSize: Int) {
        let world = ShapesWorld(seed: 5, imageSize: imageSize)
        let raster = Rasterizer(imageSize: imageSize)
        for i in 0..<400 {
            let ex = world.example(i)
            let owner = ex.scene.coverage(imageSize: imageSize)
            #expect(ex.pixels.count == imageSize * imageSize * 3)
            var pixelsPerObject = [Int](repeating: 0, count: ex.scene.objects.count)
            for y in 0..<imageSize {
                for x in 0..<imageSize {
                    let p = y * imageSize + x
                    let rgb = SIMD3(ex.pixels[3 * p], ex.pixels[3 * p + 1], ex.pixels[3 * p + 2])
                    let k = Int(owner[p])
                    if k >= 0 {
                        let o = ex.scene.objects[k]
                        pixelsPerObject[k] += 1
                        #expect(rgb == o.colour.rgb)
                        #expect(raster.cellRange(o.cell.column).contains(x) && raster.cellRange(o.cell.row).contains(y))
                    } else {
                        #expect(rgb == ex.scene.background.rgb)
                    }
                }
            }
            // Every object is visible, and no object touches the edge of its cell.
            #expect(pixelsPerObject.allSatisfy { $0 >= 8 }, "\(ex.scene.objects) \(pixelsPerObject)")
            for o in ex.scene.objects {
                let xs = raster.cellRange(o.cell.column), ys = raster.cellRange(o.cell.row)
                for x in xs { #expect(owner[ys.lowerBound * imageSize + x] < 0 && owner[(ys.upperBound - 1) * imageSize + x] < 0) }
                for y in ys { #expect(owner[y * imageSize + xs.lowerBound] < 0 && owner[y * imageSize + xs.upperBound - 1] < 0) }
            }
        }
    }

    @Test(arguments: [32, 64])
    func shapesAndSizesHaveDistinctMasks(imageSize: Int) {
        // Detection can tell every (shape, size) apart by its exact mask, in every cell.
        for cell in GridCell.all {
            var masks: [[Int8]] = []
            for shape in ShapeKind.allCases {
                for size in ObjectSize.allCases {
                    let scene = Scene(objects: [SceneObject(shape: shape, colour: .red, size: size, cell: cell)], background: .black)
                    masks.append(scene.coverage(imageSize: imageSize))
                }
            }
            #expect(Set(masks).count == masks.count, "cell \(cell.name) at \(imageSize)")
        }
    }

    @Test func pixelsAreInUnitRangeAndExact8Bit() {
        let ex = ShapesWorld(seed: 9).example(0)
        #expect(ex.pixels.allSatisfy { $0 >= 0 && $0 <= 1 })
        #expect(ex.pixels.allSatisfy { ($0 * 255).rounded() / 255 == $0 })
    }
}
