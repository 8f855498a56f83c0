// A folder's image–caption rows as the mixed-modal families read them: the held-out split depends
// on the file name alone (stable when rows are added or reordered), every image's captions sit on
// one side, epochs visit rows in permutations computed per index, and bad rows name their line.
// Also the texture generator that stands in for a user's folder.
import Foundation
import Media
import Testing
@testable import Data

@Suite("Captioned images")
struct CaptionedImagesTests {
    func temporaryFolder() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-cap-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    func names(_ s: FolderImageCaptions) -> Set<String> { Set(s.rows.map(\.fileName)) }

    @Test func theHeldOutSplitDependsOnTheFileNameAlone() throws {
        let folder = temporaryFolder()
        try Textures(seed: 1).writeFolder(examples: 0..<200, to: folder)
        let train = try FolderImageCaptions(folder: folder, imageSize: 32, split: .train)
        let held = try FolderImageCaptions(folder: folder, imageSize: 32, split: .heldOut)
        #expect(names(train).isDisjoint(with: names(held)) && train.rows.count + held.rows.count == 200)
        #expect((8...32).contains(held.rows.count), "about a tenth held out: \(held.rows.count) of 200")
        // Reorder the rows, add 100 more and a second caption of a held-out image: no row moves.
        let path = (folder as NSString).appendingPathComponent("metadata.jsonl")
        var lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init).reversed().map { $0 }
        try Textures(seed: 1).writeFolder(examples: 200..<300, to: folder)        // replaces the metadata
        lines += try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        let twice = held.rows[0].fileName
        lines.append("{\"file_name\": \"\(twice)\", \"text\": \"a second caption\"}")
        try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let train2 = try FolderImageCaptions(folder: folder, imageSize: 32, split: .train)
        let held2 = try FolderImageCaptions(folder: folder, imageSize: 32, split: .heldOut)
        #expect(names(train).isSubset(of: names(train2)) && names(held).isSubset(of: names(held2)))
        #expect(held2.rows.filter { $0.fileName == twice }.count == 2, "both captions of an image on its side")
        // A larger fraction holds out more; the images come back square at the asked size.
        let quarter = try FolderImageCaptions(folder: folder, imageSize: 24, split: .heldOut, heldOut: 0.25)
        #expect(names(held2).isSubset(of: names(quarter)) && quarter.rows.count > held2.rows.count)
        let image = try quarter.image(0)
        #expect(image.width == 24 && image.height == 24 && image.channels == 3)
    }

    @Test func badRowsNameTheirFileAndLine() throws {
        let folder = temporaryFolder()
        try Textures(seed: 2).writeFolder(examples: 0..<3, to: folder)
        let path = (folder as NSString).appendingPathComponent("metadata.jsonl")
        try "{\"file_name\": \"texture-000000.png\", \"text\": \"red dots on white\"}\n{\"file_name\": \"texture-000001.png\", \"text\": \"  \"}\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: FolderDatasetError.badRow(path: path, line: 2, reason: "texture-000001.png: empty \"text\" (a caption is needed)")) {
            try FolderImageCaptions(folder: folder, imageSize: 32, split: .train)
        }
        // No rows on one side of the split: say how many there were and what to change.
        try "{\"file_name\": \"texture-000000.png\", \"text\": \"red dots on white\"}\n".write(toFile: path, atomically: true, encoding: .utf8)
        let side: FolderImageCaptions.Split = FolderImageCaptions.isHeldOut("texture-000000.png", fraction: 0.1) ? .train : .heldOut
        let error = #expect(throws: FolderDatasetError.self) { try FolderImageCaptions(folder: folder, imageSize: 32, split: side) }
        #expect(error?.description.contains("none of its 1 image rows fall on the \(side.rawValue) side") == true, "\(String(describing: error))")
        // A file that is not a PNG is named with its line before anything trains…
        try "{\"file_name\": \"texture-000000.png\", \"text\": \"red dots on white\"}\n{\"file_name\": \"texture-000001.png\", \"text\": \"a\"}\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        try Foundation.Data("not a png".utf8).write(to: URL(fileURLWithPath: (folder as NSString).appendingPathComponent("texture-000000.png")))
        let bad = #expect(throws: FolderDatasetError.self) { try FolderImageCaptions(folder: folder, imageSize: 32, split: .train, heldOut: 0) }
        #expect(bad?.description.hasPrefix("\(path):1: texture-000000.png: ") == true, "\(String(describing: bad))")
        // …or, with skipBad, left out and listed; empty captions likewise.
        try "{\"file_name\": \"texture-000000.png\", \"text\": \"red dots on white\"}\n{\"file_name\": \"texture-000001.png\", \"text\": \" \"}\n{\"file_name\": \"texture-000002.png\", \"text\": \"ok\"}\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        let kept = try FolderImageCaptions(folder: folder, imageSize: 32, split: .train, heldOut: 0, skipBad: true)
        #expect(kept.rows.map(\.line) == [3] && kept.skipped.count == 2, "\(kept.skipped)")
        #expect(kept.skipped[0].hasPrefix("\(path):1: texture-000000.png: ") && kept.skipped[1].hasPrefix("\(path):2: "))
    }

    @Test func everyPNGKindReadsAsAnRGBSquare() throws {
        // The PNG variants of the fuzz seeds (gray 1- and 8-bit, gray+alpha 16-bit, palette with
        // transparency, interlaced, RGB 16-bit, RGBA), each a row of one folder.
        let seeds = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("fuzz/corpus/png")
        let names = ["gray1.png", "gray8.png", "graya16.png", "palette-trns.png", "interlaced.png", "rgb16.png", "rgba8.png"]
        let folder = temporaryFolder()
        for name in names {
            try FileManager.default.copyItem(at: seeds.appendingPathComponent(name), to: URL(fileURLWithPath: folder).appendingPathComponent(name))
        }
        try names.map { "{\"file_name\": \"\($0)\", \"text\": \"a \($0)\"}" }.joined(separator: "\n")
            .write(toFile: (folder as NSString).appendingPathComponent("metadata.jsonl"), atomically: true, encoding: .utf8)
        let all = try FolderImageCaptions(folder: folder, imageSize: 8, split: .train, heldOut: 0)
        #expect(all.rows.count == names.count && all.skipped.isEmpty)
        for i in 0..<names.count {
            let image = try all.image(i)
            #expect(image.width == 8 && image.height == 8 && image.channels == 3, "\(names[i])")
            #expect(image.pixels.allSatisfy { $0 >= 0 && $0 <= 1 }, "\(names[i])")
        }
    }

    @Test func indexPermutationsAreBijectionsThatChangeEachRound() {
        for n in [1, 2, 3, 7, 100, 1000, 4097] {
            let p = IndexPermutation(n, seed: 9, round: 0)
            #expect((0..<n).map { p($0) }.sorted() == Array(0..<n), "a permutation of 0..<\(n)")
        }
        let a = IndexPermutation(100, seed: 9, round: 0), b = IndexPermutation(100, seed: 9, round: 1)
        #expect((0..<100).map { a($0) } != (0..<100).map { b($0) } && (0..<100).map { a($0) } != Array(0..<100))
        #expect((0..<100).map { a($0) } == (0..<100).map { IndexPermutation(100, seed: 9, round: 0)($0) })
    }

    @Test func texturesAreReproducibleVariedAndCaptioned() {
        let t = Textures(seed: 5)
        let examples = (0..<60).map(t.example)
        #expect(examples.map(\.caption) == (0..<60).map { t.example($0).caption })
        #expect(Set(examples.map { "\($0.image.width)x\($0.image.height)" }).count > 1, "several sizes")
        #expect(Set(examples.map(\.caption)).count > 20, "many captions")
        for (image, caption) in examples.prefix(20) {
            // Every pixel is the captioned ink or the captioned paper, and both show.
            let colours = Set(stride(from: 0, to: image.pixels.count, by: 3).map { Array(image.pixels[$0..<($0 + 3)]) })
            let ink = Textures.colours.first { caption.hasPrefix($0.name + " ") }!.rgb
            let paper = Textures.backgrounds.first { caption.hasSuffix(" on " + $0.name) }!.rgb
            #expect(colours == [ink, paper], "\(caption): \(colours)")
        }
        // ShapesWorld conforms too, with no end.
        let world: any CaptionedImages = ShapesWorld(seed: 0)
        #expect(world.count == nil && world.caption(3) == ShapesWorld(seed: 0).example(3).caption)
        #expect(try! world.image(3).pixels == ShapesWorld(seed: 0).example(3).pixels)
    }
}
