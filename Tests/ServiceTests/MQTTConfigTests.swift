import Foundation
import Service
import Testing
import TestKit

@Suite("roadwatch watch: the mqtt block of the config")
struct MQTTConfigTests {
    static let cameras = "output: o\ncameras:\n  a: {input: x.mp4}\n"

    @Test("defaults: port 1883, prefix roadwatch, discovery on, a client id from the host name, no TLS, no password")
    func defaults() throws {
        let config = try WatchConfig.parse(Self.cameras + "mqtt: {host: broker.lan}\n", path: "w.yaml", environment: [:])
        let mqtt = try #require(config.mqtt)
        #expect(mqtt.host == "broker.lan" && mqtt.port == 1883 && mqtt.keepalive == 30 && mqtt.prefix == "roadwatch")
        #expect(mqtt.discovery && !mqtt.tls && mqtt.password == nil && mqtt.user == nil && mqtt.statsInterval == 60)
        #expect(mqtt.clientID.hasPrefix("roadwatch-") && !mqtt.clientID.contains("."))
        #expect(try WatchConfig.parse(Self.cameras, path: "w.yaml", environment: [:]).mqtt == nil)
    }

    @Test("every key; the password from its file, else from ROADWATCH_MQTT_PASSWORD")
    func everyKey() throws {
        let scratch = try ScratchDirectory("mqttconfig")
        let passwordFile = scratch.path("pw"), ca = scratch.path("ca.crt")
        try "  from-file\n".write(toFile: passwordFile, atomically: true, encoding: .utf8)
        try "pem".write(toFile: ca, atomically: true, encoding: .utf8)
        let text = Self.cameras + """
            mqtt:
              host: 192.0.2.5
              port: 8883
              keepalive: 20
              tls: {ca_file: \(ca)}
              user: roadwatch
              password_file: \(passwordFile)
              client_id: garage-pi
              prefix: home/roadwatch
              discovery: false
              stats_interval: 0.5
            """
        let mqtt = try #require(try WatchConfig.parse(text, path: "w.yaml", environment: ["ROADWATCH_MQTT_PASSWORD": "from-env"]).mqtt)
        #expect(mqtt.port == 8883 && mqtt.keepalive == 20 && mqtt.tls && mqtt.caFile == ca && mqtt.user == "roadwatch")
        #expect(mqtt.password == "from-file", "the file wins over the environment")
        #expect(mqtt.clientID == "garage-pi" && mqtt.prefix == "home/roadwatch" && !mqtt.discovery && mqtt.statsInterval == 0.5)
        let fromEnv = try WatchConfig.parse(Self.cameras + "mqtt: {host: h, user: u}\n", path: "w.yaml",
                                            environment: ["ROADWATCH_MQTT_PASSWORD": "from-env"]).mqtt
        #expect(fromEnv?.password == "from-env")
        try " \n".write(toFile: passwordFile, atomically: true, encoding: .utf8)
        #expect(throws: ConfigError.self) { try WatchConfig.parse(text, path: "w.yaml", environment: [:]) }
    }

    @Test("bad mqtt blocks are refused in one line naming the key", arguments: [
        ("mqtt: {host: h, prot: 1883}\n", "w.yaml:4: mqtt.prot: unknown key (did you mean 'port'?)"),
        ("mqtt: {host: h, port: abc}\n", "w.yaml:4: mqtt.port: expected a whole number, got 'abc'"),
        ("mqtt: {host: h, port: 70000}\n", "mqtt.port: 70000 is outside 1...65535"),
        ("mqtt: broker.lan\n", "w.yaml:4: mqtt: expected a mapping of keys to values"),
        ("mqtt: {port: 1883}\n", "mqtt.host: missing"),
        ("mqtt: {host: h, discovery: maybe}\n", "mqtt.discovery: expected true or false, got 'maybe'"),
        ("mqtt: {host: h, prefix: a/#}\n", "mqtt.prefix: a topic without '+', '#'"),
        ("mqtt: {host: h, client_id: a/b}\n", "mqtt.client_id: letters, digits"),
        ("mqtt: {host: h, tls: {ca_file: /nonexistent/ca.crt}}\n", "mqtt.tls.ca_file: cannot read '/nonexistent/ca.crt'"),
        ("mqtt: {host: h, tls: {cafile: x}}\n", "mqtt.tls.cafile: unknown key (did you mean 'ca_file'?)"),
        ("mqtt: {host: h, user: u, password_file: /nonexistent/pw}\n", "mqtt.password_file: cannot read '/nonexistent/pw'"),
        ("mqtt: {host: h, keepalive: 2}\n", "mqtt.keepalive: 2 is outside 5...65535"),
    ])
    func refused(block: String, says: String) {
        do {
            _ = try WatchConfig.parse(Self.cameras + block, path: "w.yaml", environment: [:])
            Issue.record("accepted:\n\(block)")
        } catch {
            #expect(error.description.contains(says), "\(error.description)")
            #expect(!error.description.contains("\n"))
        }
    }

    @Test("a password without a user is refused: MQTT sends no password alone")
    func passwordNeedsUser() {
        #expect(throws: ConfigError.self) {
            try WatchConfig.parse(Self.cameras + "mqtt: {host: h}\n", path: "w.yaml", environment: ["ROADWATCH_MQTT_PASSWORD": "p"])
        }
    }
}
