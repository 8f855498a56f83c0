// What a position or span carries (text, image, audio, or a registered modality) and how a model's
// config declares a span modality. Not layout (MixedSequence), not values (Modalities).
import Foundation
import Text

/// What a position or span carries: text, or a modality of spans framed by its own opening and
/// closing ids. Image (BOI … EOI) and audio (BOA … EOA) are built in; a new modality is
/// registered once, by name, with two marker ids of its text vocabulary
/// (``register(_:opening:closing:)``), and from then on lays out, packs, masks and samples as the
/// built-in ones do.
///
/// ```swift
/// let signal = try Modality.register("signal", opening: 40, closing: 41)
/// let seq = MixedSequence(segments: [.text(prompt), .span(signal, length: 16)])
/// ```
public struct Modality: Hashable, Comparable, Codable, Sendable, CustomStringConvertible {
    /// Its number: 0 text, 1 image, 2 audio, then registered modalities in registration order
    /// (numbers are per process; a saved config names a registered modality by name).
    public let rawValue: Int32

    public init?(rawValue: Int32) {
        guard Self.registry.entry(rawValue) != nil else { return nil }
        self.rawValue = rawValue
    }

    fileprivate init(known rawValue: Int32) { self.rawValue = rawValue }

    public static let text = Modality(known: 0)
    public static let image = Modality(known: 1)
    public static let audio = Modality(known: 2)

    /// Its name (`text`, `image`, `audio`, or the registered one): metric names (`loss_image`),
    /// checkpoint key prefixes of its layers, messages.
    public var name: String { Self.registry.entry(rawValue)!.name }
    public var description: String { name }

    /// The reserved id that opens a span of this modality (BOI, BOA, or the registered one).
    public var opening: Int32 { markers.opening }

    /// The reserved id that closes a span of this modality (EOI, EOA, or the registered one).
    public var closing: Int32 { markers.closing }

    private var markers: (opening: Int32, closing: Int32) {
        guard let ids = Self.registry.entry(rawValue)!.markers else { preconditionFailure("Modality: text has no spans") }
        return ids
    }

    /// The span modalities, built-in and registered, in number order.
    public static var spanModalities: [Modality] { (1..<registry.all.count).map { Modality(known: Int32($0)) } }

    /// The modality whose spans `id` opens, or nil.
    public init?(opening id: Int32) {
        guard let k = Self.registry.all.firstIndex(where: { $0.markers?.opening == id }) else { return nil }
        self.init(known: Int32(k))
    }

    /// The modality named `name`, or nil when none is registered under it.
    public init?(named name: String) {
        guard let k = Self.registry.all.firstIndex(where: { $0.name == name }) else { return nil }
        self.init(known: Int32(k))
    }

    /// Registers a span modality whose spans open with id `opening` and close with `closing`: two
    /// ids of the text vocabulary that nothing else uses (not BOS, EOS, PAD, not another
    /// modality's markers). Registering the same name with the same ids again returns the same
    /// modality, so every model or source that names it may register it.
    /// - Throws: ``ModalityError`` when the name is taken with other ids or the ids are in use.
    @discardableResult
    public static func register(_ name: String, opening: Int32, closing: Int32) throws -> Modality {
        try registry.register(name, opening: opening, closing: closing)
    }

    public static func < (a: Modality, b: Modality) -> Bool { a.rawValue < b.rawValue }

    public init(from decoder: Swift.Decoder) throws {
        let raw = try decoder.singleValueContainer().decode(Int32.self)
        guard let m = Modality(rawValue: raw) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "no modality numbered \(raw) in this process"))
        }
        self = m
    }

    public func encode(to encoder: Swift.Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }

    private static let registry = ModalityRegistry()
}

/// Why a modality cannot be registered.
public enum ModalityError: Error, CustomStringConvertible, Equatable {
    case nameTaken(String, opening: Int32, closing: Int32)
    case markerInUse(Int32, by: String)
    case badMarkers(String, opening: Int32, closing: Int32)

    public var description: String {
        switch self {
        case .nameTaken(let name, let o, let c):
            return "modality '\(name)' is registered with markers \(o), \(c): register it with the same ids or another name"
        case .markerInUse(let id, let owner):
            return "id \(id) already marks \(owner): a modality's opening and closing ids must be its own"
        case .badMarkers(let name, let o, let c):
            return "modality '\(name)': markers \(o), \(c) must be two different non-negative ids other than BOS, EOS and PAD"
        }
    }
}

