/// The page at `/`: server-rendered, one small script, no build step. A grid of the cameras (a preview
/// refreshed from `latest.jpg`, state, fps, latency, dropped) and the latest events with their snapshots;
/// clicking an event plays its clip. The layout folds to one column on a phone.
enum Page {
    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
            .replacingOccurrences(of: "'", with: "&#39;")
    }

    static func html(cameras: [String], token: String?) -> String {
        let tiles = cameras.map { (name: String) -> String in
            let n = escape(name)
            return """
                <section class="camera" data-camera="\(n)">
                  <img class="preview" alt="\(n), live" data-camera="\(n)">
                  <div class="meta"><b>\(n)</b> <span class="state">…</span>
                    <span class="figures"></span></div>
                </section>
                """
        }.joined(separator: "\n")
        // The token (when the page was opened with one) rides along on every request the page makes.
        let tokenJSON = token.map { "\"" + escape($0).replacingOccurrences(of: "\\", with: "") + "\"" } ?? "null"
        return """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>roadwatch</title>
            <link rel="icon" href="data:,">
            <style>
            body { font: 15px/1.4 system-ui, sans-serif; margin: 0; background: #111; color: #eee; }
            header { padding: 10px 16px; background: #1c1c1c; display: flex; justify-content: space-between; align-items: baseline; }
            h1 { font-size: 18px; margin: 0; } h2 { font-size: 16px; margin: 16px 16px 8px; }
            #cameras { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 12px; padding: 12px 16px; }
            .camera { background: #1c1c1c; border-radius: 6px; overflow: hidden; }
            .preview { width: 100%; aspect-ratio: 16 / 9; object-fit: contain; background: #000; display: block; }
            .meta { padding: 6px 10px; font-size: 13px; }
            .state { padding: 1px 6px; border-radius: 3px; background: #444; }
            .state.up { background: #1f6f3a; } .state.down, .state.reconnecting { background: #8a2a2a; }
            .figures { color: #aaa; margin-left: 6px; }
            table { border-collapse: collapse; margin: 0 16px 16px; width: calc(100% - 32px); }
            td, th { padding: 6px 8px; border-bottom: 1px solid #333; text-align: left; font-size: 13px; vertical-align: middle; }
            tr.event { cursor: pointer; } tr.event:hover { background: #222; }
            td img { width: 120px; border-radius: 3px; display: block; }
            #player { display: none; margin: 0 16px 16px; } #player video { width: 100%; max-width: 960px; background: #000; }
            @media (max-width: 600px) { #cameras { grid-template-columns: 1fr; padding: 8px; } .hide-narrow { display: none; } td img { width: 90px; } }
            </style>
            </head>
            <body>
            <header><h1>roadwatch</h1><span id="updated"></span></header>
            <div id="cameras">
            \(tiles)
            </div>
            <div id="player"><video controls playsinline></video></div>
            <h2>Latest events</h2>
            <table><thead><tr><th>Snapshot</th><th>Camera</th><th>Start</th><th class="hide-narrow">Duration</th><th>Score</th></tr></thead>
            <tbody id="events"><tr><td colspan="5">none yet</td></tr></tbody></table>
            <script>
            "use strict";
            const token = \(tokenJSON);
            function url(path) { return token ? path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token) : path; }
            function text(value) { const s = document.createElement("span"); s.textContent = value; return s.innerHTML; }
            window.addEventListener("error", e => { document.body.dataset.errors = (document.body.dataset.errors || "") + e.message + ";"; });
            for (const img of document.querySelectorAll("img.preview")) {
              const refresh = () => setTimeout(() => { img.src = url("/cameras/" + encodeURIComponent(img.dataset.camera) + "/latest.jpg?t=" + Date.now()); }, 500);
              img.addEventListener("load", () => { img.dataset.width = img.naturalWidth; refresh(); });
              img.addEventListener("error", refresh);
              img.src = url("/cameras/" + encodeURIComponent(img.dataset.camera) + "/latest.jpg");
            }
            async function cameras() {
              const list = await (await fetch(url("/api/cameras"))).json();
              for (const c of list) {
                const tile = document.querySelector(`section.camera[data-camera="${CSS.escape(c.name)}"]`);
                if (!tile) continue;
                const state = tile.querySelector(".state");
                state.textContent = c.state; state.className = "state " + c.state;
                tile.querySelector(".figures").textContent =
                  `${c.fps.toFixed(1)} fps · ${Math.round(c.latency_ms)} ms · ${c.dropped} dropped · ${c.events} events`;
              }
              document.getElementById("updated").textContent = new Date().toLocaleTimeString();
            }
            async function events() {
              const list = await (await fetch(url("/api/events?limit=20"))).json();
              if (list.length === 0) return;
              const rows = list.map(e => {
                const snap = e.snapshot ? `<img alt="snapshot" src="${url("/api/events/" + encodeURIComponent(e.id) + "/snapshot.jpg")}">` : "";
                // Live cameras give epoch seconds; files read whole give seconds into the file.
                const start = e.start > 1e9 ? new Date(e.start * 1000).toLocaleString() : e.start.toFixed(1) + " s into the file";
                const duration = e.end ? (e.end - e.start).toFixed(1) + " s" : "ongoing";
                return `<tr class="event" data-id="${text(e.id)}" data-clip="${e.clip ? 1 : 0}"><td>${snap}</td><td>${text(e.camera)}</td>` +
                       `<td>${start}</td><td class="hide-narrow">${duration}</td><td>${e.top_score.toFixed(2)}</td></tr>`;
              });
              document.getElementById("events").innerHTML = rows.join("");
            }
            document.getElementById("events").addEventListener("click", ev => {
              const row = ev.target.closest("tr.event");
              if (!row || row.dataset.clip !== "1") return;
              const player = document.getElementById("player"), video = player.querySelector("video");
              video.src = url("/api/events/" + encodeURIComponent(row.dataset.id) + "/clip.mp4");
              player.style.display = "block"; video.play().catch(() => {});
            });
            async function tick() {
              try { await cameras(); await events(); document.body.dataset.ticks = (+(document.body.dataset.ticks || 0) + 1); }
              catch (e) { document.getElementById("updated").textContent = "offline"; }
              setTimeout(tick, 2000);
            }
            tick();
            </script>
            </body>
            </html>
            """
    }
}
