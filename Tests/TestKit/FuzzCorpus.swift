import Foundation

/// The fuzz targets' seeds (`Tests/FuzzCorpus/TARGET`, see `tools/fuzz`); the inputs a fuzzer once crashed on are
/// kept there as `regress-*` files, so the fuzzer starts from them and the module's tests replay them.
public enum FuzzCorpus {
    /// The `regress-*` files of one target, by name.
    public static func regressions(_ target: String) -> [URL] {
        let folder = Shared.repositoryRoot.appendingPathComponent("Tests/FuzzCorpus/\(target)")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { $0.hasPrefix("regress-") }.sorted().map { folder.appendingPathComponent($0) }
    }
}
