// MediaError: the one error type of the Media module, each case naming the file and the problem.
// Not a logging facility: callers decide whether to skip a bad file or stop.

/// An error reading or writing an image or audio file.
///
/// The description starts with the file's name (the last path component), so a data loader
/// can print it as is:
///
/// ```swift
/// do { _ = try PNG.read("in.png") } catch { print(error) }   // in.png: not a PNG file (bad signature)
/// ```
public enum MediaError: Error, CustomStringConvertible, Equatable {
    /// The file could not be opened, read, written or renamed (a system error).
    case io(path: String, reason: String)
    /// The bytes are not in the expected format at all (wrong signature, unknown container).
    case notRecognised(path: String, reason: String)
    /// The file ends before the data it declares.
    case truncated(path: String, reason: String)
    /// The file is in the right format but damaged or inconsistent (CRC error, bad header).
    case corrupt(path: String, reason: String)
    /// The file or the value is valid but of a kind this module does not handle.
    case unsupported(path: String, reason: String)

    /// The path the error refers to.
    public var path: String {
        switch self {
        case .io(let p, _), .notRecognised(let p, _), .truncated(let p, _), .corrupt(let p, _),
            .unsupported(let p, _):
            return p
        }
    }

    public var description: String {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        switch self {
        case .io(_, let r): return "\(name): \(r)"
        case .notRecognised(_, let r): return "\(name): \(r)"
        case .truncated(_, let r): return "\(name): truncated: \(r)"
        case .corrupt(_, let r): return "\(name): corrupt: \(r)"
        case .unsupported(_, let r): return "\(name): unsupported: \(r)"
        }
    }
}
