import Foundation

/// Archives that expand far beyond their size, for the tests of `archive extract`'s limits.
public enum ArchiveBombs {
    /// A tar.zst of about 66 KB holding one member of 2 GiB of zeros. Made from concatenated
    /// zstd frames (one holds 64 MiB of zeros, repeated 32 times), which every zstd decoder
    /// reads as one stream: compressing 2 GiB here would take most of a minute. The tar
    /// header comes from GNU tar on a sparse file; the zeros after the member are tar's own
    /// end-of-archive blocks and padding.
    public static func zstdTwoGiB() async throws -> URL {
        let work = try Repository.temporaryFolder("bomb")
        let made = try await runProgram("/bin/sh", ["-c", """
            set -e
            truncate -s 2G zeros
            tar -cf - zeros | head -c 512 > header
            rm zeros
            head -c 64M /dev/zero | zstd -q -c > frame
            {
              zstd -q -c header
              for i in $(seq 32); do cat frame; done
              head -c 9728 /dev/zero | zstd -q -c
            } > bomb.tar.zst
            """], in: work)
        guard made.status == 0 else { throw BombNotMade(stderr: made.stderr) }
        return work.appendingPathComponent("bomb.tar.zst")
    }

    struct BombNotMade: Error, CustomStringConvertible {
        let stderr: String
        var description: String { "could not make the zstd bomb (tar, zstd): \(stderr)" }
    }
}
