import Foundation

/// `report.html`: one self-contained page a road crew can open offline — the drives drawn as inline SVG,
/// the events as dots on them and as a table (thumbnail, time, place, a link into the video), sortable by score.
public enum ReportPage {
    /// The drawing's size in SVG units.
    static let width = 960.0, height = 540.0, margin = 24.0

    /// Writes `folder/report.html` from the merged features (paths in them are relative to `folder`).
    public static func write(_ collection: GeoFeatureCollection, folder: String) throws(JobError) {
        let path = URL(fileURLWithPath: folder).appendingPathComponent("report.html").path
        do {
            try Data(html(collection).utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw JobError("cannot write '\(path)': \(error.localizedDescription)")
        }
    }

    public static func html(_ collection: GeoFeatureCollection) -> String {
        let events = collection.features.filter { $0.properties.kind == "event" }
            .sorted { ($0.properties.top_score ?? 0) > ($1.properties.top_score ?? 0) }
        let located = events.filter { $0.geometry != nil }.count
        let drives = collection.features.filter { $0.properties.kind == "drive" }.count
        var page = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>roadwatch report</title>
            <style>
            body{font:14px system-ui,sans-serif;margin:16px;color:#222}
            svg{border:1px solid #ccc;background:#f7f7f4;max-width:100%;height:auto}
            .drive{fill:none;stroke:#3a6ea5;stroke-width:2;stroke-linejoin:round}
            .event{fill:#d7301f;stroke:#fff;stroke-width:1.5}
            table{border-collapse:collapse;margin-top:12px}
            th,td{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:middle}
            th[data-sort]{cursor:pointer;text-decoration:underline dotted}
            img{display:block;max-width:160px}
            td.num{text-align:right;font-variant-numeric:tabular-nums}
            </style></head><body>
            <h1>roadwatch report</h1>
            <p>Events: \(events.count), \(located) with a place. Drives with GPS: \(drives).</p>

            """
        page += svg(collection)
        page += """
            <table id="events"><thead><tr><th>snapshot</th><th>event</th><th>file</th>\
            <th data-sort="time">time</th><th>place</th><th data-sort="score">score ▾</th></tr></thead><tbody>

            """
        for event in events {
            let p = event.properties
            let time = p.time ?? p.start ?? 0
            var place = "no GPS"
            if let l = p.location {
                place = String(format: "%.6f, %.6f", l.lat, l.lon)
                if let speed = l.speed { place += String(format: " · %.0f km/h", speed * 3.6) }
                if let heading = l.heading { place += String(format: " · %.0f°", heading) }
                if l.source == "fixed" { place += " (fixed camera)" }
            }
            let thumb = p.snapshot.map { "<a href=\"\(escape($0))\"><img src=\"\(escape($0))\" alt=\"snapshot\" loading=\"lazy\"></a>" } ?? ""
            let link = p.video.map { "<a href=\"\(escape($0))#t=\(String(format: "%.2f", time))\">\(String(format: "%.2f s", time))</a>" }
                ?? String(format: "%.2f s", time)
            let utc = p.location?.utc.map { "<br><small>\(escape($0))</small>" } ?? ""
            page += "<tr id=\"ev-\(escape(p.id ?? ""))\" data-score=\"\(p.top_score ?? 0)\" data-time=\"\(time)\">"
                + "<td>\(thumb)</td><td>\(escape(p.id ?? ""))</td><td>\(escape(p.key))</td><td class=\"num\">\(link)\(utc)</td>"
                + "<td>\(escape(place))</td><td class=\"num\">\(String(format: "%.3f", p.top_score ?? 0))</td></tr>\n"
        }
        page += """
            </tbody></table>
            <script>
            // Click a header with data-sort to sort by it; click again to reverse.
            document.querySelectorAll('th[data-sort]').forEach(th => th.addEventListener('click', () => {
              const body = document.querySelector('#events tbody'), key = th.dataset.sort;
              const down = th.dataset.dir !== 'down'; th.dataset.dir = down ? 'down' : 'up';
              [...body.rows].sort((a, b) => (down ? -1 : 1) * (parseFloat(a.dataset[key]) - parseFloat(b.dataset[key])))
                .forEach(row => body.appendChild(row));
            }));
            </script>
            </body></html>

            """
        return page
    }

    /// The drives and events in an equirectangular projection (longitude scaled by the cosine of the mean
    /// latitude, so a drive keeps its shape), fitted to the box; no tiles, nothing fetched.
    static func svg(_ collection: GeoFeatureCollection) -> String {
        var all: [[Double]] = []
        for feature in collection.features {
            switch feature.geometry {
            case let .point(c)?: all.append(c)
            case let .lineString(line)?: all += line
            case nil: break
            }
        }
        all = all.filter { $0.count >= 2 && $0[0].isFinite && $0[1].isFinite }
        var out = "<svg id=\"map\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\">\n"
        guard let first = all.first else {
            return out + "<text x=\"\(Int(width / 2))\" y=\"\(Int(height / 2))\" text-anchor=\"middle\">no GPS in these recordings</text></svg>\n"
        }
        var minLon = first[0], maxLon = first[0], minLat = first[1], maxLat = first[1]
        for c in all {
            minLon = min(minLon, c[0]); maxLon = max(maxLon, c[0]); minLat = min(minLat, c[1]); maxLat = max(maxLat, c[1])
        }
        let k = cos((minLat + maxLat) / 2 * .pi / 180)
        // A single place (a parked camera) still needs a scale: about ten metres across.
        let spanX = max((maxLon - minLon) * k, 1e-4), spanY = max(maxLat - minLat, 1e-4)
        let scale = min((width - 2 * margin) / spanX, (height - 2 * margin) / spanY)
        let offsetX = (width - spanX * scale) / 2, offsetY = (height - spanY * scale) / 2
        func xy(_ c: [Double]) -> (Double, Double) {
            let x = offsetX + ((c[0] - minLon) * k + (spanX - (maxLon - minLon) * k) / 2) * scale
            let y = offsetY + ((maxLat - c[1]) + (spanY - (maxLat - minLat)) / 2) * scale
            return (x, y)
        }
        for feature in collection.features {
            guard case let .lineString(line)? = feature.geometry else { continue }
            let points = line.filter { $0.count >= 2 }.map { c -> String in
                let (x, y) = xy(c)
                return String(format: "%.1f,%.1f", x, y)
            }
            out += "<polyline class=\"drive\" points=\"\(points.joined(separator: " "))\"><title>\(escape(feature.properties.key))</title></polyline>\n"
        }
        for feature in collection.features {
            guard case let .point(c)? = feature.geometry, c.count >= 2 else { continue }
            let (x, y) = xy(c)
            let p = feature.properties
            let label = "\(p.id ?? "") score \(String(format: "%.3f", p.top_score ?? 0))"
            out += "<a href=\"#ev-\(escape(p.id ?? ""))\"><circle class=\"event\" cx=\"\(String(format: "%.1f", x))\" cy=\"\(String(format: "%.1f", y))\" r=\"6\"><title>\(escape(label))</title></circle></a>\n"
        }
        // A degree of latitude is about 111.32 km; the drawing is scaled the same both ways.
        let wide = (maxLon - minLon) * k * 111_320, tall = (maxLat - minLat) * 111_320
        out += "<text x=\"\(Int(margin))\" y=\"\(Int(height - 8))\" font-size=\"12\">\(String(format: "drive area %.0f m wide, %.0f m tall; north up", wide, tall))</text>\n"
        return out + "</svg>\n"
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
