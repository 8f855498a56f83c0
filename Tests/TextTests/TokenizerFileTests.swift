// Saving and loading tokenizer JSON: round trip and errors that name the file and the problem.
import Foundation
import Testing
import Data
@testable import Text

@Suite("Tokenizer files")
struct TokenizerFileTests {
    func temporaryPath(_ name: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-text-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appendingPathComponent(name).path
    }

    @Test func saveLoadRoundTrip() throws {
        let tok = BPETokenizer.train(corpus: englishCorpus(), vocabSize: 350)
        let path = temporaryPath("tokenizer.json")
        try tok.save(to: path)
        let back = try BPETokenizer.load(from: path)
        #expect(back == tok)
        #expect(back.vocabSize == 350)
        var rng = SplitMix64(state: 5)
        for _ in 0..<200 {
            let s = randomString(&rng)
            #expect(back.encode(s) == tok.encode(s))
        }
        let json = try String(contentsOfFile: path, encoding: .utf8)
        #expect(json.contains("\"format\":\"fusion-bpe\""))
    }

    func loadError(_ contents: String?) -> (path: String, error: TokenizerError?) {
        let path = temporaryPath("bad.json")
        if let contents { try! contents.write(toFile: path, atomically: true, encoding: .utf8) }
        do {
            _ = try BPETokenizer.load(from: path)
            return (path, nil)
        } catch let e as TokenizerError {
            return (path, e)
        } catch {
            Issue.record("unexpected error type \(error)")
            return (path, nil)
        }
    }

    @Test func loadErrorsNameFileAndProblem() {
        let cases: [(String?, String)] = [
            (nil, "cannot read"),
            ("{not json", "invalid tokenizer file"),
            (#"{"format":"other","version":1,"specialTokens":[],"vocabSize":263,"merges":[]}"#, "format is \"other\""),
            (#"{"format":"fusion-bpe","version":9,"specialTokens":[],"vocabSize":263,"merges":[]}"#, "version 9"),
            (#"{"format":"fusion-bpe","version":1,"specialTokens":["<bos>","<eos>","<pad>","<boi>","<eoi>","<boa>","<eoa>"],"vocabSize":264,"merges":[[7,999]]}"#, "merge 0 uses id 999"),
            (#"{"format":"fusion-bpe","version":1,"specialTokens":["<bos>","<eos>","<pad>","<boi>","<eoi>","<boa>","<eoa>"],"vocabSize":264,"merges":[[7]]}"#, "merge 0 has 1 ids"),
            (#"{"format":"fusion-bpe","version":1,"specialTokens":["<bos>","<eos>","<pad>","<boi>","<eoi>","<boa>","<eoa>"],"vocabSize":300,"merges":[[7,8]]}"#, "vocabSize 300"),
            (#"{"format":"fusion-bpe","version":1,"specialTokens":["<bos>","<eos>","<pad>","<boi>","<eoi>","<boa>","<eoa>"],"vocabSize":263}"#, "missing key \"merges\""),
        ]
        for (contents, needle) in cases {
            let (path, error) = loadError(contents)
            let message = error.map { "\($0)" } ?? "no error"
            #expect(message.contains(path), "\(message)")
            #expect(message.contains(needle), "\(message)")
        }
    }
}