/// The process's modalities: names and marker ids, numbered in registration order.
private final class ModalityRegistry: @unchecked Sendable {
    struct Entry { var name: String; var markers: (opening: Int32, closing: Int32)? }
    private let lock = NSLock()
    private var entries: [Entry] = [
        Entry(name: "text", markers: nil),
        Entry(name: "image", markers: (SpecialTokens.boi, SpecialTokens.eoi)),
        Entry(name: "audio", markers: (SpecialTokens.boa, SpecialTokens.eoa)),
    ]

    var all: [Entry] { lock.withLock { entries } }

    func entry(_ raw: Int32) -> Entry? {
        lock.withLock { raw >= 0 && Int(raw) < entries.count ? entries[Int(raw)] : nil }
    }

    func register(_ name: String, opening: Int32, closing: Int32) throws -> Modality {
        try lock.withLock {
            if let k = entries.firstIndex(where: { $0.name == name }) {
                guard let m = entries[k].markers, m == (opening, closing) else {
                    let m = entries[k].markers ?? (-1, -1)
                    throw ModalityError.nameTaken(name, opening: m.opening, closing: m.closing)
                }
                return Modality(known: Int32(k))
            }
            let structural = [SpecialTokens.bos, SpecialTokens.eos, SpecialTokens.pad]
            guard opening != closing, opening >= 0, closing >= 0, !structural.contains(opening), !structural.contains(closing) else {
                throw ModalityError.badMarkers(name, opening: opening, closing: closing)
            }
            for e in entries { if let m = e.markers, let id = [opening, closing].first(where: { $0 == m.opening || $0 == m.closing }) {
                throw ModalityError.markerInUse(id, by: e.name)
            } }
            entries.append(Entry(name: name, markers: (opening, closing)))
            return Modality(known: Int32(entries.count - 1))
        }
    }
}

/// A span modality as a model's config declares it, for either family: its name and marker ids
/// (registered when the model is built, so a saved config rebuilds it in any process), the
/// positions of one span, and what each family needs of it — values per position and the adapter
/// kind for Transfusion (continuous), the codebook of its discrete tokenizer for Chameleon.
public struct ModalitySpec: Codable, Equatable, Sendable {
    public var name: String
    public var opening: Int32
    public var closing: Int32
    /// Positions of one span.
    public var length: Int
    /// Values per position of the continuous form (Transfusion's spans are (length, dim)).
    public var dim: Int
    /// The adapter kind that embeds and predicts its spans in Transfusion (`frames`: a linear
    /// layer per position; others registered in Modalities' `SpanAdapters`).
    public var adapter: String
    /// Codes of its discrete tokenizer (one code per position), for Chameleon; 0: none.
    public var codebookSize: Int

    public init(name: String, opening: Int32, closing: Int32, length: Int, dim: Int = 0, adapter: String = "frames",
                codebookSize: Int = 0) {
        self.name = name; self.opening = opening; self.closing = closing; self.length = length; self.dim = dim
        self.adapter = adapter; self.codebookSize = codebookSize
    }

    /// The modality, registered under its name and markers.
    public func register() throws -> Modality { try Modality.register(name, opening: opening, closing: closing) }

    /// What makes the spec unusable by a model whose text vocabulary has `vocab` ids and that
    /// needs `continuous` values or `discrete` codes, or nil. Registers the modality (idempotent)
    /// to find a clash with another one.
    public func problem(vocab: Int, continuous: Bool = false, discrete: Bool = false) -> String? {
        if length <= 0 { return "modality '\(name)': length \(length) must be positive" }
        if opening >= vocab || closing >= vocab {
            return "modality '\(name)': markers \(opening), \(closing) must be ids of the text vocabulary (\(vocab))"
        }
        if continuous && dim <= 0 { return "modality '\(name)': dim \(dim) must be positive for continuous spans" }
        if discrete && codebookSize <= 0 { return "modality '\(name)': codebookSize \(codebookSize) must be positive for code spans" }
        if Modality(named: name).map({ $0.rawValue <= 2 }) ?? false { return "modality '\(name)' is built in" }
        do { _ = try register() } catch { return "\(error)" }
        return nil
    }
}
