import Anomaly
import ArgumentParser

/// `roadwatch config`: what can be configured, printed from the one table the settings are declared in.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "What can be configured.",
        subcommands: [Reference.self]
    )

    struct Reference: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print every method and alarm setting as Markdown (docs/configuration.md is this output)."
        )

        func run() {
            print(Self.document, terminator: "")
        }

        static var document: String {
            """
            # Configuration reference

            Printed by `roadwatch config reference` from the table the settings are declared in
            (`MethodSettings.table`); a test fails when this file and that output differ.

            Every key below works the same three ways: `--set KEY=VALUE` on `run`, `batch`, `demo` and `eval`; `KEY: VALUE`
            in a camera (or `defaults`) of the `watch` YAML; and under `method` in every JSON summary roadwatch writes. A
            value outside what the key accepts is refused in one line naming the key. The YAML spellings `scene_cut` and
            `min_region_area` of earlier releases still work, with a warning naming the key to use.

            Shortcuts on the command line and in the YAML: `--k K` / `k: K` sets `cluster_counts` to `[K]`; `--variant V`
            / `variant: V` sets `score` (and `k4k8-median` sets `cluster_counts` [4, 8] with `statistic` median);
            `--tau`, `--seed`, `--smoothing`, `--hysteresis`, `--alarm` and `--alarm-threshold` set the key of the same
            name, `--scene-cut` sets `scene_cut_factor` and `--min-region-area` sets `minimum_region_area`.

            \(MethodSettings.referenceMarkdown())
            """
        }
    }
}
