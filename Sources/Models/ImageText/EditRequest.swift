// The checked inputs of `fusion edit`: the method, the input PNG (read, made RGB and resized to
// the run's size with a note) and the text each method needs, with errors that name the flag
// or file at fault. Not the editing (TransfusionEditEvaluation.swift, Models/TransfusionEditing).
import Foundation
import Media
import Training

/// A bad input to `fusion edit`, naming the flag or file.
public enum EditInputError: Error, Equatable, CustomStringConvertible {
    case missingImage(String)
    case notPNG(String)
    case unreadableImage(String, String)
    case emptyInstruction
    case missingText(flag: String, method: EditMethod, what: String)

    public var description: String {
        switch self {
        case .missingImage(let path): "--image \(path): no such file"
        case .notPNG(let path): "--image \(path): not a PNG file (it lacks the PNG signature); convert it to PNG first"
        case .unreadableImage(let path, let why): "--image \(path): cannot read it as a PNG: \(why)"
        case .emptyInstruction: "--instruction is empty: say what to change, e.g. --instruction \"make the square blue\""
        case .missingText(let flag, let method, let what):
            "--method \(method.rawValue) needs \(flag) (\(what)), e.g. \(flag) \"a red square\""
        }
    }
}

/// What `fusion edit` was asked, checked.
///
/// ```swift
/// let request = try EditRequest(method: .instruction, instruction: "make the square blue")
/// let (image, note) = try EditRequest.loadImage("in.png", size: 32)   // note: "resized 64×64 → 32×32"
/// ```
public struct EditRequest: Equatable, Sendable {
    public var method: EditMethod
    public var instruction: String
    public var sourcePrompt: String
    public var prompt: String

    /// Checks that `method` has its text: an instruction, or the source and target captions.
    public init(method: EditMethod, instruction: String? = nil, sourcePrompt: String? = nil, prompt: String? = nil) throws {
        func trimmed(_ s: String?) -> String? { s?.trimmingCharacters(in: .whitespacesAndNewlines) }
        switch method {
        case .instruction:
            guard let text = trimmed(instruction) else {
                throw EditInputError.missingText(flag: "--instruction", method: method, what: "what to change")
            }
            guard !text.isEmpty else { throw EditInputError.emptyInstruction }
        case .inversion:
            guard let source = trimmed(sourcePrompt), !source.isEmpty else {
                throw EditInputError.missingText(flag: "--source-prompt", method: method, what: "a caption of the input image")
            }
            guard let target = trimmed(prompt), !target.isEmpty else {
                throw EditInputError.missingText(flag: "--prompt", method: method, what: "a caption of the edited image")
            }
        }
        self.method = method
        self.instruction = trimmed(instruction) ?? ""
        self.sourcePrompt = trimmed(sourcePrompt) ?? ""
        self.prompt = trimmed(prompt) ?? ""
    }

    /// The PNG at `path` as an RGB image of `size`×`size`, and a note when it had to be resized.
    public static func loadImage(_ path: String, size: Int) throws -> (Image, note: String?) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw EditInputError.missingImage(path)
        }
        let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        var head: [UInt8] = []
        if let handle = FileHandle(forReadingAtPath: path) {
            head = [UInt8](handle.readData(ofLength: 8))
            try? handle.close()
        }
        guard head == signature else { throw EditInputError.notPNG(path) }
        let picture: Image
        do { picture = try PNG.read(path).converted(channels: 3) } catch {
            throw EditInputError.unreadableImage(path, "\(error)")
        }
        guard picture.width != size || picture.height != size else { return (picture, nil) }
        let note = "note: \(path) is \(picture.width)×\(picture.height); resized to the run's \(size)×\(size)"
        return (picture.resized(width: size, height: size), note)
    }
}
