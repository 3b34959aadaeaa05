import Anomaly
import Foundation
import Monitoring
import Overlay
import VideoIO
import Yams

/// A config the service cannot use: the file, the line, the key and what is wrong, in one line.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// How one camera is watched: its source, the method, the overlay, recording, masks, events, retention.
public struct CameraConfig: Sendable {
    public var name: String
    public var input: String
    public var enabled = true
    /// A file read over and over (demos, tests); files are always read at their own pace, as a camera sends.
    public var loop = false
    /// A file read at its own pace as a camera sends (true), or whole and as fast as the stages go, every
    /// frame processed and event times in media seconds (false: an archive watched with the same config).
    public var realtime = true
    public var size: FrameSize?
    public var method = MethodSettings.default
    public var overlay = OverlayMode.heat
    /// Seconds a source may take to open or to send data.
    public var timeout = 10.0
    /// Device and protocol options (video_size, framerate, input_format, rtsp_transport).
    public var deviceOptions: [String: String] = [:]
    /// Continuous recording of the annotated video, in segments.
    public var record = false
    public var segmentSeconds = 60.0
    public var crf = 23
    public var preset = "veryfast"
    public var mask: IgnoreMask?
    /// A calibrated memory of normal road for the memory rule (`memory: FILE.rwmem`), read when the config is.
    public var memory: MemoryBank?
    public var events = EventRules.default
    /// Retention of recordings, clips and snapshots: by age and by total size, oldest first.
    public var maxAgeHours: Double?
    public var maxSizeMB: Double?
    /// Where a fixed camera stands (`location: [lat, lon]`): every event of it carries this place.
    public var location: (latitude: Double, longitude: Double)?

    public init(name: String, input: String) {
        self.name = name
        self.input = input
    }
}

/// The web layer: where it listens and the token it asks for off loopback.
public struct HTTPSettings: Sendable, Equatable {
    public var host = "127.0.0.1"
    public var port = 8971
    public var authToken: String?
    /// Off: no server at all (`http: {enabled: false}`).
    public var enabled = true
    /// The live preview's limits: frames per second and width.
    public var previewFPS = 5.0
    public var previewWidth = 640

    public init() {}

    /// Loopback addresses need no token.
    public var isLoopback: Bool { host == "127.0.0.1" || host == "::1" || host == "localhost" || host.hasPrefix("127.") }
}

/// A receiver of event JSON by HTTP POST.
public struct WebhookSettings: Sendable, Equatable {
    public var url: String
    /// Which changes are sent: new, update, end.
    public var on: Set<String> = ["new", "end"]
    /// Seconds per camera after a sent `new` during which further `new`s (and their ends) are not sent.
    public var cooldown = 30.0
    public var timeout = 5.0
    public var retries = 3

    public init(url: String) { self.url = url }
}

/// The MQTT broker the service tells about its events (`mqtt:`), as the file gives it; the Web layer turns it
/// into a client. The password is resolved here (file or `ROADWATCH_MQTT_PASSWORD`) so `--check` finds a bad file.
public struct MQTTConfig: Sendable, Equatable {
    public var host: String
    public var port = 1883
    /// Seconds between keepalive pings when idle.
    public var keepalive = 30
    /// TLS when any of the three is given (a CA file alone is the usual case).
    public var caFile: String?
    public var certFile: String?
    public var keyFile: String?
    public var tls = false
    public var user: String?
    public var password: String?
    /// Also names the Home Assistant device, so it must stay the same across restarts.
    public var clientID: String
    /// The first level of every roadwatch topic.
    public var prefix = "roadwatch"
    /// Home Assistant discovery configs under `homeassistant/`.
    public var discovery = true
    /// Seconds between `<prefix>/<camera>/state` and `<prefix>/stats` messages.
    public var statsInterval = 60.0

    public init(host: String, clientID: String) {
        self.host = host
        self.clientID = clientID
    }

