import Foundation

/// What ffprobe and ffmpeg read in a recording (both on the Mac's PATH, e.g. from Homebrew).
enum MediaProbe {
    /// One stream of a media file; frames counted by decoding.
    struct Stream {
        let codec: String
        let width: Int?
        let height: Int?
        let frames: Int?
    }

    /// The video and audio streams of `file`, by codec type.
    static func streams(_ file: URL) throws -> [String: Stream] {
        let out = String(decoding: try run("ffprobe", "-v", "error", "-count_frames", "-show_entries",
                                           "stream=codec_type,codec_name,width,height,nb_read_frames",
                                           "-of", "csv=p=0:nk=0", file.path), as: UTF8.self)
        var found: [String: Stream] = [:]
        for line in out.split(separator: "\n") {
            var fields: [String: String] = [:]
            for pair in line.split(separator: ",") {
                let kv = pair.split(separator: "=", maxSplits: 1).map(String.init)
                if kv.count == 2 { fields[kv[0]] = kv[1] }
            }
            if let type = fields["codec_type"], let codec = fields["codec_name"] {
                found[type] = Stream(codec: codec, width: fields["width"].flatMap { Int($0) },
                                     height: fields["height"].flatMap { Int($0) }, frames: fields["nb_read_frames"].flatMap { Int($0) })
            }
        }
        return found
    }

    /// The mean R, G, B of decoded frame `index` of `file`.
    static func meanRgb(_ file: URL, frame index: Int) throws -> (r: Double, g: Double, b: Double) {
        let rgb = try run("ffmpeg", "-v", "error", "-i", file.path, "-vf", "select=eq(n\\,\(index))", "-frames:v", "1",
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-")
        let pixels = rgb.count / 3
        guard pixels > 0 else { throw SandboxError.unexpected("no frame \(index) in \(file.path)") }
        var sums = [0.0, 0.0, 0.0]
        for (i, byte) in rgb.enumerated() {
            sums[i % 3] += Double(byte)
        }
        return (sums[0] / Double(pixels), sums[1] / Double(pixels), sums[2] / Double(pixels))
    }

    private static func run(_ arguments: String...) throws -> Data {
        let process = Process()
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw SandboxError.unexpected(arguments.joined(separator: " ")) }
        return data
    }
}
