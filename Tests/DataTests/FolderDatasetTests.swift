// Data folders: ShapesWorld written as PNG + metadata.jsonl reads back exactly; metadata
// errors name the file and the line.
import Foundation
import Media
import Testing
@testable import Data

@Suite("Folder datasets")
struct FolderDatasetTests {
    func temporaryFolder() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-data-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func shapesWorldFolderRoundTrip() throws {
        let folder = temporaryFolder()
        let world = ShapesWorld(seed: 3)
        try world.writeFolder(examples: 10..<30, to: folder)
        let data = try FolderDataset(folder: folder)
        #expect(data.imagePairs.count == 20 && data.audioPairs.isEmpty && data.edits.isEmpty)
        for k in 0..<20 {
            let (image, text) = try data.imagePair(k)
            let ex = world.example(10 + k)
            #expect(text == ex.caption)
            #expect(image.width == 32 && image.height == 32 && image.channels == 3)
            #expect(image.pixels == ex.pixels)  // 8-bit colours: exact
        }
        // Resizing on load gives the requested square size.
        let resized = try FolderDataset(folder: folder, imageSize: 16)
        let small = try resized.imagePair(0).image
        #expect(small.width == 16 && small.height == 16)
    }

    @Test func editFolderRoundTrip() throws {
        let folder = temporaryFolder()
        let world = ShapesWorld(seed: 4)
        try world.writeEditFolder(edits: 0..<10, to: folder)
        let data = try FolderDataset(folder: folder)
        #expect(data.edits.count == 10 && data.imagePairs.isEmpty)
        for k in 0..<10 {
            let (source, instruction, target) = try data.edit(k)
            let e = world.edit(k)
            #expect(instruction == e.instruction)
            #expect(source.pixels == e.source.render() && target.pixels == e.target.render())
        }
    }

    func metadataError(_ contents: String, files: [String] = []) -> String {
        let folder = temporaryFolder()
        for f in files { _ = FileManager.default.createFile(atPath: (folder as NSString).appendingPathComponent(f), contents: nil) }
        try! contents.write(toFile: (folder as NSString).appendingPathComponent("metadata.jsonl"), atomically: true, encoding: .utf8)
        do {
            _ = try FolderDataset(folder: folder)
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test func metadataErrorsNameFileAndLine() {
        let ok = #"{"file_name": "a.png", "text": "a red circle"}"#
        let cases: [(String, [String], String)] = [
            (ok + "\n{not json\n", ["a.png"], "metadata.jsonl:2: not valid JSON"),
            (ok + "\n\n" + #"{"file_name": "a.png"}"#, ["a.png"], "metadata.jsonl:3: missing key \"text\""),
            (#"{"file_name": "b.png", "text": "x"}"#, [], "metadata.jsonl:1: \"file_name\": file b.png not found"),
            (#"{"file_name": 3, "text": "x"}"#, [], "metadata.jsonl:1: \"file_name\" must be a string"),
            (#"{"file_name": "../a.png", "text": "x"}"#, [], "must stay inside the folder"),
            (#"{"file_name": "a.jpg", "text": "x"}"#, ["a.jpg"], "metadata.jsonl:1: a.jpg: only .png"),
            (#"{"source_file": "a.png", "instruction": "make it blue"}"#, ["a.png"], "missing key \"target_file\""),
            (#"[1, 2]"#, [], "metadata.jsonl:1: expected a JSON object"),
            (#"{"caption": "x"}"#, [], "a row needs"),
        ]
        for (contents, files, needle) in cases {
            let message = metadataError(contents, files: files)
            #expect(message.contains(needle), "\(message)")
        }
        let missing = temporaryFolder()
        #expect(throws: FolderDatasetError.self) { try FolderDataset(folder: missing) }
        do { _ = try FolderDataset(folder: missing) } catch { #expect("\(error)".contains("metadata.jsonl: no such file")) }
    }

    @Test func metadataFromBytesMatchesTheFileReader() throws {
        let text = "{\"file_name\": \"a.png\", \"text\": \"a red circle\"}\n\n{\"file_name\": \"b.wav\", \"text\": \"hi\"}\n"
        let meta = try FolderMetadata(folder: "nowhere", contents: Foundation.Data(text.utf8), checkFiles: false)
        #expect(meta.pairs.map(\.fileName) == ["a.png", "b.wav"])
        #expect(meta.pairs.map(\.line) == [1, 3])
        #expect(throws: FolderDatasetError.unreadable(path: "nowhere/metadata.jsonl", reason: "not UTF-8 text")) {
            try FolderMetadata(folder: "nowhere", contents: Foundation.Data([0xff, 0xfe]), checkFiles: false)
        }
    }

    @Test func corruptImageErrorNamesFile() throws {
        let folder = temporaryFolder()
        try "not a png".write(toFile: (folder as NSString).appendingPathComponent("bad.png"), atomically: true, encoding: .utf8)
        try #"{"file_name": "bad.png", "text": "x"}"#.write(toFile: (folder as NSString).appendingPathComponent("metadata.jsonl"), atomically: true, encoding: .utf8)
        let data = try FolderDataset(folder: folder)
        do {
            _ = try data.imagePair(0)
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("bad.png"))
        }
    }
}