    /// A stable client id for this machine: `roadwatch-<hostname>` with only topic-safe characters.
    public static func defaultClientID(hostName: String = ProcessInfo.processInfo.hostName) -> String {
        let base = hostName.split(separator: ".").first.map(String.init) ?? "host"
        let safe = String(base.lowercased().map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
        return "roadwatch-" + (safe.isEmpty ? "host" : safe)
    }
}

/// `roadwatch watch CONFIG.yaml`: the output folder, the model, and the cameras (top-level `defaults`
/// overridden per camera).
public struct WatchConfig: Sendable {
    public var output: String
    public var model: String?
    public var threads: Int?
    public var cameras: [CameraConfig]
    /// `log_level`: trace, debug, info, notice, warning, error, critical.
    public var logLevel = "info"
    /// Seconds between retention sweeps.
    public var retentionInterval = 30.0
    public var http = HTTPSettings()
    public var webhooks: [WebhookSettings] = []
    /// Nil: no MQTT.
    public var mqtt: MQTTConfig?
    /// What the config said in a way that still works but will not (old key names), one line each.
    public var warnings: [String] = []
    /// The config file.
    public var path: String

    /// Reads and checks `path`; `environment` fills `${VAR}` in values.
    public static func load(_ path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigError) -> WatchConfig {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigError("cannot read config '\(path)': \((error as NSError).localizedFailureReason ?? (error as NSError).localizedDescription)")
        }
        return try parse(text, path: path, environment: environment)
    }

    public static func parse(_ text: String, path: String, environment: [String: String]) throws(ConfigError) -> WatchConfig {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else { throw ConfigError("\(path): the config is empty") }
            root = node
        } catch let error as ConfigError {
            throw error
        } catch {
            throw ConfigError("\(path): not YAML: \(String(describing: error).split(separator: "\n").joined(separator: " "))")
        }
        let reader = Reader(path: path, environment: environment)
        var config = try reader.config(root)
        config.warnings = reader.warnings.items
        return config
    }
}

/// Warnings gathered while the YAML is read.
final class ConfigWarnings {
    private(set) var items: [String] = []
    func add(_ line: String) { items.append(line) }
}

/// Walks the YAML tree with the file name and line of every node at hand for the errors.
struct Reader {
    let path: String
    let environment: [String: String]
    let warnings = ConfigWarnings()

    /// Keys renamed to the method's own names (`MethodSettings.table`): old spelling to new.
    static let renamedKeys = ["scene_cut": "scene_cut_factor", "min_region_area": "minimum_region_area"]

    static let topKeys: Set<String> = ["output", "model", "threads", "log_level", "retention_interval", "defaults", "cameras",
                                       "http", "webhooks", "mqtt"]
    static let cameraKeys: Set<String> = Set([
        "input", "enabled", "loop", "realtime", "size", "k", "tau", "variant", "alarm", "alarm_threshold", "smoothing", "hysteresis",
        "scene_cut", "min_region_area", "seed", "overlay", "timeout", "video_size", "framerate", "input_format",
        "rtsp_transport", "record", "mask", "events", "retention", "location", "memory",
    ]).union(MethodSettings.keys)
    static let recordKeys: Set<String> = ["enabled", "segment_seconds", "crf", "preset"]
    static let eventKeys: Set<String> = ["min_frames", "end_after", "pre_capture", "post_capture", "snapshots", "clips",
                                         "evidence_width", "candidate_gap", "max_clip_seconds"]
    static let retentionKeys: Set<String> = ["max_age_hours", "max_size_mb"]
    static let httpKeys: Set<String> = ["listen", "auth_token", "enabled", "preview_fps", "preview_width"]
    static let webhookKeys: Set<String> = ["url", "on", "cooldown", "timeout", "retries"]
    static let mqttKeys: Set<String> = ["host", "port", "keepalive", "tls", "user", "password_file", "client_id", "prefix", "discovery",
                                        "stats_interval"]
    static let mqttTLSKeys: Set<String> = ["ca_file", "cert_file", "key_file"]

    func fail(_ node: Node?, _ key: String, _ message: String) -> ConfigError {
        let line = node?.mark.map { ":\($0.line)" } ?? ""
        return ConfigError("\(path)\(line): \(key): \(message)")
    }

    func mapping(_ node: Node, _ key: String) throws(ConfigError) -> [(key: String, keyNode: Node, value: Node)] {
        guard case let .mapping(mapping) = node else { throw fail(node, key, "expected a mapping of keys to values") }
        var seen = Set<String>()
        var pairs: [(String, Node, Node)] = []
        for (k, v) in mapping {
            guard let name = k.string else { throw fail(k, key, "a key that is not text") }
            guard seen.insert(name).inserted else { throw fail(k, key.isEmpty ? name : "\(key).\(name)", "given twice") }
            pairs.append((name, k, v))
        }
        return pairs
    }

