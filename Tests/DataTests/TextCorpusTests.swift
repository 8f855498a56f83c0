// A text corpus read in chunks: plain-text chunks put back together give the file (characters cut
// by a chunk boundary belong to one chunk), every JSONL line belongs to exactly one chunk whatever
// its length, the last chunks of each file are held out, and bad input names the file and byte.
import Foundation
import Testing
@testable import Data

@Suite("Text corpus")
struct TextCorpusTests {
    func file(_ name: String, _ contents: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-corpus-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent(name).path
        try! contents.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func plainChunksPutBackTogetherGiveTheFile() throws {
        // Two- to four-byte characters, so chunk boundaries of 37 bytes fall inside characters.
        let text = (0..<120).map { "line \($0): café, naïve, 東京, 🦊\n" }.joined()
        let path = file("a.txt", text)
        let corpus = try TextCorpus(paths: [path], chunkBytes: 37, heldOut: 0.1)
        let file = corpus.files[0]
        #expect(file.chunks == (text.utf8.count + 36) / 37 && file.heldOutChunks == Int((Double(file.chunks) * 0.1).rounded(.up)))
        #expect(corpus.trainingChunks + corpus.heldOutChunks == file.chunks)
        let training = try (0..<corpus.trainingChunks).map { try corpus.documents(corpus.trainingChunk($0)) }
        let held = try (0..<corpus.heldOutChunks).map { try corpus.documents(corpus.heldOutChunk($0)) }
        #expect(training.allSatisfy { $0.count == 1 } && held.allSatisfy { $0.count == 1 })
        #expect((training + held).map { $0[0] }.joined() == text, "the chunks are the file, in order, no character split")
        #expect(text.hasSuffix(held.map { $0[0] }.joined()) && corpus.heldOutChunk(0).index == corpus.trainingChunks,
                "the last chunks are held out")
    }

    @Test func everyJSONLLineBelongsToOneChunk() throws {
        let texts = (0..<60).map { i in String(repeating: "w\(i) ", count: 1 + (i * 7) % 40) }  // 3 to 160 bytes
        var lines = texts.map { "{\"text\": \"\($0)\", \"id\": 1}" }
        lines.insert("   ", at: 5)                                                  // blank lines are skipped
        let path = file("b.jsonl", lines.joined(separator: "\n") + "\n")
        let corpus = try TextCorpus(paths: [path], chunkBytes: 50, heldOut: 0.2)
        let all = try (0..<corpus.trainingChunks).flatMap { try corpus.documents(corpus.trainingChunk($0)) }
            + (0..<corpus.heldOutChunks).flatMap { try corpus.documents(corpus.heldOutChunk($0)) }
        #expect(all == texts, "each line once, in order")
        #expect(try (0..<corpus.trainingChunks).contains { try corpus.documents(corpus.trainingChunk($0)).isEmpty },
                "some chunks start no line (a long line runs through them)")
    }

    @Test func badInputNamesTheFileAndByte() throws {
        let good = "{\"text\": \"fine\"}\n"
        for (line, reason) in [("[1, 2]", "expected a JSON object"), ("{\"text\": 3}", "missing \"text\" string"),
                               ("{\"text\": \"a\"", "not valid JSON")] {
            let path = file("c.jsonl", good + line + "\n" + good)
            let corpus = try TextCorpus(paths: [path], chunkBytes: 4096, heldOut: 0)
            let error = #expect(throws: TextCorpusError.self) { try corpus.documents(corpus.trainingChunk(0)) }
            #expect(error?.description.hasPrefix("\(path): byte \(good.utf8.count): \(reason)") == true, "\(String(describing: error))")
        }
        let latin1 = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-latin1-\(UUID().uuidString).txt").path
        try Foundation.Data([0x63, 0x61, 0x66, 0xE9, 0x20, 0x6F, 0x6B]).write(to: URL(fileURLWithPath: latin1))  // "café ok" in Latin-1
        let corpus = try TextCorpus(paths: [latin1], chunkBytes: 64, heldOut: 0)
        let error = #expect(throws: TextCorpusError.self) { try corpus.documents(corpus.trainingChunk(0)) }
        #expect(error?.description.contains("not UTF-8") == true && error?.description.hasPrefix(latin1) == true)
        let dir = FileManager.default.temporaryDirectory.path
        #expect(throws: TextCorpusError.unreadable(path: "/no/such.txt", reason: "no such file")) {
            try TextCorpus(paths: ["/no/such.txt"], chunkBytes: 64, heldOut: 0.1)
        }
        #expect(throws: TextCorpusError.unreadable(path: dir, reason: "is a directory, not a text file")) {
            try TextCorpus(paths: [dir], chunkBytes: 64, heldOut: 0.1)
        }
        let empty = file("e.txt", "")
        #expect(throws: TextCorpusError.unreadable(path: empty, reason: "is empty")) { try TextCorpus(paths: [empty], chunkBytes: 64, heldOut: 0.1) }
        let tiny = file("t.txt", "short")
        let small = #expect(throws: TextCorpusError.self) { try TextCorpus(paths: [tiny], chunkBytes: 64, heldOut: 0.1) }
        #expect(small?.description.contains("too small to hold out text") == true)
    }

    @Test func aLargeFileIsReadOneChunkAtATime() throws {
        // 64 MiB of text, sparse on disk; reading its last chunk reads that chunk only.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-big-\(UUID().uuidString).txt").path
        FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.truncate(atOffset: 64 << 20)
        try handle.seek(toOffset: (64 << 20) - 256)
        try handle.write(contentsOf: Foundation.Data(String(repeating: "tail ", count: 51).utf8 + [0x0A]))
        try handle.close()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let corpus = try TextCorpus(paths: [path], chunkBytes: 256, heldOut: 0.01)
        #expect(corpus.files[0].chunks == 262_144 && corpus.heldOutChunks == 2622)
        let last = try corpus.documents(corpus.heldOutChunk(corpus.heldOutChunks - 1))
        #expect(last == [String(repeating: "tail ", count: 51) + "\n"])
    }
}
