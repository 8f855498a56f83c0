// Audio: a mono Float waveform, and AudioFile, reading anything libsndfile reads and writing 16-bit WAV/FLAC.
// Not a streaming or multichannel API: files are read whole and mixed down to one channel.
import CSndFile
import Foundation

/// A mono waveform: `samples` in [-1, 1] at `sampleRate` Hz.
///
/// ```swift
/// let a = try AudioFile.read("speech.flac", sampleRate: 16_000)   // mono, 16 kHz
/// print(a.duration)                                                // seconds
/// ```
public struct Audio: Equatable {
    public var sampleRate: Int
    public var samples: [Float]

    public init(sampleRate: Int, samples: [Float]) {
        precondition(sampleRate > 0, "Audio: sample rate \(sampleRate)")
        self.sampleRate = sampleRate
        self.samples = samples
    }

    /// Length in seconds.
    public var duration: Double { Double(samples.count) / Double(sampleRate) }
}

/// Audio file input/output through libsndfile.
public enum AudioFile {
    /// Sample rates `read` accepts: telephone speech to studio masters.
    public static let supportedRates = 1000...768_000

    /// Reads any file libsndfile understands (WAV, FLAC, AIFF, OGG…), averages its channels to
    /// mono and, when `sampleRate` is given, resamples to it (see `Audio.resampled(to:)`).
    ///
    /// A file shorter than its header declares is an error, not a silently short clip.
    /// - Throws: `MediaError` naming the file: missing, not recognised, truncated or corrupt.
    public static func read(_ path: String, sampleRate: Int? = nil) throws -> Audio {
        if access(path, R_OK) != 0 { throw MediaError.io(path: path, reason: "cannot open: \(errnoText())") }
        var info = SF_INFO()
        guard let file = sf_open(path, Int32(SFM_READ), &info) else {
            let message = String(cString: sf_strerror(nil))
            switch Int(sf_error(nil)) {
            case SF_ERR_UNRECOGNISED_FORMAT:
                throw MediaError.notRecognised(path: path, reason: "not an audio file libsndfile knows (\(message))")
            case SF_ERR_SYSTEM: throw MediaError.io(path: path, reason: message)
            case SF_ERR_UNSUPPORTED_ENCODING: throw MediaError.unsupported(path: path, reason: message)
            default: throw MediaError.corrupt(path: path, reason: message)
            }
        }
        defer { sf_close(file) }
        let channels = Int(info.channels), declared = Int(info.frames)
        guard channels > 0, info.samplerate > 0 else {
            throw MediaError.corrupt(path: path, reason: "\(channels) channels at \(info.samplerate) Hz")
        }
        // A header can claim any rate; resampling from 10⁹ Hz would take hours and gigabytes.
        guard supportedRates.contains(Int(info.samplerate)) else {
            throw MediaError.unsupported(path: path, reason: "sample rate \(info.samplerate) Hz (expected \(supportedRates.lowerBound)…\(supportedRates.upperBound) Hz)")
        }
        if let reason = truncation(logOf: file) { throw MediaError.truncated(path: path, reason: reason) }

        // Read in blocks until libsndfile stops: the declared length is not trusted for allocation.
        let block = 1 << 14
        var interleaved = [Float](repeating: 0, count: block * channels)
        var mono: [Float] = []
        mono.reserveCapacity(min(max(declared, 0), 1 << 26))
        while true {
            let got = Int(interleaved.withUnsafeMutableBufferPointer { sf_readf_float(file, $0.baseAddress, sf_count_t(block)) })
            if got <= 0 { break }
            let scale = 1 / Float(channels)
            for f in 0..<got {
                var s: Float = 0
                for c in 0..<channels { s += interleaved[f * channels + c] }
                mono.append(s * scale)
            }
        }
        if sf_error(file) != 0 {
            throw MediaError.corrupt(path: path, reason: String(cString: sf_strerror(file)))
        }
        if declared > 0 && mono.count < declared {
            throw MediaError.truncated(path: path, reason: "header declares \(declared) frames, only \(mono.count) decoded")
        }
        let audio = Audio(sampleRate: Int(info.samplerate), samples: mono)
        if let rate = sampleRate, rate != audio.sampleRate { return audio.resampled(to: rate) }
        return audio
    }

    /// libsndfile accepts a WAV/AIFF whose data chunk is cut short and quietly reports fewer frames;
    /// its log then says e.g. "data : 32000 (should be 15978)". A declared size larger than the
    /// bytes present is a truncated file (a smaller one is a streamed header, which is fine).
    static func truncation(logOf file: OpaquePointer) -> String? {
        var log = [CChar](repeating: 0, count: 1 << 14)
        _ = log.withUnsafeMutableBufferPointer { sf_command(file, Int32(SFC_GET_LOG_INFO), $0.baseAddress, Int32($0.count)) }
        let text = String(cString: log)
        for line in text.split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix("data") || trimmed.hasPrefix("SSND"),
                  let open = trimmed.range(of: "(should be "), let colon = trimmed.firstIndex(of: ":"),
                  colon < open.lowerBound else { continue }
            let declared = Int(trimmed[trimmed.index(after: colon)..<open.lowerBound]
                .trimmingCharacters(in: .whitespaces))
            let actual = Int(trimmed[open.upperBound...].prefix(while: { $0.isNumber }))
            if let d = declared, let a = actual, a < d {
                return "data chunk declares \(d) bytes, file holds \(a)"
            }
        }
        return nil
    }

    /// Writes 16-bit PCM: FLAC when `path` ends in `.flac`, WAV when it ends in `.wav`. Samples
    /// outside [-1, 1] are clipped. The file is written beside `path` under a temporary name and
    /// renamed into place.
    public static func write(_ audio: Audio, to path: String) throws {
        let ext = URL(fileURLWithPath: path).pathExtension.lowercased()
        let major: Int32
        switch ext {
        case "wav": major = Int32(SF_FORMAT_WAV)
        case "flac": major = Int32(SF_FORMAT_FLAC)
        default: throw MediaError.unsupported(path: path, reason: "cannot write '.\(ext)' audio (use .wav or .flac)")
        }
        try AtomicFile.write(to: path) { tmp in
            var info = SF_INFO()
            info.samplerate = Int32(audio.sampleRate)
            info.channels = 1
            info.format = major | Int32(SF_FORMAT_PCM_16)
            guard let file = sf_open(tmp, Int32(SFM_WRITE), &info) else {
                throw MediaError.io(path: path, reason: "cannot create: \(String(cString: sf_strerror(nil)))")
            }
            sf_command(file, Int32(SFC_SET_CLIPPING), nil, Int32(SF_TRUE))
            let written = audio.samples.withUnsafeBufferPointer {
                sf_writef_float(file, $0.baseAddress, sf_count_t($0.count))
            }
            let failure = written != audio.samples.count ? String(cString: sf_strerror(file)) : nil
            if sf_close(file) != 0 || failure != nil {
                throw MediaError.io(path: path, reason: "write failed: \(failure ?? "close failed")")
            }
        }
    }
}