    func checkKeys(_ pairs: [(key: String, keyNode: Node, value: Node)], allowed: Set<String>, in key: String) throws(ConfigError) {
        for pair in pairs where !allowed.contains(pair.key) {
            let full = key.isEmpty ? pair.key : "\(key).\(pair.key)"
            let close = allowed.filter { Self.distance($0, pair.key) <= 2 }.sorted().first
            throw fail(pair.keyNode, full, "unknown key" + (close.map { " (did you mean '\($0)'?)" } ?? "") +
                       "; known here: " + allowed.sorted().joined(separator: ", "))
        }
    }

    /// A scalar's text with `${VAR}` filled from the environment; a variable that is not set is an error.
    func string(_ node: Node, _ key: String) throws(ConfigError) -> String {
        guard case let .scalar(scalar) = node else { throw fail(node, key, "expected a single value") }
        // Values put in are not searched again: one that holds `${...}` itself (its own name) would loop for ever.
        var rest = Substring(scalar.string), text = ""
        while let open = rest.range(of: "${") {
            guard let close = rest.range(of: "}", range: open.upperBound..<rest.endIndex) else {
                throw fail(node, key, "'${' without a closing '}'")
            }
            let name = String(rest[open.upperBound..<close.lowerBound])
            guard let value = environment[name] else {
                throw fail(node, key, "the environment variable \(name) is not set")
            }
            text += rest[..<open.lowerBound] + value
            rest = rest[close.upperBound...]
        }
        return text + rest
    }

    func double(_ node: Node, _ key: String, _ range: ClosedRange<Double>? = nil) throws(ConfigError) -> Double {
        let text = try string(node, key)
        guard let value = Double(text), value.isFinite else { throw fail(node, key, "expected a number, got '\(text)'") }
        if let range, !range.contains(value) {
            throw fail(node, key, "\(text) is outside \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    func int(_ node: Node, _ key: String, _ range: ClosedRange<Int>) throws(ConfigError) -> Int {
        let text = try string(node, key)
        guard let value = Int(text) else { throw fail(node, key, "expected a whole number, got '\(text)'") }
        guard range.contains(value) else { throw fail(node, key, "\(value) is outside \(range.lowerBound)...\(range.upperBound)") }
        return value
    }

    func bool(_ node: Node, _ key: String) throws(ConfigError) -> Bool {
        let text = try string(node, key).lowercased()
        switch text {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw fail(node, key, "expected true or false, got '\(text)'")
        }
    }

    func config(_ root: Node) throws(ConfigError) -> WatchConfig {
        let top = try mapping(root, "")
        try checkKeys(top, allowed: Self.topKeys, in: "")
        var config = WatchConfig(output: "", model: nil, threads: nil, cameras: [], path: path)
        var defaults: [(key: String, keyNode: Node, value: Node)] = []
        var camerasNode: Node?
        for pair in top {
            switch pair.key {
            case "output": config.output = try string(pair.value, "output")
            case "model": config.model = try string(pair.value, "model")
            case "threads": config.threads = try int(pair.value, "threads", 1...256)
            case "log_level":
                let level = try string(pair.value, "log_level")
                let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
                guard levels.contains(level) else { throw fail(pair.value, "log_level", "expected one of \(levels.joined(separator: ", ")), got '\(level)'") }
                config.logLevel = level
            case "retention_interval": config.retentionInterval = try double(pair.value, "retention_interval", 1...86400)
            case "defaults":
                defaults = try mapping(pair.value, "defaults")
                try checkKeys(defaults, allowed: Self.cameraKeys.subtracting(["input"]), in: "defaults")
            case "cameras": camerasNode = pair.value
            case "http": config.http = try http(pair.value)
            case "mqtt": config.mqtt = try mqtt(pair.value)
            default: config.webhooks = try webhooks(pair.value)
            }
        }
        guard !config.output.isEmpty else { throw fail(root, "output", "missing: the folder each camera's events, clips and recordings go under") }
        guard let camerasNode else { throw fail(root, "cameras", "missing: give at least one camera with an input") }
        let cameras = try mapping(camerasNode, "cameras")
        guard !cameras.isEmpty else { throw fail(camerasNode, "cameras", "no cameras") }
        for camera in cameras {
            let name = camera.key
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }), name.first != "-" else {
                throw fail(camera.keyNode, "cameras.\(name)", "a camera name takes letters, digits, '-' and '_' (it names a folder)")
            }
            let own = try mapping(camera.value, "cameras.\(name)")
            try checkKeys(own, allowed: Self.cameraKeys, in: "cameras.\(name)")
            guard let input = own.first(where: { $0.key == "input" }) else {
                throw fail(camera.keyNode, "cameras.\(name).input", "missing: the camera's URL, device or file")
            }
            var result = CameraConfig(name: name, input: try string(input.value, "cameras.\(name).input"))
            // Defaults first, then the camera's own keys over them.
            for pair in defaults { try apply(pair, to: &result, prefix: "defaults") }
            for pair in own where pair.key != "input" { try apply(pair, to: &result, prefix: "cameras.\(name)") }
            do {
                try result.method.validate()
                try result.events.validate()
            } catch {
                throw fail(camera.keyNode, "cameras.\(name)", String(describing: error))
            }
            config.cameras.append(result)
        }
        return config
    }

