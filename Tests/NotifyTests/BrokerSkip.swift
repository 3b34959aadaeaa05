import TestKit
import XCTest

extension MosquittoBroker {
    /// Skips the test (cleanly) when the broker is not installed; CI installs the mosquitto package.
    static func requireInstalled() throws {
        guard isInstalled else { throw XCTSkip("\(binary) is not installed (Debian package mosquitto)") }
    }
}