    func http(_ node: Node) throws(ConfigError) -> HTTPSettings {
        var http = HTTPSettings()
        let pairs = try mapping(node, "http")
        try checkKeys(pairs, allowed: Self.httpKeys, in: "http")
        for p in pairs {
            let key = "http.\(p.key)"
            switch p.key {
            case "listen":
                let text = try string(p.value, key)
                guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else {
                    throw fail(p.value, key, "expected HOST:PORT (e.g. 127.0.0.1:8971), got '\(text)'")
                }
                var host = String(text[..<colon])
                if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
                guard !host.isEmpty else { throw fail(p.value, key, "no host in '\(text)' (0.0.0.0 for every address)") }
                http.host = host
                http.port = port
            case "auth_token":
                let token = try string(p.value, key)
                guard token.count >= 8 else { throw fail(p.value, key, "a token of at least 8 characters, please") }
                http.authToken = token
            case "enabled": http.enabled = try bool(p.value, key)
            case "preview_fps": http.previewFPS = try double(p.value, key, 0.1...30)
            default: http.previewWidth = try int(p.value, key, 16...4096)
            }
        }
        if http.enabled && !http.isLoopback && http.authToken == nil {
            throw fail(node, "http.auth_token", "required when listening on \(http.host) (not loopback): set auth_token, e.g. ${ROADWATCH_TOKEN}")
        }
        return http
    }

    func mqtt(_ node: Node) throws(ConfigError) -> MQTTConfig {
        let pairs = try mapping(node, "mqtt")
        try checkKeys(pairs, allowed: Self.mqttKeys, in: "mqtt")
        guard let hostPair = pairs.first(where: { $0.key == "host" }) else { throw fail(node, "mqtt.host", "missing: the broker's name or address") }
        var mqtt = MQTTConfig(host: try string(hostPair.value, "mqtt.host"), clientID: MQTTConfig.defaultClientID())
        guard !mqtt.host.isEmpty else { throw fail(hostPair.value, "mqtt.host", "empty") }
        var passwordFile: (path: String, node: Node)?
        for p in pairs where p.key != "host" {
            let key = "mqtt.\(p.key)"
            switch p.key {
            case "port": mqtt.port = try int(p.value, key, 1...65535)
            case "keepalive": mqtt.keepalive = try int(p.value, key, 5...65535)
            case "user": mqtt.user = try string(p.value, key)
            case "password_file": passwordFile = (try string(p.value, key), p.value)
            case "client_id":
                let id = try string(p.value, key)
                // The id is also a topic level (discovery's node_id): MQTT wildcards and separators would break it.
                guard !id.isEmpty, id.count <= 64, id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
                    throw fail(p.value, key, "letters, digits, '-' and '_', at most 64, please; got '\(id)'")
                }
                mqtt.clientID = id
            case "prefix":
                let prefix = try string(p.value, key)
                guard !prefix.isEmpty, !prefix.contains(where: { "+#".contains($0) }), !prefix.hasPrefix("/"), !prefix.hasSuffix("/") else {
                    throw fail(p.value, key, "a topic without '+', '#' or a leading or trailing '/', got '\(prefix)'")
                }
                mqtt.prefix = prefix
            case "discovery": mqtt.discovery = try bool(p.value, key)
            case "stats_interval": mqtt.statsInterval = try double(p.value, key, 0.1...86400)
            default:
                let tls = try mapping(p.value, key)
                try checkKeys(tls, allowed: Self.mqttTLSKeys, in: key)
                mqtt.tls = true
                for t in tls {
                    let path = try string(t.value, "\(key).\(t.key)")
                    guard FileManager.default.isReadableFile(atPath: path) else { throw fail(t.value, "\(key).\(t.key)", "cannot read '\(path)'") }
                    switch t.key {
                    case "ca_file": mqtt.caFile = path
                    case "cert_file": mqtt.certFile = path
                    default: mqtt.keyFile = path
                    }
                }
                guard (mqtt.certFile == nil) == (mqtt.keyFile == nil) else {
                    throw fail(p.value, key, "cert_file and key_file go together (a client certificate needs its key)")
                }
            }
        }
        if let passwordFile {
            let text: String
            do {
                text = try String(contentsOfFile: passwordFile.path, encoding: .utf8)
            } catch {
                throw fail(passwordFile.node, "mqtt.password_file", "cannot read '\(passwordFile.path)'")
            }
            let password = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !password.isEmpty else { throw fail(passwordFile.node, "mqtt.password_file", "'\(passwordFile.path)' is empty") }
            mqtt.password = password
        } else if let password = environment["ROADWATCH_MQTT_PASSWORD"], !password.isEmpty {
            mqtt.password = password
        }
        if mqtt.password != nil && mqtt.user == nil {
            throw fail(node, "mqtt.user", "missing: a password needs a user name (MQTT sends no password alone)")
        }
        return mqtt
    }

    func webhooks(_ node: Node) throws(ConfigError) -> [WebhookSettings] {
        guard case let .sequence(sequence) = node else { throw fail(node, "webhooks", "expected a list of webhooks (- url: ...)") }
        var hooks: [WebhookSettings] = []
        for (n, item) in sequence.enumerated() {
            let prefix = "webhooks[\(n)]"
            let pairs = try mapping(item, prefix)
            try checkKeys(pairs, allowed: Self.webhookKeys, in: prefix)
            guard let urlPair = pairs.first(where: { $0.key == "url" }) else { throw fail(item, "\(prefix).url", "missing") }
            let url = try string(urlPair.value, "\(prefix).url")
            guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme?.lowercased() ?? ""), parsed.host != nil else {
                throw fail(urlPair.value, "\(prefix).url", "expected an http:// or https:// URL, got '\(url)'")
            }
            var hook = WebhookSettings(url: url)
            for p in pairs where p.key != "url" {
                let key = "\(prefix).\(p.key)"
                switch p.key {
                case "on":
                    guard case let .sequence(kinds) = p.value else { throw fail(p.value, key, "expected a list such as [new, end]") }
                    var on = Set<String>()
                    for kind in kinds {
                        let k = try string(kind, key)
                        guard ["new", "update", "end"].contains(k) else { throw fail(kind, key, "expected new, update or end, got '\(k)'") }
                        on.insert(k)
                    }
                    hook.on = on
                case "cooldown": hook.cooldown = try double(p.value, key, 0...86400)
                case "timeout": hook.timeout = try double(p.value, key, 0.1...300)
                default: hook.retries = try int(p.value, key, 0...20)
                }
            }
            hooks.append(hook)
        }
        return hooks
    }

    func apply(_ pair: (key: String, keyNode: Node, value: Node), to camera: inout CameraConfig, prefix: String) throws(ConfigError) {
        let key = "\(prefix).\(pair.key)", v = pair.value
        switch pair.key {
        case "enabled": camera.enabled = try bool(v, key)
        case "loop": camera.loop = try bool(v, key)
        case "realtime": camera.realtime = try bool(v, key)
        case "size":
            let text = try string(v, key)
            guard let size = FrameSize(parsing: text), size.width % 16 == 0, size.height % 16 == 0 else {
                throw fail(v, key, "expected WxH with both sides multiples of 16 (e.g. 512x256), got '\(text)'")
            }
            camera.size = size
        case "k": camera.method.clusterCounts = [try int(v, key, 1...64)]
        case "variant":
            let name = try string(v, key)
            guard let settings = MethodSettings.variant(name, base: camera.method) else {
                throw fail(v, key, "unknown variant '\(name)' (d1, d2n, d2b, d3, k4k8-median)")
            }
            camera.method = settings
        case "overlay":
            let name = try string(v, key)
            guard let mode = OverlayMode(rawValue: name) else { throw fail(v, key, "expected heat, segmentation, both or none, got '\(name)'") }
            camera.overlay = mode
        case "timeout": camera.timeout = try double(v, key, 0.1...3600)
        case "video_size", "framerate", "input_format": camera.deviceOptions[pair.key] = try string(v, key)
        case "rtsp_transport":
            let t = try string(v, key)
            guard ["tcp", "udp"].contains(t) else { throw fail(v, key, "expected tcp or udp, got '\(t)'") }
            camera.deviceOptions["rtsp_transport"] = t
        case "record":
            if case .scalar = v {
                camera.record = try bool(v, key)
                return
            }
            let pairs = try mapping(v, key)
            try checkKeys(pairs, allowed: Self.recordKeys, in: key)
            camera.record = true
            for p in pairs {
                let k = "\(key).\(p.key)"
                switch p.key {
                case "enabled": camera.record = try bool(p.value, k)
                case "segment_seconds": camera.segmentSeconds = try double(p.value, k, 1...86400)
                case "crf": camera.crf = try int(p.value, k, 0...51)
                default: camera.preset = try string(p.value, k)
                }
            }
        case "mask":
            var texts: [String] = []
            if case let .sequence(sequence) = v {
                for item in sequence { texts.append(try string(item, key)) }
            } else {
                texts = [try string(v, key)]
            }
            do {
                camera.mask = try IgnoreMask(parsing: texts)
            } catch {
                throw fail(v, key, error.description)
            }
        case "memory":
            let path = try string(v, key)
            do {
                camera.memory = try MemoryBank(contentsOf: path)
            } catch {
                throw fail(v, key, error.description)
            }
        case "location":
            guard case let .sequence(pair) = v, pair.count == 2 else {
                throw fail(v, key, "expected [latitude, longitude] in degrees, such as [51.5072, -0.1276]")
            }
            let latitude = try double(pair[0], key + "[0]", -90...90)
            let longitude = try double(pair[1], key + "[1]", -180...180)
            camera.location = (latitude, longitude)
        case "events":
            let pairs = try mapping(v, key)
            try checkKeys(pairs, allowed: Self.eventKeys, in: key)
            for p in pairs {
                let k = "\(key).\(p.key)"
                switch p.key {
                case "min_frames": camera.events.minFrames = try int(p.value, k, 1...10_000)
                case "end_after": camera.events.endAfter = try double(p.value, k, 0.01...86400)
                case "pre_capture": camera.events.preCapture = try double(p.value, k, 0...60)
                case "post_capture": camera.events.postCapture = try double(p.value, k, 0...60)
                case "candidate_gap": camera.events.candidateGap = try double(p.value, k, 0...60)
                case "snapshots": camera.events.snapshots = try bool(p.value, k)
                case "clips": camera.events.clips = try bool(p.value, k)
                case "max_clip_seconds": camera.events.maxClipSeconds = try double(p.value, k, 1...86400)
                default: camera.events.evidenceWidth = try int(p.value, k, 16...8192)
                }
            }
        case "retention":
            let pairs = try mapping(v, key)
            try checkKeys(pairs, allowed: Self.retentionKeys, in: key)
            for p in pairs {
                let k = "\(key).\(p.key)"
                if p.key == "max_age_hours" {
                    camera.maxAgeHours = try double(p.value, k, 0.001...1_000_000)
                } else {
                    camera.maxSizeMB = try double(p.value, k, 0.001...100_000_000)
                }
            }
        default:
            // Any method setting by the key a run summary writes (novelty_threshold, memory_capacity, ...); the
            // spellings of earlier releases still work, with a warning naming the key to use.
            var name = pair.key
            if let current = Self.renamedKeys[name] {
                warnings.add("\(path):\(pair.keyNode.mark?.line ?? 0): '\(key)' is now called '\(current)'; the old name will stop working in the next release")
                name = current
            }
            guard MethodSettings.keys.contains(name) else { throw fail(pair.keyNode, key, "unknown key") }
            let text: String
            if case .sequence(let items) = v {
                var parts: [String] = []
                for item in items { parts.append(try string(item, key)) }
                text = "[" + parts.joined(separator: ",") + "]"
            } else {
                text = try string(v, key)
            }
            do {
                camera.method = try MethodSettings.overriding(camera.method, with: ["\(name)=\(text)"])
            } catch {
                throw fail(v, key, error.description)
            }
        }
    }

    /// Edit distance, for "did you mean".
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var row = Array(0...b.count)
        for i in 1...max(1, a.count) where !a.isEmpty {
            var previous = row[0]
            row[0] = i
            for j in 1...max(1, b.count) where !b.isEmpty {
                let current = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = current
            }
        }
        return a.isEmpty ? b.count : row[b.count]
    }
}
